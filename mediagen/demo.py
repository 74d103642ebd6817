"""``python -m mediagen.demo``: the whole system on this machine, end to end, in one command.

Starts MinIO, NATS with JetStream, a ComfyUI (the simulator, or a real one named by
``MEDIAGEN_COMFYUI_URL`` / ``MEDIAGEN_COMFYUI_COMMAND``), storage, generator
and gateway as separate processes; generates a run with an image, an animated
image and an audio clip through the gateway using model-free templates (so a
real ComfyUI needs no weights), plus an image from the Images API simulator and
one from the predictions simulator (the other backend kinds); shows where each
object landed in MinIO; writes the files to ``./out/<run_id>/``; then submits
the same kind of run as a durable run (queued in NATS JetStream, executed by a
gateway worker) and watches it to the end; and stops everything. With
``--keep-running`` the stack stays up, with commands to try against it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from mediagen.cli.connection import open_gateway
from mediagen.cli.generate import fetch_files, run_with_progress, watch_with_progress
from mediagen.cli.render import dimensions, human_size, state_name
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.stack.minio import cache_dir
from mediagen.stack.process import ProcessExited
from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2

if TYPE_CHECKING:
    from mediagen.v1.gateway_pb2_grpc import GatewayServiceAsyncStub as GatewayStub


def demo_request() -> gateway_pb2.GatewayGenerateRequest:
    def output(template: str, **ints: int) -> gateway_pb2.OutputSpec:
        workflow = generator_pb2.WorkflowSpec(template=template)
        for name, value in ints.items():
            workflow.parameters[name].int_value = value
        return gateway_pb2.OutputSpec(workflow=workflow)

    def remote_output(template: str, **texts: str) -> gateway_pb2.OutputSpec:
        spec = output(template)
        for name, text in texts.items():
            spec.workflow.parameters[name].string_value = text
        return spec

    return gateway_pb2.GatewayGenerateRequest(
        context=storage_pb2.RunContext(schema="demo", execution_mode="batch", input_text="mediagen demo"),
        outputs=[
            output("solid_image", width=512, height=512, color=0x2E86AB),
            output("animated_webp", frames=12, color=0xF18F01),
            output("empty_audio"),
            remote_output("gpt_image", prompt="a lighthouse at dusk", size="1024x1024"),
            remote_output("flux_schnell", prompt="a fox in the snow", megapixels="0.25"),
        ],
    )


async def generate(stack: LocalStack, out_dir: Path, console: Console) -> int:
    channel, stub = open_gateway(stack.gateway_address)
    try:
        result = await run_with_progress(stub, demo_request(), console)
        console.print(f"\n[bold]stored in MinIO[/] at http://{stack.minio.endpoint if stack.minio else '?'}:")
        for record in result.records:
            d = record.descriptor
            facts = ", ".join(filter(None, (d.mime_type, human_size(d.size_bytes), dimensions(d))))
            console.print(
                f"  s3://{record.bucket}/{record.key}  ({facts})\n    sha256 {d.sha256}",
                highlight=False,
                soft_wrap=True,
            )
        for path in await fetch_files(stub, result, out_dir):
            console.print(f"wrote {path}", highlight=False)
        failed = result.completed.outputs_failed if result.completed else len(demo_request().outputs)
        return 1 if failed else await submit_and_watch(stub, out_dir, console)
    finally:
        await channel.close()


async def submit_and_watch(stub: GatewayStub, out_dir: Path, console: Console) -> int:
    """The same outputs as a durable run: SubmitRun answers at once, WatchRun follows it."""
    request = demo_request()
    status = await stub.SubmitRun(
        gateway_pb2.SubmitRunRequest(
            context=request.context,
            outputs=request.outputs,
            priority=gateway_pb2.RUN_PRIORITY_HIGH,
        )
    )
    console.print(
        f"\n[bold]durable run[/] {status.run_id} submitted ({state_name(status.state)}); watching it:",
        highlight=False,
    )
    result = await watch_with_progress(stub, status.run_id, console, status.output_count)
    completed = result.completed
    assert completed is not None
    console.print(
        f"run {status.run_id} {state_name(completed.state)}: {completed.media_stored} media stored",
        highlight=False,
    )
    for path in await fetch_files(stub, result, out_dir):
        console.print(f"wrote {path}", highlight=False)
    return 0 if completed.state == gateway_pb2.RUN_STATE_SUCCEEDED else 1


def print_commands(stack: LocalStack, console: Console) -> None:
    gateway = stack.gateway_address
    grpcurl = shutil.which("grpcurl") or str(cache_dir() / "bin" / "grpcurl")
    body = '{"outputs":[{"workflow":{"template":"solid_image","parameters":{"width":{"intValue":"64"}}}}]}'
    console.print("\n[bold]the stack is running[/] (Ctrl-C to stop)", highlight=False)
    for name, address in stack.addresses.items():
        console.print(f"  {name:<10} {address}  (pid {stack.processes[name].pid})", highlight=False)
    for kind, url in stack.remote_urls.items():
        console.print(f"  {kind:<10} {url}  (simulator)", highlight=False)
    console.print(
        f"  comfyui    {stack.comfyui_url}\n  minio      {stack.minio.endpoint if stack.minio else ''}"
        f"  bucket {stack.bucket}\n  nats       {stack.nats.url if stack.nats else ''}"
        f"\n  logs       {stack.log_dir}",
        highlight=False,
    )
    console.print("\n[bold]try[/]:", highlight=False)
    for line in (
        f"{grpcurl} -plaintext {gateway} list",
        f"{grpcurl} -plaintext {gateway} mediagen.v1.GatewayService/ListWorkflows",
        f"{grpcurl} -plaintext -d '{body}' {gateway} mediagen.v1.GatewayService/Generate",
        f"MEDIAGEN_GATEWAY={gateway} mediagen workflows",
        f"MEDIAGEN_GATEWAY={gateway} mediagen generate --template solid_image --param width=256 --out out",
        f"MEDIAGEN_GATEWAY={gateway} mediagen submit --template solid_image --priority high",
        f"MEDIAGEN_GATEWAY={gateway} mediagen watch RUN_ID --out out",
        f"MEDIAGEN_GATEWAY={gateway} mediagen runs list --since 1h",
        f"MEDIAGEN_GATEWAY={gateway} mediagen runs show RUN_ID",
        f"MEDIAGEN_GATEWAY={gateway} mediagen media get MEDIA_ID -o file.png",
    ):
        console.print(f"  {line}", highlight=False, soft_wrap=True)


WELL_KNOWN_PORTS = {"gateway": 50051, "generator": 50052, "storage": 50053}


def well_known_ports() -> dict[str, int]:
    """The ports the README's grpcurl lines use, or ``MEDIAGEN_<SERVICE>_PORT`` where set."""
    ports = {}
    for name, default in WELL_KNOWN_PORTS.items():
        value = os.environ.get(f"MEDIAGEN_{name.upper()}_PORT", "")
        ports[name] = int(value) if value.isdigit() and int(value) else default
    return ports


