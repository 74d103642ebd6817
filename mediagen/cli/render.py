"""Tables a person reads: stored media, runs, templates."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from mediagen.cli.params import describe_type, describe_value
from mediagen.v1 import common_pb2, generator_pb2, storage_pb2


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
