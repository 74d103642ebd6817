"""Entry point of ``mediagen``: parse, call the gateway, turn failures into exit codes.

Exit codes: 0 success; 2 bad input (a usage error or INVALID_ARGUMENT and its
kin from the service); 1 anything else, including a run with failed outputs.
Errors are printed as sentences with the status's details, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from rich.console import Console

from mediagen.cli import commands
from mediagen.cli.arguments import build_parser
from mediagen.cli.connection import gateway_target, open_gateway
from mediagen.cli.download import DownloadError
from mediagen.cli.params import BadParameter
from mediagen.scaffold.errors import describe_status, status_of_rpc_error

BAD_INPUT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}


async def dispatch(args: argparse.Namespace, console: Console) -> int:
    channel, stub = open_gateway(gateway_target(args.gateway))
    try:
        if args.command == "generate":
            return await commands.generate(stub, args, console)
        if args.command == "runs":
            return await commands.show_run(stub, args.run_id, console)
        if args.command == "media":
            return await commands.get_media(stub, args.media_id, args.output, console)
        return await commands.list_workflows(stub, console)
    finally:
        await channel.close()


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    try:
        return asyncio.run(dispatch(args, console))
    except grpc.RpcError as err:
        errors.print(f"[red]error:[/] {describe_status(status_of_rpc_error(err))}", highlight=False)
        return 2 if err.code() in BAD_INPUT_CODES else 1  # type: ignore[attr-defined]
    except (BadParameter, OSError) as err:
        errors.print(f"[red]error:[/] {err}", highlight=False)
        return 2
    except DownloadError as err:
        errors.print(f"[red]error:[/] {err}", highlight=False)
        return 1
    except KeyboardInterrupt:
        errors.print("cancelled")
        return 130


def main() -> None:
    sys.exit(run())
