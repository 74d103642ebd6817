"""The command line without a gateway: parsing, request building and JSON rendering."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from mediagen.cli.arguments import build_parser
from mediagen.cli.commands import list_request
from mediagen.cli.jsonlines import emit, error_object
from mediagen.cli.params import BadParameter
from mediagen.cli.render import parse_since, runs_table, status_summary
from mediagen.scaffold.errors import FieldViolation, build_status
from mediagen.v1 import gateway_pb2, storage_pb2


def test_version_is_the_installed_package_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mediagen.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "mediagen 0.1.0"


def test_submit_takes_the_generate_options_and_a_priority() -> None:
    args = build_parser().parse_args(
        ["submit", "--template", "solid_image", "--param", "width=8", "--priority", "high", "--json"]
    )
    assert args.command == "submit"
    assert args.priority == "high"
    assert args.json
    assert args.outputs[0].template == "solid_image"
    assert args.outputs[0].params == ["width=8"]


def test_unknown_priority_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["submit", "--template", "x", "--priority", "urgent"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'urgent'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--template", "t", "--json"],
        ["watch", "r", "--json"],
        ["runs", "show", "r", "--json"],
        ["runs", "list", "--json"],
        ["runs", "cancel", "r", "--json"],
        ["media", "get", "m", "--json"],
        ["workflows", "--json"],
    ],
)
def test_every_command_takes_json(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).json is True


def test_list_filters_become_the_request() -> None:
    args = build_parser().parse_args(
        [
            *("runs", "list", "--state", "queued", "--state", "running", "--label", "team=a"),
            *("--since", "2h", "--limit", "10", "--page-token", "abc"),
        ]
    )
    before = datetime.now(UTC)
    request = list_request(args)
    assert list(request.states) == [gateway_pb2.RUN_STATE_QUEUED, gateway_pb2.RUN_STATE_RUNNING]
    assert dict(request.labels) == {"team": "a"}
    assert (request.page_size, request.page_token) == (10, "abc")
    after = request.created_after.ToDatetime(tzinfo=UTC)
    assert (
        before - timedelta(hours=2, seconds=5) < after <= before - timedelta(hours=2) + timedelta(seconds=5)
    )


def test_list_limit_out_of_range_is_refused() -> None:
    with pytest.raises(BadParameter, match="between 1 and 500"):
        list_request(build_parser().parse_args(["runs", "list", "--limit", "0"]))


def test_since_reads_durations_and_iso_times() -> None:
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_since("90s", now) == now - timedelta(seconds=90)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-01-30T08:00", now) == datetime(2026, 1, 30, 8, 0, tzinfo=UTC)
    with pytest.raises(BadParameter, match="expected a duration"):
        parse_since("last tuesday", now)


def status() -> gateway_pb2.RunStatus:
    run = gateway_pb2.RunStatus(
        run_id="r1",
        state=gateway_pb2.RUN_STATE_FAILED,
        priority=gateway_pb2.RUN_PRIORITY_HIGH,
        context=storage_pb2.RunContext(labels={"team": "a"}),
        output_count=2,
        attempts=2,
        last_sequence=12,
    )
    run.created_at.FromDatetime(datetime(2026, 1, 31, 12, 0, tzinfo=UTC))
    run.outputs.add(output_index=1, state=gateway_pb2.OUTPUT_STATE_FAILED).error.message = "node 3 raised"
    return run


def test_json_lines_use_proto_field_names_and_enum_names() -> None:
    out = io.StringIO()
    emit(status(), out)
    emit(status(), out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    data = json.loads(lines[0])
    assert data["run_id"] == "r1"
    assert data["state"] == "RUN_STATE_FAILED"
    assert data["priority"] == "RUN_PRIORITY_HIGH"
    assert data["output_count"] == 2
    assert data["last_sequence"] == "12"  # 64-bit integers are strings in the JSON mapping
    assert data["created_at"] == "2026-01-31T12:00:00Z"
    assert data["context"]["labels"] == {"team": "a"}


def test_a_run_event_renders_its_kind_as_the_key() -> None:
    event = gateway_pb2.RunEvent(
        sequence=7, run_id="r1", queue_position=gateway_pb2.QueuePosition(queue_position=3)
    )
    out = io.StringIO()
    emit(event, out)
    assert json.loads(out.getvalue()) == {
        "sequence": "7",
        "run_id": "r1",
        "queue_position": {"queue_position": 3},
    }


def test_error_object_keeps_code_reason_and_violations() -> None:
    built = build_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "bad width",
        "INVALID_ARGUMENT",
        violations=[FieldViolation("width", "too big")],
    )
    error = error_object(built)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["message"] == "bad width"
    assert error["field_violations"] == [{"field": "width", "description": "too big"}]


def test_people_see_state_priority_attempts_and_why_outputs_failed() -> None:
    text = status_summary(status())
    assert "state: failed" in text
    assert "priority: high, attempts: 2, outputs: 1/2 finished" in text
    assert "output 1 failed: node 3 raised" in text
    table = runs_table([status()])
    assert [column.header for column in table.columns][:3] == ["run id", "state", "priority"]
    assert table.row_count == 1
