"""``--json`` output: one JSON object per line on stdout, for scripts.

Messages are rendered with the protobuf JSON mapping and the field names of
the .proto files (``run_id``, not ``runId``), enums by name, so a script reads
the same names it finds in the API reference. Each line is flushed at once, so
a pipe sees an event when it happens.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2

from mediagen.scaffold.errors import status_details


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def emit(item: Message | dict[str, Any], out: TextIO | None = None) -> None:
    data = as_dict(item) if isinstance(item, Message) else item
    stream = out or sys.stdout
    stream.write(json.dumps(data, separators=(",", ":")) + "\n")
    stream.flush()


def error_object(status: status_pb2.Status) -> dict[str, Any]:
    """A failed call as ``{"error": {...}}``: code name, message, reason, field violations."""
    info = status_details(status)
    error: dict[str, Any] = {"code": info.code.name, "message": info.message}
    if info.reason:
        error["reason"] = info.reason
    if info.metadata:
        error["metadata"] = dict(info.metadata)
    if info.violations:
        error["field_violations"] = [
            {"field": violation.field, "description": violation.description} for violation in info.violations
        ]
    return {"error": error}
