"""Live progress of a run: one bar per output, driven by the gateway's events.

The bar counts sampler steps while a node reports them; the status beside it
says where the output is (queue position, running node, transfer, stored,
failed), so a person sees at once which output is waiting on what.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mediagen.scaffold.errors import code_from_status
from mediagen.v1 import common_pb2, gateway_pb2

Stage = common_pb2.ProgressStage
RunState = gateway_pb2.RunState


class RunProgress:
    def __init__(self, console: Console, labels: list[str]) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks: list[TaskID] = [
            self._progress.add_task(label, total=None, status="waiting") for label in labels
        ]
        self._stored = [0] * len(labels)
        self._done: set[int] = set()

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def show(self, event: gateway_pb2.GatewayEvent) -> None:
        kind = event.WhichOneof("event")
        if kind == "output_accepted":
            accepted = event.output_accepted.accepted
            index = event.output_accepted.output_index
            if accepted.template and index < len(self._tasks):
                self._progress.update(self._tasks[index], description=f"[{index}] {accepted.template}")
            self._status(
                event.output_accepted.output_index,
                f"queued #{accepted.queue_position} on {accepted.backend} (seed {accepted.seed})",
            )
        elif kind == "output_progress":
            self._stage(event.output_progress.output_index, event.output_progress.progress)
        elif kind == "media_stored":
            index = event.media_stored.output_index
            self._stored[index] += 1
            self._done.add(index)
            self._status(index, f"[green]stored {self._stored[index]} file(s)")
        elif kind == "output_failed":
            failed = event.output_failed
            self._done.add(failed.output_index)
            self._status(failed.output_index, f"[red]failed: {code_from_status(failed.status).name}")
        elif kind == "run_completed":
            for task in self._tasks:
                total = self._progress.tasks[task].total or 1
                self._progress.update(task, total=total, completed=total)

    def show_run_event(self, event: gateway_pb2.RunEvent) -> None:
        """A durable run's event: the shared kinds as in ``show``, plus queue and state changes."""
        kind = event.WhichOneof("event")
        if kind == "queue_position":
            self._all(f"waiting for a worker, {event.queue_position.queue_position} run(s) ahead")
        elif kind == "state_changed":
            change = event.state_changed
            if change.state == RunState.RUN_STATE_QUEUED and change.HasField("reason"):
                self._all(f"[yellow]queued again: {change.reason.message[:80]}")
            elif change.state == RunState.RUN_STATE_QUEUED:
                self._all("queued")
            elif change.state == RunState.RUN_STATE_RUNNING:
                self._all("started" if change.attempt <= 1 else f"[yellow]resumed (attempt {change.attempt})")
        elif kind is not None:
            self.show(gateway_pb2.GatewayEvent(**{kind: getattr(event, kind)}))

    def _all(self, status: str) -> None:
        for index, task in enumerate(self._tasks):
            if index not in self._done:
                self._progress.update(task, status=status)

    def _stage(self, index: int, progress: common_pb2.Progress) -> None:
        task = self._tasks[index]
        if progress.stage == Stage.PROGRESS_STAGE_QUEUED:
            self._status(index, f"queued #{progress.queue_position}")
        elif progress.stage == Stage.PROGRESS_STAGE_EXECUTING:
            node = progress.node_type or progress.node_id
            if progress.max:
                self._progress.update(task, total=progress.max, completed=progress.value)
            self._status(index, f"running {node} ({progress.nodes_done}/{progress.nodes_total} nodes)")
        elif progress.stage == Stage.PROGRESS_STAGE_TRANSFERRING:
            self._status(index, "transferring")

    def _status(self, index: int, status: str) -> None:
        self._progress.update(self._tasks[index], status=status)
