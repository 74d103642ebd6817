"""The ``mediagen`` command line: sub-commands and the output groups of ``generate`` and ``submit``.

argparse keeps no order between different options, so ``--template`` and the
``--param``/``--input``/``--timeout`` options after it are collected by
actions that append to the latest output group.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from mediagen.cli.request import OutputArgs


class _StartOutput(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option: str | None = None,
    ) -> None:
        group = (
            OutputArgs(template=str(values))
            if self.dest == "template"
            else OutputArgs(graph_file=Path(str(values)))
        )
        namespace.outputs = [*(namespace.outputs or []), group]


class _OutputOption(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option: str | None = None,
    ) -> None:
        if not namespace.outputs:
            parser.error(f"{option} must follow a --template or --graph")
        group: OutputArgs = namespace.outputs[-1]
        if self.dest == "timeout":
            group.timeout = float(str(values))
        else:
            getattr(group, self.dest).append(str(values))


PRIORITIES = ("low", "normal", "high")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def package_version() -> str:
    try:
        return metadata.version("mediagen")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediagen", description="Generate media through the mediagen gateway."
    )
    parser.add_argument("--version", action="version", version=f"mediagen {package_version()}")
    parser.add_argument("--gateway", help="gateway address (default: $MEDIAGEN_GATEWAY or 127.0.0.1:50051)")
    for name, what in (
        ("ca-file", "CA the gateway's certificate is checked against, for TLS"),
        ("cert-file", "client certificate, for a gateway that requires one (mutual TLS)"),
        ("key-file", "the client certificate's private key"),
    ):
        variable = "MEDIAGEN_" + name.replace("-", "_").upper()
        parser.add_argument(f"--{name}", type=Path, default=None, help=f"{what} (default: ${variable})")
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per line (field names as in the .proto files), for scripts",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser(
        "generate", parents=[json_flag], help="generate a run and download its media"
    )
    _request_options(generate)
    _download_options(generate)
    submit = commands.add_parser(
        "submit", parents=[json_flag], help="queue a durable run and print its id (see watch)"
    )
    _request_options(submit)
    submit.add_argument("--priority", choices=PRIORITIES, default="normal", help="default: normal")
    watch = commands.add_parser(
        "watch", parents=[json_flag], help="follow a durable run's events until it ends"
    )
    watch.add_argument("run_id")
    watch.add_argument(
        "--out", type=Path, default=None, help="write the run's files to OUT/<run_id>/ once it ended"
    )
    watch.add_argument(
        "--reconnect-for",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to keep reconnecting after the connection dropped (default 120)",
    )
    _runs_parser(commands.add_parser("runs", help="look at, list and cancel runs"), json_flag)
    media = commands.add_parser("media", help="media files").add_subparsers(
        dest="media_command", required=True
    )
    get = media.add_parser("get", parents=[json_flag], help="download one media file")
    get.add_argument("media_id")
    get.add_argument("-o", "--output", type=Path, help="file to write (default: named after the media)")
    commands.add_parser("workflows", parents=[json_flag], help="templates and their parameters")
    return parser


def _runs_parser(parser: argparse.ArgumentParser, json_flag: argparse.ArgumentParser) -> None:
    runs = parser.add_subparsers(dest="runs_command", required=True)
    runs.add_parser("show", parents=[json_flag], help="a run, its state and its media").add_argument("run_id")
    listing = runs.add_parser("list", parents=[json_flag], help="durable runs, newest first")
    listing.add_argument(
        "--state", dest="states", action="append", choices=STATES, default=[], help="repeatable"
    )
    listing.add_argument(
        "--label", dest="labels", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    listing.add_argument(
        "--since", help="created at or after: a duration back from now (90s, 30m, 2h, 7d) or an ISO time"
    )
    listing.add_argument("--limit", type=int, default=50, help="runs per page, 1-500 (default 50)")
    listing.add_argument("--page-token", default="", help="next page, as printed after the previous one")
    listing.add_argument("--all", action="store_true", help="follow every page")
    runs.add_parser("cancel", parents=[json_flag], help="cancel a queued or running run").add_argument(
        "run_id"
    )


def _download_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="directory for the files (default: ./out)"
    )
    parser.add_argument("--no-download", action="store_true", help="store only, write no local files")


def _request_options(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(outputs=[])
    parser.add_argument("--template", action=_StartOutput, help="start an output from a template")
    parser.add_argument(
        "--graph",
        dest="graph",
        action=_StartOutput,
        type=Path,
        help="start an output from an API-format graph JSON file",
    )
    parser.add_argument("--param", dest="params", action=_OutputOption, metavar="NAME=VALUE")
    parser.add_argument("--input", dest="inputs", action=_OutputOption, metavar="PARAMETER=FILE")
    parser.add_argument(
        "--timeout",
        dest="timeout",
        action=_OutputOption,
        metavar="SECONDS",
        help="time limit of the output it follows",
    )
    parser.add_argument("--run-file", type=Path, help="JSON/YAML file describing the whole run")
    parser.add_argument("--run-id", default="")
    parser.add_argument("--concurrency", type=int, default=0)
    parser.add_argument("--schema", default="")
    parser.add_argument("--execution-mode", default="")
    parser.add_argument("--safety-level", default="")
    parser.add_argument("--input-text", default="")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
