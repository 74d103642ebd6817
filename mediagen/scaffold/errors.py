"""Errors that reach callers as gRPC statuses with rich details.

Service code raises :class:`ServiceError` from wherever it notices the problem;
the scaffold's interceptor turns it into a status whose details carry a
``google.rpc.ErrorInfo`` (a machine-readable reason plus ids such as the
prompt and node) and, for bad input, a ``google.rpc.BadRequest`` naming every
offending field. Clients read them back with :func:`status_details`.

Whatever a status echoes (a template name, a parameter value, a peer's message) is cut to a
small bound here, in the one place every status is built: a caller who sends a megabyte of name
gets half a kilobyte of message back, never megabytes of trailers.

Only the reasons in :data:`REFUSED_BEFORE_START` say "nothing was done, asking again is safe";
a caller retries on those and on nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "mediagen"
# Every bound is in UTF-8 bytes. Together they keep a status (message, then details in base64
# with the message again) under 8 KiB of trailers, gRPC's default limit on what a client reads:
# a bigger status would reach the caller as a bare RESOURCE_EXHAUSTED instead.
MAX_MESSAGE_BYTES = 512
MAX_FIELD_BYTES = 96
MAX_DESCRIPTION_BYTES = 256
MAX_VIOLATIONS = 6
MAX_METADATA_ENTRIES = 8
MAX_METADATA_KEY_BYTES = 48
MAX_METADATA_VALUE_BYTES = 128
TRUNCATED = "...[truncated]"

REFUSED_BEFORE_START = frozenset({"BACKENDS_FULL", "NO_BACKEND"})
"""Reasons given only when a call was refused before any work started (nothing queued)."""


def bounded(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` UTF-8 bytes, else its head and a marker saying so."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    head = encoded[: max(limit - len(TRUNCATED), 0)].decode(errors="ignore")
    return head + TRUNCATED


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass
class ServiceError(Exception):
    """A failure with the gRPC status it should reach the caller as."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: Sequence[FieldViolation] = ()

    def __post_init__(self) -> None:
        self.message = bounded(self.message, MAX_MESSAGE_BYTES)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def to_status(self) -> status_pb2.Status:
        return build_status(self.code, self.message, self.reason, self.metadata, self.violations)


def invalid_argument(field_name: str, description: str, reason: str = "INVALID_ARGUMENT") -> ServiceError:
    """The common case of one bad field."""
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field_name}: {description}",
        reason=reason,
        violations=[FieldViolation(field_name, description)],
    )


def build_status(
    code: grpc.StatusCode,
    message: str,
    reason: str = "",
    metadata: Mapping[str, str] | None = None,
    violations: Sequence[FieldViolation] = (),
) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    if reason or metadata:
        entries = sorted((metadata or {}).items())[:MAX_METADATA_ENTRIES]
        info = error_details_pb2.ErrorInfo(
            reason=bounded(reason or code.name, MAX_METADATA_KEY_BYTES),
            domain=ERROR_DOMAIN,
            metadata={
                bounded(key, MAX_METADATA_KEY_BYTES): bounded(value, MAX_METADATA_VALUE_BYTES)
                for key, value in entries
            },
        )
        details.append(_pack(info))
    if violations:
        shown = list(violations[:MAX_VIOLATIONS])
        if len(violations) > MAX_VIOLATIONS:
            shown[-1] = FieldViolation("", f"and {len(violations) - MAX_VIOLATIONS + 1} more violations")
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=bounded(v.field, MAX_FIELD_BYTES),
                    description=bounded(v.description, MAX_DESCRIPTION_BYTES),
                )
                for v in shown
            ]
        )
        details.append(_pack(bad))
    return status_pb2.Status(code=code.value[0], message=bounded(message, MAX_MESSAGE_BYTES), details=details)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


def code_from_status(status: status_pb2.Status) -> grpc.StatusCode:
    for candidate in grpc.StatusCode:
        if candidate.value[0] == status.code:
            return candidate
    return grpc.StatusCode.UNKNOWN


def status_of_rpc_error(error: grpc.RpcError) -> status_pb2.Status:
    """The rich status of a failed call, or a plain one built from code and message."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in cast(Iterable[tuple[str, object]], trailing or ()):
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            parsed = status_pb2.Status.FromString(value)
            if parsed.code == code.value[0]:
                return parsed
    return status_pb2.Status(code=code.value[0], message=details or "")


@dataclass(frozen=True)
class StatusDetails:
    """The rich details of a status, unpacked for people and for tests."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: Sequence[FieldViolation] = ()


def status_details(status: status_pb2.Status) -> StatusDetails:
    reason, metadata, violations = "", {}, []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return StatusDetails(code_from_status(status), status.message, reason, metadata, violations)


def describe_status(status: status_pb2.Status) -> str:
    """One readable sentence (or a few lines) for a person at a terminal."""
    info = status_details(status)
    text = f"{info.code.name}: {info.message}"
    if info.reason and info.reason != info.code.name:
        text += f" [{info.reason}]"
    for violation in info.violations:
        if violation.description not in info.message:
            text += f"\n  - {violation.field}: {violation.description}"
    if info.metadata:
        text += "\n  (" + ", ".join(f"{k}={v}" for k, v in sorted(info.metadata.items())) + ")"
    return text


OK_CODE = code_pb2.OK