def wait_for_interrupt() -> None:
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not stop:
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediagen.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="where to write the files (default ./out)"
    )
    parser.add_argument("--keep-running", action="store_true", help="keep the stack up until Ctrl-C")
    args = parser.parse_args(argv)
    console = Console()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mediagen-demo-") as work:
        ports = well_known_ports() if args.keep_running else {}
        config = StackConfig(work_dir=Path(work), remote_simulators=True, ports=ports)
        comfy = config.comfyui_url or config.comfyui_command or "the ComfyUI simulator"
        console.print(
            f"starting MinIO, NATS, {comfy}, the Images API and predictions simulators, storage, generator "
            "and gateway ...",
            highlight=False,
        )
        try:
            stack = LocalStack(config).start()
        except (ProcessExited, TimeoutError) as exc:  # the part's own words say why
            console.print("the stack did not start:", style="bold red")
            console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            return 1
        try:
            console.print(
                f"stack up in {time.monotonic() - started:.1f}s, gateway at {stack.gateway_address}",
                highlight=False,
            )
            code = asyncio.run(generate(stack, args.out, console))
            if args.keep_running:
                print_commands(stack, console)
                wait_for_interrupt()
            console.print("stopping the stack ...")
        finally:
            stack.stop()
    console.print(f"done in {time.monotonic() - started:.1f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
