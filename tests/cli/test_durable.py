"""``mediagen submit``, ``watch``, ``runs list`` and ``runs cancel`` against a running stack with NATS.

Each test tags its runs with a label of its own, so listings are checked
against exactly the runs the test made while the stack is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mediagen.stack.local import LocalStack
from tests.cli.conftest import Cli
from tests.e2e.stack import set_faults

pytestmark = pytest.mark.e2e


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def solid_image() -> tuple[str, ...]:
    """A small image of a color no other run used, so ComfyUI's cache never answers for it."""
    color = f"color={random.randrange(1 << 24)}"
    return ("--template", "solid_image", "--param", "width=16", "--param", "height=16", "--param", color)


def submit(mediagen: Cli, *extra: str) -> str:
    result = mediagen("submit", *solid_image(), *extra)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert run_id
    assert "\n" not in run_id
    return run_id


def test_submit_prints_the_run_id_and_watch_shows_it_to_the_end(mediagen: Cli, tmp_path: Path) -> None:
    run_id = submit(mediagen, "--label", "case=submit-watch", "--priority", "high")

    watched = mediagen("watch", run_id, "--out", "files")
    assert watched.returncode == 0, watched.stderr
    assert f"run {run_id} succeeded: 1 media stored, 0 output(s) failed" in watched.stdout
    assert "16x16" in watched.stdout
    assert [f.name for f in (tmp_path / "files" / run_id).iterdir()] == ["00-solid_image-0.png"]

    shown = mediagen("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "state: succeeded" in shown.stdout
    assert "priority: high, attempts: 1, outputs: 1/1 finished" in shown.stdout


def test_watch_json_is_one_event_per_line_in_sequence_order(mediagen: Cli) -> None:
    run_id = f"json-{uuid.uuid4().hex[:8]}"
    submit(mediagen, "--run-id", run_id)

    watched = mediagen("watch", run_id, "--json")
    assert watched.returncode == 0, watched.stderr
    events = json_lines(watched.stdout)
    logged = [event for event in events if "queue_position" not in event]
    assert [event["run_id"] for event in events] == [run_id] * len(events)
    sequences = [int(event["sequence"]) for event in logged]
    assert sequences == sorted(set(sequences))
    assert "state_changed" in logged[0]
    assert "media_stored" in {key for event in logged for key in event}
    assert logged[-1]["run_completed"]["state"] == "RUN_STATE_SUCCEEDED"


def test_submit_json_answers_the_queued_status_and_is_idempotent(mediagen: Cli) -> None:
    run_id, image = f"idem-{uuid.uuid4().hex[:8]}", solid_image()
    first = mediagen("submit", *image, "--run-id", run_id, "--json")
    again = mediagen("submit", *image, "--run-id", run_id, "--json")
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    [status], [repeated] = json_lines(first.stdout), json_lines(again.stdout)
    assert status["run_id"] == repeated["run_id"] == run_id
    assert status["priority"] == "RUN_PRIORITY_NORMAL"
    assert status["output_count"] == 1
    assert status["created_at"] == repeated["created_at"]

    other = mediagen("submit", *solid_image(), "--run-id", run_id, "--json")
    assert other.returncode == 2
    assert json_lines(other.stderr)[0]["error"]["code"] == "ALREADY_EXISTS"


def test_runs_list_filters_by_label_state_and_time_and_pages(mediagen: Cli) -> None:
    label = f"case=list-{uuid.uuid4().hex[:8]}"
    made = [submit(mediagen, "--label", label) for _ in range(3)]
    for run_id in made:
        assert mediagen("watch", run_id, "--json").returncode == 0

    listed = mediagen("runs", "list", "--label", label, "--state", "succeeded", "--since", "1h", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json_lines(listed.stdout)
    assert [run["run_id"] for run in runs] == list(reversed(made))  # newest first
    assert {run["state"] for run in runs} == {"RUN_STATE_SUCCEEDED"}

    assert json_lines(mediagen("runs", "list", "--label", label, "--state", "failed", "--json").stdout) == []
    future = mediagen("runs", "list", "--label", label, "--since", "2999-01-01T00:00", "--json")
    assert json_lines(future.stdout) == []

    page = mediagen("runs", "list", "--label", label, "--limit", "2", "--json")
    assert [run["run_id"] for run in json_lines(page.stdout)] == list(reversed(made))[:2]
    assert "--page-token" in page.stderr
    token = page.stderr.split("--page-token", 1)[1].split()[0]
    rest = mediagen("runs", "list", "--label", label, "--limit", "2", "--page-token", token, "--json")
    assert [run["run_id"] for run in json_lines(rest.stdout)] == [made[0]]
    everything = mediagen("runs", "list", "--label", label, "--limit", "2", "--all", "--json")
    assert len(json_lines(everything.stdout)) == 3

    table = mediagen("runs", "list", "--label", label)
    assert table.returncode == 0, table.stderr
    for run_id in made:
        assert run_id in table.stdout
    assert "succeeded" in table.stdout


def test_runs_cancel_stops_a_running_run_and_watch_reports_it(mediagen: Cli, stack: LocalStack) -> None:
    set_faults(stack, hang_nodes=["EmptyImage"])
    try:
        run_id = submit(mediagen)
        cancelled = mediagen("runs", "cancel", run_id)
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"run {run_id}: cancel requested" in cancelled.stdout
        watched = mediagen("watch", run_id, "--json")
        assert watched.returncode == 1  # a cancelled run is not a success
        assert json_lines(watched.stdout)[-1]["run_completed"]["state"] == "RUN_STATE_CANCELLED"
        again = json_lines(mediagen("runs", "cancel", run_id, "--json").stdout)
        assert again[0]["state"] == "RUN_STATE_CANCELLED"
    finally:
        set_faults(stack)


def test_errors_in_json_mode_are_json_on_stderr(mediagen: Cli) -> None:
    result = mediagen("watch", "no-such-run", "--json")
    assert result.returncode == 1
    [error] = json_lines(result.stderr)
    assert error["error"]["code"] == "NOT_FOUND"
    listed = mediagen("runs", "list", "--since", "yesterday-ish", "--json")
    assert listed.returncode == 2
    assert json_lines(listed.stderr)[0]["error"]["code"] == "INVALID_ARGUMENT"


def test_generate_json_prints_events_then_the_files(mediagen: Cli, tmp_path: Path) -> None:
    result = mediagen("generate", "--template", "solid_image", "--param", "width=8", "--json", "--out", "o")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert "run_created" in lines[0]
    run_id = lines[0]["run_created"]["run"]["run_id"]
    kinds = [next(iter(line)) for line in lines]
    assert "run_completed" in kinds
    written = lines[-1]
    assert written["file"] == str(Path("o") / run_id / "00-solid_image-0.png")
    assert (tmp_path / written["file"]).exists()


class DroppingProxy:
    """A TCP relay to the gateway whose open connections can be cut, as a network blip would."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.target_port = int(port)
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    def drop(self) -> int:
        dropped = [writer for writer in self.writers if not writer.is_closing()]
        for writer in dropped:
            writer.transport.abort()
        self.writers.clear()
        return len(dropped)

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def proxy(stack: LocalStack) -> AsyncIterator[DroppingProxy]:
    relay = DroppingProxy(stack.gateway_address)
    await relay.start()
    yield relay
    await relay.close()


async def test_watch_resumes_after_a_dropped_connection_missing_and_repeating_nothing(
    mediagen: Cli, stack: LocalStack, proxy: DroppingProxy, tmp_path: Path
) -> None:
    set_faults(stack, node_delay_s={"EmptyImage": 1.5})
    try:
        run_id = submit(mediagen)
        env = {**os.environ, "MEDIAGEN_GATEWAY": proxy.address}
        watcher = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediagen.cli", "watch", run_id, "--json",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert watcher.stdout is not None
        first = json.loads(await asyncio.wait_for(watcher.stdout.readline(), 30))
        assert first["run_id"] == run_id
        assert proxy.drop() >= 1
        rest, errors = await asyncio.wait_for(watcher.communicate(), 60)
        assert watcher.returncode == 0, errors.decode()
    finally:
        set_faults(stack)
    assert "resuming after event" in errors.decode()
    seen = [first, *json_lines(rest.decode())]
    logged_seen = [event for event in seen if "queue_position" not in event]

    direct = mediagen("watch", run_id, "--json")
    logged_all = [event for event in json_lines(direct.stdout) if "queue_position" not in event]
    assert [event["sequence"] for event in logged_seen] == [event["sequence"] for event in logged_all]
    assert logged_seen == logged_all
