"""Up-front checks of a Generate request, before anything is created.

Policy: a request the gateway would refuse fails the whole call with INVALID_ARGUMENT listing
every offending field, and no run is recorded. Two kinds of rule apply, each with one owner:

* The gateway's own limits (request size, outputs per run, parameters per output, string and
  graph lengths, run context size, input media size; see :class:`RequestLimits`), checked
  first and cheaply. A violation names the field, and the ErrorInfo names each limit exceeded
  with its value (``max_string_bytes: 65536``), so the caller knows what to change.
* Everything about the workflows (templates, parameters, input media, time limits, raw graphs
  against the backend's node catalogue) belongs to the generator, which owns the templates:
  the gateway asks its ``ValidateWorkflows`` and reports the answer with each field under its
  output (``outputs[2].workflow.parameters[steps]``), word for word. Input media are sent cut
  to their first bytes: their format is all that is judged there.

:func:`validate_request` is the single entry point every way of starting a run goes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from gateway.errors import peer_error
from gateway.settings import GatewaySettings
from mediagen.rules import INPUT_HEADER_BYTES, run_id_problem
from mediagen.scaffold.errors import FieldViolation, ServiceError
from mediagen.v1 import gateway_pb2, generator_pb2, generator_pb2_grpc

VALIDATE_TIMEOUT = 30.0
"""Enough for a first fetch of a large /object_info on the generator (cached after that)."""


@dataclass(frozen=True)
class LimitViolation:
    violation: FieldViolation
    limit: str
    value: int


async def validate_request(
    request: gateway_pb2.GatewayGenerateRequest,
    generator: generator_pb2_grpc.GeneratorServiceAsyncStub,
    settings: GatewaySettings,
    time_remaining: float | None = None,
) -> None:
    """Return when the request may start a run; raise INVALID_ARGUMENT (or the peer's error)."""
    over = list(_limit_violations(request, settings))
    if over:
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request exceeds limits: {_summary([o.violation for o in over])}",
            "LIMIT_EXCEEDED",
            {o.limit: str(o.value) for o in over},
            [o.violation for o in over],
        )
    problems = list(_request_violations(request))
    if request.outputs:
        problems += await _workflow_violations(request, generator, time_remaining)
    if problems:
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid request: {_summary(problems)}",
            "INVALID_REQUEST",
            {},
            problems,
        )


def _summary(problems: list[FieldViolation]) -> str:
    return "; ".join(f"{v.field}: {v.description}" for v in problems[:3])


def _request_violations(request: gateway_pb2.GatewayGenerateRequest) -> Iterator[FieldViolation]:
    if request.run_id and (why := run_id_problem(request.run_id)):
        yield FieldViolation("run_id", why)
    if not request.outputs:
        yield FieldViolation("outputs", "at least one output is required")


async def _workflow_violations(
    request: gateway_pb2.GatewayGenerateRequest,
    generator: generator_pb2_grpc.GeneratorServiceAsyncStub,
    time_remaining: float | None,
) -> list[FieldViolation]:
    check = generator_pb2.ValidateWorkflowsRequest()
    for output in request.outputs:
        job = check.jobs.add()
        job.workflow.CopyFrom(output.workflow)
        for item in job.workflow.inputs:
            item.data = item.data[:INPUT_HEADER_BYTES]
        if output.HasField("timeout"):
            job.timeout.CopyFrom(output.timeout)
    timeout = VALIDATE_TIMEOUT if time_remaining is None else min(time_remaining, VALIDATE_TIMEOUT)
    try:
        reply = await generator.ValidateWorkflows(check, timeout=timeout)
    except grpc.RpcError as err:
        raise peer_error(err, "generator") from None
    return [FieldViolation(f"outputs[{v.job_index}].{v.field}", v.description) for v in reply.violations]


def _limit_violations(
    request: gateway_pb2.GatewayGenerateRequest, settings: GatewaySettings
) -> Iterator[LimitViolation]:
    size = request.ByteSize()
    if size > settings.max_request_bytes:
        yield _over("request", size, "max_request_bytes", settings.max_request_bytes, "bytes")
    if len(request.outputs) > settings.max_outputs:
        yield _over("outputs", len(request.outputs), "max_outputs", settings.max_outputs, "outputs")
    context = request.context.ByteSize()
    if context > settings.max_context_bytes:
        yield _over("context", context, "max_context_bytes", settings.max_context_bytes, "bytes")
    for index, output in enumerate(request.outputs):
        yield from _workflow_limits(f"outputs[{index}].workflow", output.workflow, settings)


def _workflow_limits(
    where: str, workflow: generator_pb2.WorkflowSpec, settings: GatewaySettings
) -> Iterator[LimitViolation]:
    strings = settings.max_string_bytes
    if len(workflow.template.encode()) > strings:
        yield _over(
            f"{where}.template", len(workflow.template.encode()), "max_string_bytes", strings, "bytes"
        )
    graph = len(workflow.raw_graph_json.encode())
    if graph > settings.max_graph_bytes:
        yield _over(f"{where}.raw_graph_json", graph, "max_graph_bytes", settings.max_graph_bytes, "bytes")
    count = len(workflow.parameters)
    if count > settings.max_parameters:
        yield _over(f"{where}.parameters", count, "max_parameters", settings.max_parameters, "parameters")
    for name, value in workflow.parameters.items():
        if len(name.encode()) > strings:
            yield _over(f"{where}.parameters", len(name.encode()), "max_string_bytes", strings, "bytes")
        elif len(value.string_value.encode()) > strings:
            length = len(value.string_value.encode())
            yield _over(f"{where}.parameters[{name}]", length, "max_string_bytes", strings, "bytes")
    for i, item in enumerate(workflow.inputs):
        if len(item.data) > settings.max_input_bytes:
            yield _over(
                f"{where}.inputs[{i}].data",
                len(item.data),
                "max_input_bytes",
                settings.max_input_bytes,
                "bytes",
            )
        for name in ("parameter", "filename"):
            length = len(getattr(item, name).encode())
            if length > strings:
                yield _over(f"{where}.inputs[{i}].{name}", length, "max_string_bytes", strings, "bytes")


def _over(field: str, actual: int, limit: str, value: int, unit: str) -> LimitViolation:
    return LimitViolation(
        FieldViolation(field, f"is {actual} {unit}, over the limit of {value}"), limit, value
    )
