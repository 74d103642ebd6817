"""What each ``mediagen`` sub-command does, given an open gateway stub."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mediagen.cli.download import download_media, media_filename
from mediagen.cli.generate import (
    RunResult,
    collect,
    fetch_files,
    run_as_json,
    run_with_progress,
    watch_with_progress,
)
from mediagen.cli.jsonlines import as_dict, emit
from mediagen.cli.params import BadParameter, split_assignment
from mediagen.cli.render import (
    PRIORITY,
    STATE,
    human_size,
    media_table,
    parse_since,
    runs_table,
    state_name,
    status_summary,
    workflows_table,
)
from mediagen.cli.request import output_from_args, request_from_file
from mediagen.cli.watch import follow_run
from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2

if TYPE_CHECKING:
    from mediagen.v1.gateway_pb2_grpc import GatewayServiceAsyncStub as Stub


async def generate(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    request = await build_request(stub, args)
    if args.json:
        result = await run_as_json(stub, request)
        if not args.no_download and result.records:
            await _fetch_as_json(stub, result, args.out)
        return 1 if result.completed is None or result.completed.outputs_failed else 0
    result = await run_with_progress(stub, request, console)
    console.print(media_table(result.records))
    if not args.no_download and result.records:
        for path in await fetch_files(stub, result, args.out):
            console.print(f"wrote {path}", highlight=False)
    completed = result.completed
    if completed is None:
        return 1
    seconds = completed.timings.total.ToTimedelta().total_seconds()
    console.print(
        f"run {completed.run_id}: {completed.media_stored} media stored, "
        f"{completed.outputs_failed} output(s) failed, {seconds:.2f}s"
    )
    return 1 if completed.outputs_failed else 0


async def build_request(stub: Stub, args: argparse.Namespace) -> gateway_pb2.GatewayGenerateRequest:
    catalog = await stub.ListWorkflows(generator_pb2.ListWorkflowsRequest())
    templates = {template.name: template for template in catalog.templates}
    if args.run_file:
        request = request_from_file(args.run_file, templates)
    elif args.outputs:
        request = gateway_pb2.GatewayGenerateRequest(
            outputs=[output_from_args(group, templates) for group in args.outputs]
        )
    else:
        raise BadParameter("give at least one --template (or --graph), or a --run-file")
    request.run_id = args.run_id or request.run_id
    request.concurrency = args.concurrency or request.concurrency
    _apply_context(request.context, args)
    return request


def _apply_context(context: storage_pb2.RunContext, args: argparse.Namespace) -> None:
    for name in ("schema", "execution_mode", "safety_level", "input_text"):
        if getattr(args, name):
            setattr(context, name, getattr(args, name))
    for label in args.label:
        key, value = split_assignment(label, "--label")
        context.labels[key] = value


async def _fetch_as_json(stub: Stub, result: RunResult, out: Path) -> None:
    for record in result.records:
        path = out / result.run_id / media_filename(record)
        await download_media(stub, record.media_id, path)
        emit({"file": str(path), "media_id": record.media_id, "sha256": record.descriptor.sha256})


async def submit(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    built = await build_request(stub, args)
    request = gateway_pb2.SubmitRunRequest(
        run_id=built.run_id,
        context=built.context,
        outputs=built.outputs,
        concurrency=built.concurrency,
        priority=PRIORITY[args.priority],
    )
    status = await stub.SubmitRun(request)
    if args.json:
        emit(status)
    else:
        print(status.run_id, flush=True)
    return 0


async def watch(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    errors = Console(stderr=True)
    first = await stub.GetRun(storage_pb2.GetRunRequest(run_id=args.run_id))
    if not first.HasField("status"):
        errors.print(f"run {args.run_id} is not a durable run: see mediagen runs show", highlight=False)
        return 1

    def resumed(reason: str, last: int) -> None:
        errors.print(
            f"[yellow]connection lost ({reason}); resuming after event {last}[/]",
            highlight=False,
            soft_wrap=True,
        )

    if args.json:
        result = RunResult(run_id=args.run_id)

        def print_event(event: gateway_pb2.RunEvent) -> None:
            emit(event)
            collect(result, event, None)

        ended = await follow_run(
            stub, args.run_id, print_event, reconnect_for=args.reconnect_for, on_reconnect=resumed
        )
        if args.out is not None:
            await _fetch_as_json(stub, result, args.out)
        return 0 if ended.state == gateway_pb2.RUN_STATE_SUCCEEDED else 1

    console.print(f"run [bold]{args.run_id}[/] {state_name(first.status.state)}")
    result = await watch_with_progress(
        stub,
        args.run_id,
        console,
        first.status.output_count,
        reconnect_for=args.reconnect_for,
        on_reconnect=resumed,
    )
    completed = result.completed
    assert completed is not None
    console.print(media_table(result.records))
    if args.out is not None:
        for path in await fetch_files(stub, result, args.out):
            console.print(f"wrote {path}", highlight=False)
    seconds = completed.timings.total.ToTimedelta().total_seconds()
    console.print(
        f"run {args.run_id} {state_name(completed.state)}: {completed.media_stored} media stored, "
        f"{completed.outputs_failed} output(s) failed, {seconds:.2f}s"
    )
    return 0 if completed.state == gateway_pb2.RUN_STATE_SUCCEEDED else 1


async def list_runs(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    request = list_request(args)
    runs: list[gateway_pb2.RunStatus] = []
    while True:
        page = await stub.ListRuns(request)
        if args.json:
            for status in page.runs:
                emit(status)
        runs.extend(page.runs)
        if not (args.all and page.next_page_token):
            break
        request.page_token = page.next_page_token
    if not args.json:
        console.print(runs_table(runs))
    if page.next_page_token and not args.all:
        Console(stderr=True).print(
            f"more runs: --page-token {page.next_page_token} (or --all)", highlight=False, soft_wrap=True
        )
    return 0


def list_request(args: argparse.Namespace) -> gateway_pb2.ListRunsRequest:
    if not 1 <= args.limit <= 500:
        raise BadParameter(f"--limit {args.limit}: between 1 and 500")
    request = gateway_pb2.ListRunsRequest(
        states=[STATE[name] for name in args.states], page_size=args.limit, page_token=args.page_token
    )
    for label in args.labels:
        key, value = split_assignment(label, "--label")
        request.labels[key] = value
    if args.since:
        request.created_after.FromDatetime(parse_since(args.since))
    return request


async def cancel_run(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    status = await stub.CancelRun(gateway_pb2.CancelRunRequest(run_id=args.run_id))
    if args.json:
        emit(status)
        return 0
    asked = "cancel requested" if status.cancel_requested else "not cancelled (already finished)"
    console.print(f"run {status.run_id}: {asked}, now {state_name(status.state)}", highlight=False)
    return 0


async def show_run(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    response = await stub.GetRun(storage_pb2.GetRunRequest(run_id=args.run_id))
    if args.json:
        emit(response)
        return 0
    run = response.run
    console.print(f"run [bold]{run.run_id}[/] created {run.created_at.ToDatetime():%Y-%m-%d %H:%M:%S} UTC")
    if response.HasField("status"):
        console.print(status_summary(response.status), highlight=False)
    context = run.context
    for name in ("schema", "execution_mode", "safety_level", "input_text"):
        if getattr(context, name):
            console.print(f"  {name}: {getattr(context, name)}", highlight=False)
    for key, value in sorted(context.labels.items()):
        console.print(f"  label {key}: {value}", highlight=False)
    console.print(media_table(response.media, title=f"{len(response.media)} media"))
    return 0


async def get_media(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    media_id, output = args.media_id, args.output
    target = output or Path(media_id)
    record = await download_media(stub, media_id, target)
    if output is None:
        named = target.with_name(media_filename(record))
        target.rename(named)
        target = named
    if args.json:
        emit({"file": str(target), "record": as_dict(record)})
        return 0
    console.print(
        f"wrote {target} ({human_size(record.descriptor.size_bytes)}, sha256 "
        f"{record.descriptor.sha256[:16]}...)",
        highlight=False,
    )
    return 0


async def list_workflows(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    catalog = await stub.ListWorkflows(generator_pb2.ListWorkflowsRequest())
    if args.json:
        for template in catalog.templates:
            emit(template)
        return 0
    console.print(workflows_table(catalog))
    return 0
