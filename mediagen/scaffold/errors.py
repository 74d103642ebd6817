"""Errors that reach callers as gRPC statuses with rich details.

Service code raises :class:`ServiceError` from wherever it notices the problem;
the scaffold's interceptor turns it into a status whose details carry a
``google.rpc.ErrorInfo`` (a machine-readable reason plus ids such as the
prompt and node) and, for bad input, a ``google.rpc.BadRequest`` naming every
offending field. Clients read them back with :func:`status_details`.
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
        info = error_details_pb2.ErrorInfo(
            reason=reason or code.name, domain=ERROR_DOMAIN, metadata=dict(metadata or {})
        )
        details.append(_pack(info))
    if violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in violations
            ]
        )
        details.append(_pack(bad))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


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
