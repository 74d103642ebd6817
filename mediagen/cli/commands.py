"""What each ``mediagen`` sub-command does, given an open gateway stub."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mediagen.cli.download import download_media, media_filename
from mediagen.cli.generate import fetch_files, run_with_progress
from mediagen.cli.params import BadParameter, split_assignment
from mediagen.cli.render import human_size, media_table, workflows_table
from mediagen.cli.request import output_from_args, request_from_file
from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2

if TYPE_CHECKING:
    from mediagen.v1.gateway_pb2_grpc import GatewayServiceAsyncStub as Stub


async def generate(stub: Stub, args: argparse.Namespace, console: Console) -> int:
    request = await build_request(stub, args)
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


async def show_run(stub: Stub, run_id: str, console: Console) -> int:
    response = await stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id))
    run = response.run
    console.print(f"run [bold]{run.run_id}[/] created {run.created_at.ToDatetime():%Y-%m-%d %H:%M:%S} UTC")
    context = run.context
    for name in ("schema", "execution_mode", "safety_level", "input_text"):
        if getattr(context, name):
            console.print(f"  {name}: {getattr(context, name)}", highlight=False)
    for key, value in sorted(context.labels.items()):
        console.print(f"  label {key}: {value}", highlight=False)
    console.print(media_table(response.media, title=f"{len(response.media)} media"))
    return 0


async def get_media(stub: Stub, media_id: str, output: Path | None, console: Console) -> int:
    target = output or Path(media_id)
    record = await download_media(stub, media_id, target)
    if output is None:
        named = target.with_name(media_filename(record))
        target.rename(named)
        target = named
    console.print(
        f"wrote {target} ({human_size(record.descriptor.size_bytes)}, sha256 "
        f"{record.descriptor.sha256[:16]}...)",
        highlight=False,
    )
    return 0


async def list_workflows(stub: Stub, console: Console) -> int:
    console.print(workflows_table(await stub.ListWorkflows(generator_pb2.ListWorkflowsRequest())))
    return 0
