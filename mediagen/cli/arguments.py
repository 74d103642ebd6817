"""The ``mediagen`` command line: sub-commands and the output groups of ``generate``.

argparse keeps no order between different options, so ``--template`` and the
``--param``/``--input``/``--timeout`` options after it are collected by
actions that append to the latest output group.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediagen", description="Generate media through the mediagen gateway."
    )
    parser.add_argument("--gateway", help="gateway address (default: $MEDIAGEN_GATEWAY or 127.0.0.1:50051)")
    commands = parser.add_subparsers(dest="command", required=True)
    _generate_parser(commands.add_parser("generate", help="generate a run and download its media"))
    runs = commands.add_parser("runs", help="look at runs").add_subparsers(dest="runs_command", required=True)
    runs.add_parser("show", help="a run and its media").add_argument("run_id")
    media = commands.add_parser("media", help="media files").add_subparsers(
        dest="media_command", required=True
    )
    get = media.add_parser("get", help="download one media file")
    get.add_argument("media_id")
    get.add_argument("-o", "--output", type=Path, help="file to write (default: named after the media)")
    commands.add_parser("workflows", help="templates and their parameters")
    return parser


def _generate_parser(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="directory for the files (default: ./out)"
    )
    parser.add_argument("--no-download", action="store_true", help="store only, write no local files")
