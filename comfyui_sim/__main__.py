"""Command line: run a simulator until SIGTERM/SIGINT.

Prints ``comfyui-sim listening on http://HOST:PORT`` once bound (with the real port when
``--port 0``), so a parent process can read the URL from the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from sim_scaffold.serving import serve_until_signalled

from .config import Faults, SimulatorConfig
from .server import start_simulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m comfyui_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--step-delay", type=float, default=None, help="seconds per sampler step")
    parser.add_argument("--node-delay", action="append", default=[], metavar="CLASS=SECONDS")
    parser.add_argument("--fail-node", action="append", default=[], metavar="SELECTOR=MESSAGE")
    parser.add_argument("--hang-node", action="append", default=[], metavar="SELECTOR")
    parser.add_argument(
        "--uninterruptible",
        action="append",
        default=[],
        metavar="SELECTOR=SECONDS",
        help="the node ignores interrupts for this long",
    )
    parser.add_argument("--crash-on-node", action="append", default=[], metavar="SELECTOR")
    parser.add_argument("--drop-ws-on-node", action="append", default=[], metavar="SELECTOR")
    parser.add_argument("--drop-ws-after-events", type=int, default=None)
    parser.add_argument("--view-bytes-per-s", type=float, default=None)
    parser.add_argument("--view-truncate-after", type=int, default=None)
    parser.add_argument("--view-corrupt", action="store_true")
    parser.add_argument("--silent", action="store_true", help="send no per-prompt WebSocket events")
    parser.add_argument("--faults-json", default=None, help="a JSON object of Faults fields")
    parser.add_argument(
        "--ignore-sigterm", action="store_true", help="stay up on SIGTERM (a process stuck in a driver call)"
    )
    return parser.parse_args(argv)


def faults_from(args: argparse.Namespace) -> Faults:
    faults = Faults()
    if args.faults_json:
        faults.update(json.loads(args.faults_json))
    if args.step_delay is not None:
        faults.step_delay_s = args.step_delay
    for item in args.node_delay:
        name, _, seconds = item.partition("=")
        faults.node_delay_s[name] = float(seconds)
    for item in args.fail_node:
        name, _, message = item.partition("=")
        faults.fail_nodes[name] = message or "injected failure"
    faults.hang_nodes += args.hang_node
    for item in args.uninterruptible:
        name, _, seconds = item.partition("=")
        faults.uninterruptible_s[name] = float(seconds)
    faults.crash_on_node += args.crash_on_node
    faults.drop_ws_on_node += args.drop_ws_on_node
    faults.drop_ws_after_events = args.drop_ws_after_events
    faults.view_bytes_per_s = args.view_bytes_per_s
    faults.view_truncate_after = args.view_truncate_after
    faults.view_corrupt = args.view_corrupt
    faults.silent_prompts = args.silent
    return faults


async def serve(args: argparse.Namespace) -> None:
    config = SimulatorConfig(host=args.host, port=args.port, data_dir=args.data_dir, faults=faults_from(args))
    handle = await start_simulator(config)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signals = (signal.SIGINT,) if args.ignore_sigterm else (signal.SIGTERM, signal.SIGINT)
    await serve_until_signalled(handle, "comfyui-sim", signals)
    print("comfyui-sim stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
