"""Entry point of ``mediagen``: parse, call the gateway, turn failures into exit codes.

Exit codes: 0 success; 2 bad input (a usage error or INVALID_ARGUMENT and its
kin from the service); 1 anything else, including a run with failed outputs.
Errors are printed as sentences with the status's details, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import grpc
from rich.console import Console

from mediagen.cli import commands
from mediagen.cli.arguments import build_parser
from mediagen.cli.connection import gateway_target, open_gateway
from mediagen.cli.download import DownloadError
from mediagen.cli.jsonlines import emit, error_object
from mediagen.cli.params import BadParameter
from mediagen.cli.watch import StreamEnded
from mediagen.scaffold.errors import describe_status, status_of_rpc_error

if TYPE_CHECKING:
    from mediagen.v1.gateway_pb2_grpc import GatewayServiceAsyncStub as Stub

BAD_INPUT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}


Command = Callable[["Stub", argparse.Namespace, Console], Awaitable[int]]
COMMANDS: dict[str, Command] = {
    "generate": commands.generate,
    "submit": commands.submit,
    "watch": commands.watch,
    "runs show": commands.show_run,
    "runs list": commands.list_runs,
    "runs cancel": commands.cancel_run,
    "media": commands.get_media,
    "workflows": commands.list_workflows,
}


async def dispatch(args: argparse.Namespace, console: Console) -> int:
    channel, stub = open_gateway(gateway_target(args.gateway), args.ca_file, args.cert_file, args.key_file)
    try:
        command = COMMANDS[args.command if args.command != "runs" else f"runs {args.runs_command}"]
        return await command(stub, args, console)
    finally:
        await channel.close()


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    as_json = bool(getattr(args, "json", False))
    try:
        return asyncio.run(dispatch(args, console))
    except grpc.RpcError as err:
        status = status_of_rpc_error(err)
        if as_json:
            emit(error_object(status), sys.stderr)
        else:
            errors.print(f"[red]error:[/] {describe_status(status)}", highlight=False)
        return 2 if err.code() in BAD_INPUT_CODES else 1  # type: ignore[attr-defined]
    except (BadParameter, OSError) as err:
        _local_error(errors, as_json, "INVALID_ARGUMENT", err)
        return 2
    except (DownloadError, StreamEnded) as err:
        _local_error(errors, as_json, "FAILED", err)
        return 1
    except KeyboardInterrupt:
        errors.print("cancelled")
        return 130


def _local_error(errors: Console, as_json: bool, code: str, err: Exception) -> None:
    if as_json:
        emit({"error": {"code": code, "message": str(err)}}, sys.stderr)
    else:
        errors.print(f"[red]error:[/] {err}", highlight=False)


def main() -> None:
    sys.exit(run())
