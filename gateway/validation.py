"""Up-front checks of a Generate request, before anything is created.

Policy: every problem the gateway can see cheaply (no outputs, a malformed run
id, a negative timeout, an unknown template, an unknown, ill-typed or
out-of-bound parameter) fails the whole call with INVALID_ARGUMENT listing
every offending field, and no run is recorded. Problems only the generator can
see (a raw graph ComfyUI refuses, a missing model) come back per output as
``output_failed`` while the other outputs go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc

from mediagen.scaffold.errors import FieldViolation, ServiceError
from mediagen.v1 import gateway_pb2, generator_pb2

RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_OUTPUTS = 64
PType = generator_pb2.ParameterType


def check_request(
    request: gateway_pb2.GatewayGenerateRequest, templates: dict[str, generator_pb2.WorkflowTemplate]
) -> None:
    violations = list(_request_violations(request, templates))
    if violations:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:3])
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {summary}", "INVALID_REQUEST", {}, violations
        )


def _request_violations(
    request: gateway_pb2.GatewayGenerateRequest, templates: dict[str, generator_pb2.WorkflowTemplate]
) -> Iterator[FieldViolation]:
    if request.run_id and not RUN_ID.match(request.run_id):
        yield FieldViolation("run_id", "must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    if not request.outputs:
        yield FieldViolation("outputs", "at least one output is required")
    if len(request.outputs) > MAX_OUTPUTS:
        yield FieldViolation("outputs", f"at most {MAX_OUTPUTS} outputs per run")
    for index, output in enumerate(request.outputs):
        yield from _output_violations(f"outputs[{index}]", output, templates)


def _output_violations(
    where: str, output: gateway_pb2.OutputSpec, templates: dict[str, generator_pb2.WorkflowTemplate]
) -> Iterator[FieldViolation]:
    if output.timeout.seconds < 0 or output.timeout.nanos < 0:
        yield FieldViolation(f"{where}.timeout", "must not be negative")
    workflow = output.workflow
    source = workflow.WhichOneof("source")
    if source is None:
        yield FieldViolation(f"{where}.workflow", "set a template or a raw_graph_json")
    elif source == "template":
        template = templates.get(workflow.template)
        if template is None:
            known = ", ".join(sorted(templates)) or "none"
            yield FieldViolation(
                f"{where}.workflow.template", f"unknown template {workflow.template!r} (known: {known})"
            )
        else:
            yield from _parameter_violations(f"{where}.workflow.parameters", workflow, template)


def _parameter_violations(
    where: str, workflow: generator_pb2.WorkflowSpec, template: generator_pb2.WorkflowTemplate
) -> Iterator[FieldViolation]:
    specs = {spec.name: spec for spec in template.parameters}
    bound_inputs = {media.parameter for media in workflow.inputs}
    for name, value in workflow.parameters.items():
        spec = specs.get(name)
        if spec is None:
            yield FieldViolation(
                f"{where}[{name}]", f"unknown parameter of {template.name} (known: {', '.join(specs)})"
            )
        else:
            problem = parameter_problem(spec, value)
            if problem:
                yield FieldViolation(f"{where}[{name}]", problem)
    for spec in template.parameters:
        given = spec.name in workflow.parameters or spec.name in bound_inputs
        if spec.required and not given:
            yield FieldViolation(f"{where}[{spec.name}]", "is required")


_KINDS = {
    PType.PARAMETER_TYPE_STRING: ("string_value",),
    PType.PARAMETER_TYPE_INT: ("int_value",),
    PType.PARAMETER_TYPE_FLOAT: ("float_value", "int_value"),
    PType.PARAMETER_TYPE_BOOL: ("bool_value",),
    PType.PARAMETER_TYPE_IMAGE: ("string_value",),
}


def parameter_problem(spec: generator_pb2.ParameterSpec, value: generator_pb2.ParameterValue) -> str:
    """Why ``value`` does not fit ``spec``, or "" when it does."""
    kind = value.WhichOneof("kind")
    allowed = _KINDS.get(spec.type, ())
    if allowed and kind not in allowed:
        expected = PType.Name(spec.type).removeprefix("PARAMETER_TYPE_").lower()
        return f"expects {expected}, got {kind or 'nothing'}"
    if kind in ("int_value", "float_value"):
        number = float(getattr(value, kind))
        if spec.HasField("minimum") and number < spec.minimum:
            return f"must be >= {spec.minimum:g}"
        if spec.HasField("maximum") and number > spec.maximum:
            return f"must be <= {spec.maximum:g}"
    if kind == "string_value" and spec.choices and value.string_value not in spec.choices:
        return f"must be one of {', '.join(spec.choices)}"
    return ""
