"""Run a generation through the gateway with live progress, then fetch its files.

Shared by ``mediagen generate``, ``mediagen watch`` and the demo: they show
the same bars, the same table of stored objects and write the files to
``<out>/<run_id>/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from mediagen.cli.download import download_media, media_filename
from mediagen.cli.jsonlines import emit
from mediagen.cli.progress import RunProgress
from mediagen.cli.watch import follow_run
from mediagen.scaffold.errors import describe_status
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, storage_pb2


@dataclass
class RunResult:
    run_id: str = ""
    records: list[storage_pb2.MediaRecord] = field(default_factory=list)
    failures: list[gateway_pb2.OutputFailed] = field(default_factory=list)
    completed: gateway_pb2.RunCompleted | None = None
    files: list[Path] = field(default_factory=list)


def output_label(index: int, spec: gateway_pb2.OutputSpec) -> str:
    return f"[{index}] {spec.workflow.template or 'raw graph'}"


async def run_with_progress(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub,
    request: gateway_pb2.GatewayGenerateRequest,
    console: Console,
) -> RunResult:
    """Stream the run's events into progress bars; gRPC errors propagate."""
    result = RunResult()
    labels = [output_label(index, spec) for index, spec in enumerate(request.outputs)]
    with RunProgress(console, labels) as progress:
        async for event in stub.Generate(request):
            progress.show(event)
            collect(result, event, console)
    return result


async def watch_with_progress(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub,
    run_id: str,
    console: Console,
    output_count: int,
    *,
    reconnect_for: float = 120.0,
    on_reconnect: Callable[[str, int], None] | None = None,
) -> RunResult:
    """Follow a durable run (WatchRun, resumed across dropped connections) with the same bars."""
    result = RunResult(run_id=run_id)
    labels = [f"[{index}] output" for index in range(output_count)]
    with RunProgress(console, labels) as progress:

        def show(event: gateway_pb2.RunEvent) -> None:
            progress.show_run_event(event)
            collect(result, event, console)

        result.completed = await follow_run(
            stub, run_id, show, reconnect_for=reconnect_for, on_reconnect=on_reconnect
        )
    return result


async def run_as_json(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub, request: gateway_pb2.GatewayGenerateRequest
) -> RunResult:
    """The same run with each event printed as a JSON line instead of bars."""
    result = RunResult()
    async for event in stub.Generate(request):
        emit(event)
        collect(result, event, None)
    return result


def collect(
    result: RunResult, event: gateway_pb2.GatewayEvent | gateway_pb2.RunEvent, console: Console | None
) -> None:
    """Keep what the end of a run needs (id, records, failures, completion); tell a person."""
    kind = event.WhichOneof("event")
    if kind == "run_created" and isinstance(event, gateway_pb2.GatewayEvent):
        result.run_id = event.run_created.run.run_id
        if console is not None:
            console.print(f"run [bold]{result.run_id}[/] created")
    elif kind == "media_stored":
        result.records.append(event.media_stored.record)
    elif kind == "output_failed":
        result.failures.append(event.output_failed)
        if console is None:
            return
        console.print(
            f"[red]output {event.output_failed.output_index} failed:[/] "
            f"{describe_status(event.output_failed.status)}",
            highlight=False,
        )
    elif kind == "run_completed":
        result.completed = event.run_completed


async def fetch_files(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub, result: RunResult, out_dir: Path
) -> list[Path]:
    for record in result.records:
        path = out_dir / result.run_id / media_filename(record)
        await download_media(stub, record.media_id, path)
        result.files.append(path)
    return result.files
