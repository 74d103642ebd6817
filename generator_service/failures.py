"""ComfyUI's failures, turned into statuses a caller can act on.

A rejected prompt becomes INVALID_ARGUMENT with one violation per node input
(``graph.<node>.inputs.<name>``); a node that fails while running becomes ABORTED with the node
id, class and ComfyUI's exception message in ErrorInfo. Tracebacks and extra debug data are
dropped, and absolute paths in the messages that are kept are replaced by ``<path>``: they
describe the backend's disks and are not the caller's business.

A job refused because no backend could take it gets a reason from ``REFUSED_BEFORE_START``
(``BACKENDS_FULL``, ``NO_BACKEND``): the caller may ask again, because nothing was queued.
"""

from __future__ import annotations

import re
from typing import Any

import grpc

from generator_service.job_ids import JobIds
from mediagen.scaffold import FieldViolation, ServiceError

MAX_TEXT = 500
_ABSOLUTE_PATH = re.compile(r"""(?<![\w:/.])(?:[A-Za-z]:)?[\\/](?:[^\s'"\\/,;:]+[\\/])*[^\s'",;:]*""")
_REFUSAL_REASONS = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: "BACKENDS_FULL",
    grpc.StatusCode.UNAVAILABLE: "NO_BACKEND",
}


def refused_before_start(error: ServiceError) -> ServiceError:
    """The pool's refusal, marked as one: no backend took the job, so asking again is safe."""
    reason = _REFUSAL_REASONS.get(error.code, error.reason)
    return ServiceError(error.code, error.message, reason, error.metadata, error.violations)


def rejected(body: dict[str, Any], ids: JobIds) -> ServiceError:
    """INVALID_ARGUMENT for a 400 (or a 200 with node errors) from ``POST /prompt``."""
    violations: list[FieldViolation] = []
    first_node = ""
    node_errors = body.get("node_errors") or {}
    for node_id, info in node_errors.items() if isinstance(node_errors, dict) else ():
        first_node = first_node or str(node_id)
        for node_error in (info or {}).get("errors", []) or [{"message": "invalid node"}]:
            violations.append(_violation(str(node_id), node_error))
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    message = _clean(str(error.get("message") or "ComfyUI rejected the workflow"))
    if not violations:
        details = _clean(str(error.get("details") or ""))
        violations.append(FieldViolation("graph", f"{message}: {details}" if details else message))
    metadata = ids.metadata(comfy_error=str(error.get("type", "")))
    if first_node:
        metadata["node_id"] = first_node
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT, f"{message}: {summary}", "WORKFLOW_REJECTED", metadata, violations
    )


def _violation(node_id: str, error: dict[str, Any]) -> FieldViolation:
    raw_extra = error.get("extra_info")
    extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
    input_name = extra.get("input_name") or (
        error.get("details") if error.get("type") == "required_input_missing" else None
    )
    where = f"graph.{node_id}.inputs.{input_name}" if input_name else f"graph.{node_id}"
    text = _clean(str(error.get("message", "invalid")))
    details = _clean(str(error.get("details") or ""))
    if details and details != input_name:
        text = f"{text}: {details}"
    return FieldViolation(where, text)


def execution_failed(data: dict[str, Any], ids: JobIds) -> ServiceError:
    """ABORTED: the workflow was valid but a node raised while running."""
    node_id, node_type = str(data.get("node_id", "")), str(data.get("node_type", ""))
    exception = _clean(str(data.get("exception_message", "")))
    return ServiceError(
        grpc.StatusCode.ABORTED,
        f"node {node_id} ({node_type}) failed: {exception or 'execution error'}",
        "EXECUTION_ERROR",
        ids.metadata(
            node_id=node_id,
            node_type=node_type,
            exception_type=str(data.get("exception_type", "")),
            exception_message=exception,
        ),
    )


def interrupted_elsewhere(data: dict[str, Any], ids: JobIds) -> ServiceError:
    """ABORTED: someone other than this generator interrupted the prompt."""
    node_id = str(data.get("node_id") or "")
    return ServiceError(
        grpc.StatusCode.ABORTED,
        f"the job was interrupted on the backend{f' at node {node_id}' if node_id else ''}",
        "INTERRUPTED",
        ids.metadata(node_id=node_id, node_type=str(data.get("node_type") or "")),
    )


def unavailable(why: str, ids: JobIds, reason: str = "BACKEND_UNAVAILABLE") -> ServiceError:
    """UNAVAILABLE for a job the caller already knows by its prompt id."""
    return ServiceError(grpc.StatusCode.UNAVAILABLE, why, reason, ids.metadata())


def unavailable_before_accept(why: str, backend: str, reason: str = "BACKEND_UNAVAILABLE") -> ServiceError:
    """UNAVAILABLE before the job was handed to the backend: the caller has not been told its
    prompt id (no ``accepted`` yet), so the status names only the backend."""
    return ServiceError(grpc.StatusCode.UNAVAILABLE, why, reason, {"backend": backend})


def deadline_exceeded(ids: JobIds) -> ServiceError:
    """The job's own time limit passed (its prompt is being cancelled on the backend, in the background)."""
    return ServiceError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"job {ids.prompt_id} did not finish in time; it is being cancelled on the backend",
        "JOB_DEADLINE_EXCEEDED",
        ids.metadata(),
    )


def _clean(text: str) -> str:
    """The first line of a message, without a trailing traceback, bounded in length."""
    head = text.split("Traceback (most recent call last)", 1)[0].strip()
    return without_paths(head)[:MAX_TEXT]


def without_paths(text: str) -> str:
    """``text`` with every absolute file path replaced by ``<path>``."""
    return _ABSOLUTE_PATH.sub("<path>", text)
