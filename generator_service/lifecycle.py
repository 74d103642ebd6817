"""The life of one generation job, whatever its backend: one state, changed only by allowed moves.

A job is created, then started (its task runs). While running it may reach the backend: from
then on the backend may hold it, so stopping it means cancelling it there. It hands its caller a
last item (``completed`` or a failure), waits for the caller to let go, cleans up and ends. The
caller may let go at any moment: before the last item that stops the job (its task is cancelled
and cleans up), after it that lets the clean-up begin, before the start the job just ends.

Only the moves in ``MOVES`` are allowed; any other is a bug and raises :class:`IllegalMove`
rather than leaving a job half in one state and half in another. Waiting for the caller is an
``asyncio.Event`` that only the move out of ``DELIVERED`` (or past it) sets.
"""

from __future__ import annotations

import asyncio
import enum


class JobState(enum.Enum):
    CREATED = "created"
    """Constructed; its task has not started."""
    RUNNING = "running"
    """Its task runs and nothing of it is on the backend (inputs may be uploaded)."""
    ON_BACKEND = "on_backend"
    """Its task runs and the backend may hold it (a stop must cancel it there)."""
    DELIVERED = "delivered"
    """The caller's last item is out; the job waits for the caller to let go."""
    CLEANING_UP = "cleaning_up"
    """The caller let go or the job was stopped: what is left of it is being removed."""
    ENDED = "ended"
    """Its task is over."""


MOVES: dict[JobState, frozenset[JobState]] = {
    JobState.CREATED: frozenset({JobState.RUNNING, JobState.ENDED}),
    JobState.RUNNING: frozenset({JobState.ON_BACKEND, JobState.DELIVERED, JobState.CLEANING_UP}),
    # back to RUNNING when the backend refused the job without queueing any of it
    JobState.ON_BACKEND: frozenset({JobState.RUNNING, JobState.DELIVERED, JobState.CLEANING_UP}),
    JobState.DELIVERED: frozenset({JobState.CLEANING_UP}),
    JobState.CLEANING_UP: frozenset({JobState.ENDED}),
    JobState.ENDED: frozenset(),
}
"""Every allowed move, by the state it leaves."""

_PRODUCING = frozenset({JobState.RUNNING, JobState.ON_BACKEND})


class IllegalMove(RuntimeError):
    """A job was asked to move where its life does not go (a bug in the job)."""


class JobLife:
    """One job's state. The job's task moves it forward; the caller only lets go (``release``)."""

    __slots__ = ("_let_go", "_ran", "_state")

    def __init__(self) -> None:
        self._state = JobState.CREATED
        self._ran = JobState.CREATED
        """The last running state (``RUNNING`` or ``ON_BACKEND``): what the clean-up must undo."""
        self._let_go = asyncio.Event()

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def backend_may_hold(self) -> bool:
        """True once the job reached the backend (unless the backend refused it outright): its
        clean-up must stop and forget it there."""
        return self._ran is JobState.ON_BACKEND

    def start(self) -> None:
        self._move(JobState.RUNNING)

    def reach_backend(self) -> None:
        """The job is about to be handed to the backend (a lost answer may still have queued it)."""
        self._move(JobState.ON_BACKEND)

    def refused(self) -> None:
        """The backend refused the job and holds nothing of it."""
        self._move(JobState.RUNNING)

    def deliver(self) -> None:
        """The caller's last item is out."""
        self._move(JobState.DELIVERED)

    def release(self) -> bool:
        """The caller let go; True when the job was still producing, so its task must be cancelled.

        Letting go twice (the call's end and its cancellation both do) changes nothing more.
        """
        state = self._state
        if state is JobState.CREATED:
            self._move(JobState.ENDED)
        elif state in _PRODUCING:
            self._move(JobState.CLEANING_UP)
            return True
        elif state is JobState.DELIVERED:
            self._move(JobState.CLEANING_UP)
        return False

    def stop(self) -> None:
        """The job's task was cancelled (by ``release`` or at shutdown): clean up from here."""
        if self._state is not JobState.CLEANING_UP:
            self._move(JobState.CLEANING_UP)

    def end(self) -> None:
        self._move(JobState.ENDED)

    async def released(self) -> None:
        """Wait until the caller lets go (or the job is stopped)."""
        await self._let_go.wait()

    def _move(self, to: JobState) -> None:
        if to not in MOVES[self._state]:
            raise IllegalMove(f"a job cannot move from {self._state.value} to {to.value}")
        self._state = to
        if to in _PRODUCING:
            self._ran = to
        elif to is JobState.CLEANING_UP or to is JobState.ENDED:
            self._let_go.set()
