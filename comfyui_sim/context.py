"""What a running node may do: report progress, send previews, notice interrupts.

Real ComfyUI checks its interrupt flag when a node starts and inside ``ProgressBar`` updates, so a
node that reports progress stops within one step and a node that does not runs to its end. The
simulator keeps exactly that contract: nodes only ever see :meth:`RunContext.progress` and
:meth:`RunContext.sleep_step`, both of which raise :class:`Interrupted` when the flag is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .config import Faults
from .files import Folders


class Interrupted(Exception):
    """The prompt was interrupted (``execution_interrupted``, not ``execution_error``)."""


@dataclass
class NodeResult:
    values: tuple[Any, ...] = ()
    ui: dict[str, Any] | None = None


ProgressHook = Callable[[int, int, Image.Image | None], Awaitable[None]]


@dataclass
class InterruptFlag:
    """The global ``interrupt_processing`` flag plus a wake-up event for sleeping nodes."""

    event: asyncio.Event = field(default_factory=asyncio.Event)

    def set(self) -> None:
        self.event.set()

    def clear(self) -> None:
        self.event.clear()

    def is_set(self) -> bool:
        return self.event.is_set()


@dataclass
class RunContext:
    prompt_id: str
    node_id: str
    class_type: str
    prompt: dict[str, Any]
    folders: Folders
    faults: Faults
    flag: InterruptFlag
    report: ProgressHook

    def check(self) -> None:
        if self.flag.is_set():
            raise Interrupted()

    async def progress(self, value: int, total: int, preview: Image.Image | None = None) -> None:
        """A ``ProgressBar`` update: interrupt check, then ``progress_state``/``progress``/preview."""
        self.check()
        await self.report(value, total, preview)

    async def sleep_step(self, seconds: float) -> None:
        """Sleep that wakes early on interrupt (the step in flight is then abandoned)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self.flag.event.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def hang(self) -> None:
        """Never return unless interrupted."""
        await self.flag.event.wait()
        raise Interrupted()
