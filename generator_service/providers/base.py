"""The backend interface every remote kind implements, and the events a run reports.

A run is one async iterator of events: ``Queued`` (the provider took the job, with its id),
``Progressed``, then for every output ``MediaBegin``, ``MediaBytes``* and ``MediaDone``, in order.
Bytes are handed on as they arrive from the provider's socket, so the caller's pace (the gRPC
stream's flow control through the outbox) sets the download's pace. ``cancel`` stops a job on the
provider when the caller leaves or the deadline passes. Placement sees a backend through the
same attributes as a ComfyUI one (``name``, ``kind``, ``up``, ``ready``, ``load``, ``active``,
``capacity``), so the pool treats every kind alike.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from generator_service.wire import OutEvent
from mediagen.scaffold.metrics import BACKEND_UP
from mediagen.v1 import common_pb2, generator_pb2

if TYPE_CHECKING:
    from generator_service.providers.templates import ProviderWorkflow

log = logging.getLogger("mediagen.generator.providers")


class BackendKind(enum.StrEnum):
    COMFYUI = "comfyui"
    IMAGES_API = "images_api"
    PREDICTIONS = "predictions"


class PlacedBackend(Protocol):
    """What placement, status and shutdown need from a backend of any kind.

    ComfyUI's ``generator_service.backends.Backend`` and every :class:`RemoteBackend` are one.
    """

    name: str
    url: str
    active: int
    up: bool
    last_error: str

    @property
    def kind(self) -> BackendKind: ...

    @property
    def load(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    async def check(self) -> None: ...

    async def status(self) -> generator_pb2.BackendStatus: ...

    async def close(self) -> None: ...


class JobHandle(Protocol):
    """One job as the gRPC handler drives it, whatever its kind (ComfyUI's ``Job``, ``ProviderJob``):
    started as a task, read as ``GenerateEvent``s, released when the call is over."""

    task: asyncio.Task[None] | None

    def start(self) -> None: ...

    def release(self) -> None: ...

    def events(self) -> AsyncIterator[OutEvent]: ...


@dataclass(frozen=True)
class Queued:
    provider_id: str
    """The provider's id of the job ("" when the provider gives none, as the Images API)."""


@dataclass(frozen=True)
class Progressed:
    progress: common_pb2.Progress


@dataclass(frozen=True)
class MediaBegin:
    filename: str
    mime_type: str
    format: str
    media_type: int
    expected_size: int = 0
    """Announced by the provider (``Content-Length``), 0 when unknown (decoded ``b64_json``)."""


@dataclass(frozen=True)
class MediaBytes:
    data: bytes


@dataclass(frozen=True)
class MediaDone:
    pass


RunEvent = Queued | Progressed | MediaBegin | MediaBytes | MediaDone


@dataclass
class RunContext:
    """What a run needs besides its workflow: its id, the loop time it must end by, and the
    time a successful attempt usually takes here (a 429 is retried only when that still fits)."""

    job_id: str
    deadline: float
    reserve: float = 0.0
    attempt_started: float = 0.0
    """Loop time the latest attempt was sent (its success measures ``reserve`` for later jobs)."""

    def output_name(self, index: int) -> str:
        """The name of the job's output ``index`` without its extension, which what was made adds.

        Every provider kind names outputs this way, so a file tells the job it came from.
        """
        return f"{self.job_id}-{index}"


class RemoteBackend(abc.ABC):
    """One configured provider endpoint; subclasses implement ``probe``, ``run`` and ``cancel``."""

    kind: BackendKind
    process = None
    """Remote backends are never started by the generator (placement reads this for ComfyUI)."""

    def __init__(self, name: str, url: str, capacity: int) -> None:
        self.name, self.url, self.capacity = name, url, capacity
        self.active = 0
        self.typical_seconds = 0.0
        """Moving average of how long a successful attempt took, from its request to its last byte."""
        self.up = False
        self.last_error = "not checked yet"
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def load(self) -> int:
        return self.active

    @property
    def ready(self) -> bool:
        return self.up

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Background work that must outlive the call that started it (cancels on the provider)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def observe(self, seconds: float) -> None:
        self.typical_seconds = (
            seconds if not self.typical_seconds else 0.8 * self.typical_seconds + 0.2 * seconds
        )

    async def start(self) -> None:
        await self.check()

    async def check(self) -> None:
        try:
            async with asyncio.timeout(5.0):
                await self.probe()
        except Exception as exc:  # noqa: BLE001 - any failure to answer means down, reason kept
            self._set_up(False, _short(exc))
            return
        self._set_up(True, "")

    def _set_up(self, up: bool, why: str) -> None:
        if self.up and not up:
            log.warning("backend %s is down: %s", self.name, why)
        self.up, self.last_error = up, why
        BACKEND_UP.labels(self.name).set(1 if up else 0)

    async def status(self) -> generator_pb2.BackendStatus:
        return generator_pb2.BackendStatus(
            name=self.name,
            url=self.url,
            up=self.up,
            managed=False,
            active_jobs=self.active,
            queue_running=self.active,
            last_error=self.last_error,
            kind=self.kind.value,
        )

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)

    @abc.abstractmethod
    async def probe(self) -> None:
        """One cheap authenticated request; raises when the provider does not answer properly."""

    @abc.abstractmethod
    def run(self, workflow: ProviderWorkflow, context: RunContext) -> AsyncGenerator[RunEvent, None]:
        """Submit the job and report it until its last output byte."""

    @abc.abstractmethod
    async def cancel(self, provider_id: str) -> bool:
        """Stop the job on the provider; True once it is stopped (or was already over)."""


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
