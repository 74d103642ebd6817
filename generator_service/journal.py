"""The prompts this generator has handed to ComfyUI and not yet cleaned up: one interface, two stores.

:class:`Journal` is what jobs and recovery use. :class:`FileJournal` (below) keeps it on local disk,
one directory per replica: a dead replica's prompts are only cleaned up when that replica starts
again on the same directory. :class:`generator_service.nats_journal.NatsJournal` keeps it in a
NATS JetStream key-value bucket with a lease per replica, so any live replica that reaches the
same ComfyUI cleans up after a dead one within seconds and replicas need no volume.

ComfyUI has no server-side timeout (its queue runs whatever it holds to the end), so a generator
that dies mid-job would leave its prompt running, its output written and its history kept. One
small JSON file per prompt is written (atomically: temporary file, then rename) *before* the
prompt is posted, which is possible because the generator chooses the prompt id, and removed once
the job has been cleaned up. Whatever is left when the generator starts again, or when a
backend comes back up, is an orphan to stop (see ``recovery``).

Each replica should have a state directory of its own. As a guard should two share one, an entry
written by another process that is still alive on this host is never treated as an orphan. The
files are not fsynced: they have to survive the death of the process, which the page cache does,
and a job should not wait on the disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("mediagen.generator.journal")
_SUFFIX = ".json"


class JournalUnavailable(RuntimeError):
    """The state directory cannot be created or read (a start-up error)."""


@dataclass(frozen=True)
class Entry:
    prompt_id: str
    backend: str
    """The backend's stable identity: an attached ComfyUI's base URL (names change with the
    configuration's order, the URL is what was called); a managed one's name, ``managed-<i>``
    (its port may be new at every start)."""
    owner: str
    """The writing generator's instance id."""
    pid: int
    host: str


def attached(identity: str) -> bool:
    """An attached ComfyUI is named by its URL and reachable by every replica configured with it;
    a managed one (``managed-<i>``) belongs to the replica that runs it and dies with it."""
    return "://" in identity


class Journal(ABC):
    """Prompts posted (or about to be) and not yet cleaned up, by backend identity.

    ``record`` is awaited before ``POST /prompt``; ``settle`` when the job's task is over (what is
    still recorded then is an orphan); ``remove`` once nothing of the prompt is left on its backend.
    ``on_orphans`` is called with a backend identity when orphans appear there other than through
    a job of ours settling (another replica's, adopted), so they are cleaned up without waiting
    for the next health check.
    """

    instance: str
    on_orphans: Callable[[str], None] | None = None

    @abstractmethod
    async def close(self) -> None:
        """Stop background work; what is recorded stays for whoever recovers it."""

    @abstractmethod
    async def record(self, backend: str, prompt_id: str) -> None: ...

    @abstractmethod
    def settle(self, prompt_id: str) -> None: ...

    @abstractmethod
    async def remove(self, prompt_id: str) -> None: ...

    @abstractmethod
    def orphans(self, backend: str) -> list[Entry]: ...

    @abstractmethod
    def use_backends(self, backends: set[str]) -> None:
        """The identities of the backends this generator has (the only ones it can clean up)."""


class FileJournal(Journal):
    """One small JSON file per prompt in a directory of this replica's own (see the module doc)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.instance = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._entries: dict[str, Entry] = {}
        self._live: set[str] = set()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._load()
        except OSError as exc:
            raise JournalUnavailable(f"state directory {directory} is not usable: {exc}") from exc

    async def record(self, backend: str, prompt_id: str) -> None:
        """Before ``POST /prompt``: from here on the prompt may exist on ``backend`` (its identity)."""
        entry = Entry(prompt_id, backend, self.instance, os.getpid(), self._host)
        self._entries[prompt_id] = entry
        self._live.add(prompt_id)
        temporary = self.directory / f".{prompt_id}.tmp"
        try:
            temporary.write_text(json.dumps(asdict(entry)))
            os.replace(temporary, self._path(prompt_id))
        except OSError as exc:  # a full disk should not stop generation; recovery is a safety net
            log.error("could not journal prompt %s: %s", prompt_id, exc)

    def settle(self, prompt_id: str) -> None:
        """Its job is over; an entry still here now is an orphan, left for recovery."""
        self._live.discard(prompt_id)

    async def remove(self, prompt_id: str) -> None:
        """Nothing of the prompt is left on the backend (or it never got there)."""
        self._forget(prompt_id)

    def orphans(self, backend: str) -> list[Entry]:
        """Entries of ``backend`` (its identity) that no running job of ours will clean up."""
        return [
            entry
            for entry in self._entries.values()
            if entry.backend == backend and entry.prompt_id not in self._live
        ]

    async def close(self) -> None:
        """Nothing to flush: each entry is written when it is recorded."""

    def use_backends(self, backends: set[str]) -> None:
        """Drop what an earlier run left on backends no longer configured: nobody could stop it."""
        for entry in list(self._entries.values()):
            if entry.backend not in backends:
                log.warning("dropping prompt %s of unconfigured backend %s", entry.prompt_id, entry.backend)
                self._forget(entry.prompt_id)

    def _forget(self, prompt_id: str) -> None:
        self._live.discard(prompt_id)
        self._entries.pop(prompt_id, None)
        with contextlib.suppress(FileNotFoundError):
            self._path(prompt_id).unlink()

    def _path(self, prompt_id: str) -> Path:
        return self.directory / f"{prompt_id}{_SUFFIX}"

    def _load(self) -> None:
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):  # a write cut short: the prompt was never posted
                path.unlink(missing_ok=True)
            elif path.suffix == _SUFFIX:
                entry = _read(path)
                if entry is None:
                    log.warning("ignoring unreadable journal entry %s", path.name)
                elif not self._held_by_another(entry):
                    self._entries[entry.prompt_id] = entry
        if self._entries:
            log.info("%d prompt(s) left by an earlier run to clean up", len(self._entries))

    def _held_by_another(self, entry: Entry) -> bool:
        """Written by another generator process that is still running here."""
        if entry.host != self._host or entry.pid == os.getpid():
            return False
        try:
            os.kill(entry.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _read(path: Path) -> Entry | None:
    try:
        raw = json.loads(path.read_text())
        entry = Entry(
            str(raw["prompt_id"]), str(raw["backend"]), str(raw["owner"]), int(raw["pid"]), str(raw["host"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry if path.name == f"{entry.prompt_id}{_SUFFIX}" else None
