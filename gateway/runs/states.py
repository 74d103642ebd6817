"""The state machine of a durable run, as an explicit table of allowed moves.

QUEUED -> RUNNING when a worker takes it; RUNNING -> QUEUED when the generator has no
room (the run waits again) ; RUNNING -> RUNNING when a second worker resumes the run of
a dead one; QUEUED or RUNNING -> a final state. Final states never change.
"""

from __future__ import annotations

from mediagen.v1 import gateway_pb2

RunState = gateway_pb2.RunState
QUEUED = gateway_pb2.RUN_STATE_QUEUED
RUNNING = gateway_pb2.RUN_STATE_RUNNING
SUCCEEDED = gateway_pb2.RUN_STATE_SUCCEEDED
FAILED = gateway_pb2.RUN_STATE_FAILED
CANCELLED = gateway_pb2.RUN_STATE_CANCELLED

FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
MOVES: dict[int, frozenset[int]] = {
    QUEUED: frozenset({RUNNING, CANCELLED, FAILED}),
    RUNNING: frozenset({RUNNING, QUEUED, SUCCEEDED, FAILED, CANCELLED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}


class IllegalMove(Exception):
    """A code path tried a move the table does not allow: a bug, never a user error."""


def check_move(current: int, target: int) -> None:
    if target not in MOVES[current]:
        raise IllegalMove(f"{name(current)} -> {name(target)}")


def name(state: int) -> str:
    return RunState.Name(state).removeprefix("RUN_STATE_").lower()  # type: ignore[arg-type]
