"""Tables a person reads: stored media, runs, templates; and the names of states and priorities."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2
from rich.table import Table

from mediagen.cli.params import BadParameter, describe_type, describe_value
from mediagen.v1 import common_pb2, gateway_pb2, generator_pb2, storage_pb2

PRIORITY = {
    "low": gateway_pb2.RUN_PRIORITY_LOW,
    "normal": gateway_pb2.RUN_PRIORITY_NORMAL,
    "high": gateway_pb2.RUN_PRIORITY_HIGH,
}
STATE = {
    "queued": gateway_pb2.RUN_STATE_QUEUED,
    "running": gateway_pb2.RUN_STATE_RUNNING,
    "succeeded": gateway_pb2.RUN_STATE_SUCCEEDED,
    "failed": gateway_pb2.RUN_STATE_FAILED,
    "cancelled": gateway_pb2.RUN_STATE_CANCELLED,
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def state_name(state: int) -> str:
    return gateway_pb2.RunState.Name(state).removeprefix("RUN_STATE_").lower()  # type: ignore[arg-type]


def priority_name(priority: int) -> str:
    name = gateway_pb2.RunPriority.Name(priority).removeprefix("RUN_PRIORITY_").lower()  # type: ignore[arg-type]
    return "normal" if name == "unspecified" else name


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``90s``, ``30m``, ``2h``, ``7d`` back from now, or an ISO 8601 time (UTC when no zone)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadParameter(
            f"--since {text!r}: expected a duration (90s, 30m, 2h, 7d) or an ISO time (2026-01-31T12:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(stamp: timestamp_pb2.Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    return f"{stamp.ToDatetime():%Y-%m-%d %H:%M:%S}"


def status_summary(status: gateway_pb2.RunStatus) -> str:
    """A few lines on a durable run: state, priority, attempts, times, failed outputs."""
    lines = [
        f"  state: {state_name(status.state)}"
        + (" (cancel requested)" if status.cancel_requested and status.state != STATE["cancelled"] else ""),
        f"  priority: {priority_name(status.priority)}, attempts: {status.attempts}, "
        f"outputs: {len(status.outputs)}/{status.output_count} finished",
    ]
    if status.state == STATE["queued"]:
        lines.append(f"  queue position: {status.queue_position}")
    for name, stamp in (("started", status.started_at), ("finished", status.finished_at)):
        if _when(stamp):
            lines.append(f"  {name}: {_when(stamp)} UTC")
    if status.HasField("error"):
        lines.append(f"  error: {status.error.message}")
    for outcome in status.outputs:
        if outcome.HasField("error"):
            lines.append(f"  output {outcome.output_index} failed: {outcome.error.message}")
    return "\n".join(lines)


def runs_table(runs: Iterable[gateway_pb2.RunStatus], title: str = "runs") -> Table:
    table = Table(title=title)
    for column in (
        "run id",
        "state",
        "priority",
        "created (UTC)",
        "finished",
        "outputs",
        "attempts",
        "labels",
    ):
        table.add_column(column, overflow="fold")
    for status in runs:
        labels = ", ".join(f"{key}={value}" for key, value in sorted(status.context.labels.items()))
        table.add_row(
            status.run_id,
            state_name(status.state),
            priority_name(status.priority),
            _when(status.created_at),
            _when(status.finished_at),
            f"{len(status.outputs)}/{status.output_count}",
            str(status.attempts),
            labels,
        )
    return table


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def media_kind(media_type: int) -> str:
    return common_pb2.MediaType.Name(media_type).removeprefix("MEDIA_TYPE_").lower()  # type: ignore[arg-type]


def dimensions(descriptor: common_pb2.MediaDescriptor) -> str:
    parts = []
    if descriptor.width and descriptor.height:
        parts.append(f"{descriptor.width}x{descriptor.height}")
    if descriptor.frame_count > 1:
        parts.append(f"{descriptor.frame_count} frames")
    seconds = descriptor.duration.ToTimedelta().total_seconds()
    if seconds:
        parts.append(f"{seconds:.2f}s")
    return ", ".join(parts)


def media_table(records: Iterable[storage_pb2.MediaRecord], title: str = "stored media") -> Table:
    table = Table(title=title)
    for column in ("output", "media id", "type", "size", "dimensions", "location", "sha256"):
        table.add_column(column, overflow="fold")
    for record in records:
        descriptor = record.descriptor
        table.add_row(
            f"{record.output_index}.{record.item_index}",
            record.media_id,
            f"{media_kind(descriptor.media_type)} ({descriptor.format})",
            human_size(descriptor.size_bytes),
            dimensions(descriptor),
            f"s3://{record.bucket}/{record.key}",
            descriptor.sha256[:16],
        )
    return table


def workflows_table(response: generator_pb2.ListWorkflowsResponse) -> Table:
    table = Table(title="workflow templates")
    for column in ("template", "produces", "parameter", "type", "default", "range", "description"):
        table.add_column(column, overflow="fold")
    for template in response.templates:
        produces = ", ".join(media_kind(kind) for kind in template.media_types)
        kind = f"\n({template.backend_kind})" if template.backend_kind else ""
        table.add_row(f"[bold]{template.name}[/]{kind}", produces, "", "", "", "", template.description)
        for spec in template.parameters:
            default = "(required)" if spec.required else describe_value(spec.default_value)
            table.add_row("", "", spec.name, describe_type(spec), default, _range(spec), spec.description)
    return table


def _range(spec: generator_pb2.ParameterSpec) -> str:
    if not spec.HasField("minimum") and not spec.HasField("maximum"):
        return ""
    low = f"{spec.minimum:g}" if spec.HasField("minimum") else ""
    high = f"{spec.maximum:g}" if spec.HasField("maximum") else ""
    return f"{low}..{high}"
