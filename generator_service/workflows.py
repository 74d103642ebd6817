"""Turn a request's workflow (template + parameters, or a raw graph) into the graph to submit.

All request validation happens here, before any backend is touched, so bad input costs nothing
and is answered with INVALID_ARGUMENT naming the exact field (``workflow.parameters[steps]``).
:func:`check_job` is the one implementation of those rules: ``Generate`` applies it, and
``ValidateWorkflows`` applies it for the gateway before a run exists, so both answer alike.
Each job gets its own graph copy whose save nodes write under a per-job filename prefix: an
identical earlier graph can then never be answered from ComfyUI's cache with an older job's file.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from generator_service import graphcheck
from generator_service.inputs import kind_problem
from generator_service.templates import Parameter, Target, Template, check_value
from mediagen.params import Scalar, from_value
from mediagen.rules import place_wait_problem, timeout_problem
from mediagen.scaffold import FieldViolation, ServiceError
from mediagen.scaffold.errors import MAX_DESCRIPTION_BYTES, bounded, invalid_argument
from mediagen.v1 import generator_pb2

SEED_LIMIT = 2**53
W = TypeVar("W")


@dataclass
class ImageInput:
    """An input file to upload, and where its uploaded name goes in the graph."""

    parameter: Parameter
    filename: str
    data: bytes


@dataclass
class ResolvedWorkflow:
    graph: dict[str, Any]
    template: str = ""
    values: dict[str, Scalar] = field(default_factory=dict)
    seed: int = 0
    images: list[ImageInput] = field(default_factory=list)
    include_previews: bool = False


def check_job(
    request: generator_pb2.GenerateRequest,
    templates: dict[str, Template],
    nodes: dict[str, Any] | None,
) -> ResolvedWorkflow:
    """The job's workflow, ready to submit; INVALID_ARGUMENT listing every problem otherwise.

    ``nodes`` is a backend's ``/object_info``, against which a raw graph is checked (None when
    no backend could be asked: then ComfyUI's own check at submission is the only one).
    """
    return checked(request, lambda: resolve(request.workflow, templates, nodes))


def checked(request: generator_pb2.GenerateRequest, resolve_workflow: Callable[[], W]) -> W:
    """What ``resolve_workflow()`` makes of the request, or INVALID_ARGUMENT with every problem.

    The one assembly of a job's check for every template kind: the timeout's problem and the
    workflow's are reported together, so a caller fixes everything in one round.
    """
    problems = [FieldViolation("timeout", why)] if (why := timeout_problem(request.timeout)) else []
    if why := place_wait_problem(request.place_wait):
        problems.append(FieldViolation("place_wait", why))
    try:
        workflow = resolve_workflow()
    except ServiceError as exc:
        if exc.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        raise_problems(problems + list(exc.violations or [FieldViolation("workflow", exc.message)]))
        raise
    raise_problems(problems)
    return workflow


def resolve(
    spec: generator_pb2.WorkflowSpec, templates: dict[str, Template], nodes: dict[str, Any] | None = None
) -> ResolvedWorkflow:
    source = spec.WhichOneof("source")
    if source == "raw_graph_json":
        return _raw(spec, nodes)
    if source != "template" or not spec.template:
        raise invalid_argument("workflow.template", "give a template name or raw_graph_json")
    template = templates.get(spec.template)
    if template is None:
        known = ", ".join(sorted(templates))
        raise invalid_argument("workflow.template", f"unknown template {spec.template!r} (known: {known})")
    return _from_template(template, spec)


def _raw(spec: generator_pb2.WorkflowSpec, nodes: dict[str, Any] | None) -> ResolvedWorkflow:
    try:
        graph = graphcheck.parse(spec.raw_graph_json)
    except graphcheck.GraphError as exc:
        raise invalid_argument("workflow.raw_graph_json", str(exc)) from None
    problems = [
        FieldViolation(f"workflow.parameters[{name}]", "a raw graph takes no parameters")
        for name in sorted(spec.parameters)
    ]
    files = graphcheck.file_inputs(graph, nodes)
    images, image_problems = _raw_inputs(spec, graph, files)
    problems += image_problems
    if nodes is not None:
        problems += graphcheck.schema_violations(graph, nodes, files)
    raise_problems(problems)
    return ResolvedWorkflow(graph, images=images, include_previews=spec.include_previews)


def _raw_inputs(
    spec: generator_pb2.WorkflowSpec, graph: dict[str, Any], files: list[graphcheck.FileInput]
) -> tuple[list[ImageInput], list[FieldViolation]]:
    """The job's inputs bound to the loaders that name them; a loader naming anything else is refused."""
    given = {item.parameter for item in spec.inputs}
    users: dict[str, list[graphcheck.FileInput]] = {}
    problems: list[FieldViolation] = []
    for file in files:
        value = graph[file.node_id]["inputs"][file.input_name]
        if isinstance(value, str) and value in given:
            users.setdefault(value, []).append(file)
        else:
            problems.append(
                FieldViolation(
                    file.field,
                    "must be the name of one of this job's inputs (workflow.inputs[].parameter); "
                    "files of the backend cannot be read",
                )
            )
    images: list[ImageInput] = []
    seen: set[str] = set()
    for i, item in enumerate(spec.inputs):
        where = f"workflow.inputs[{i}]"
        loaders = users.get(item.parameter, [])
        if not loaders:
            problems.append(
                FieldViolation(
                    f"{where}.parameter", f"{item.parameter!r} is not named by any loader of the graph"
                )
            )
        elif item.parameter in seen:
            problems.append(FieldViolation(f"{where}.parameter", f"{item.parameter!r} is bound twice"))
        elif why := kind_problem(item.data, loaders[0].kind):
            seen.add(item.parameter)
            problems.append(FieldViolation(f"{where}.data", why))
        else:
            seen.add(item.parameter)
            targets = tuple(Target(f.node_id, f.input_name) for f in loaders)
            param = Parameter(item.parameter, "image", targets)
            images.append(ImageInput(param, safe_upload_name(item.filename), item.data))
    return images, problems


def _from_template(template: Template, spec: generator_pb2.WorkflowSpec) -> ResolvedWorkflow:
    graph = copy.deepcopy(template.graph)
    values, problems = parameter_values(template.parameters, spec)
    images, image_problems = bind_images(template.parameters, spec)
    problems += image_problems
    raise_problems(problems)
    for name, value in values.items():
        for target in template.parameters[name].targets:
            graph[target.node_id]["inputs"][target.input_name] = value
    seed = values.get("seed")
    return ResolvedWorkflow(
        graph, template.name, values, seed if isinstance(seed, int) else 0, images, spec.include_previews
    )


def parameter_values(
    parameters: Mapping[str, Parameter], spec: generator_pb2.WorkflowSpec
) -> tuple[dict[str, Scalar], list[FieldViolation]]:
    """Each parameter's value (given, default, or a drawn seed) and every bad or missing one.

    The one check of ``workflow.parameters`` for every template, whatever backend kind runs it.
    """
    values: dict[str, Scalar] = {}
    problems: list[FieldViolation] = []
    for name, given in sorted(spec.parameters.items()):
        param = parameters.get(name)
        where = f"workflow.parameters[{name}]"
        if param is None:
            problems.append(FieldViolation(where, f"unknown parameter (known: {', '.join(parameters)})"))
            continue
        value = from_value(given)
        why = "has no value" if value is None else check_value(param, value)
        if why or value is None:
            problems.append(FieldViolation(where, why))
            continue
        values[name] = value
    for name, param in parameters.items():
        if name in values or param.type == "image":
            continue
        if param.default is not None:
            values[name] = param.default
        elif param.random:
            top = SEED_LIMIT if param.maximum is None else min(int(param.maximum), SEED_LIMIT)
            values[name] = secrets.randbelow(top + 1)
        elif param.required and f"workflow.parameters[{name}]" not in {p.field for p in problems}:
            problems.append(FieldViolation(f"workflow.parameters[{name}]", "is required"))
    return values, problems


def bind_images(
    parameters: Mapping[str, Parameter], spec: generator_pb2.WorkflowSpec
) -> tuple[list[ImageInput], list[FieldViolation]]:
    """The job's image inputs bound to the template's image parameters, and every problem, once.

    The one binding of ``workflow.inputs`` for every template, whatever backend kind runs it (a
    ComfyUI template puts the upload into node inputs, a provider template into a request field).
    Each problem is named at the input that is wrong: an input naming no image parameter, a
    parameter bound a second time, data that is not an image. An input that was sent with bad
    data binds its parameter all the same, so it is not also called missing.
    """
    images: list[ImageInput] = []
    problems: list[FieldViolation] = []
    bound: set[str] = set()
    for i, item in enumerate(spec.inputs):
        param = parameters.get(item.parameter)
        where = f"workflow.inputs[{i}]"
        if param is None or param.type != "image":
            problems.append(
                FieldViolation(f"{where}.parameter", f"{item.parameter!r} is not an image parameter")
            )
        elif item.parameter in bound:
            problems.append(FieldViolation(f"{where}.parameter", f"{item.parameter!r} is bound twice"))
        elif why := kind_problem(item.data, "image"):
            bound.add(item.parameter)
            problems.append(FieldViolation(f"{where}.data", why))
        else:
            bound.add(item.parameter)
            images.append(ImageInput(param, safe_upload_name(item.filename), item.data))
    for name, param in parameters.items():
        if param.type == "image" and param.required and name not in bound:
            problems.append(FieldViolation(f"workflow.inputs[{name}]", "this image input is required"))
    return images, problems


def safe_upload_name(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base if base and base not in (".", "..") else "input.png"


def bind_upload(workflow: ResolvedWorkflow, image: ImageInput, comfy_name: str) -> None:
    for target in image.parameter.targets:
        workflow.graph[target.node_id]["inputs"][target.input_name] = comfy_name


def apply_job_prefix(graph: dict[str, Any], folder: str, prompt_id: str) -> None:
    """Give every saver a prefix of its own (``folder/<prompt_id>-<node>``): no stale cache hits."""
    for node_id, node in graph.items():
        inputs = node.get("inputs", {})
        if isinstance(inputs.get("filename_prefix"), str):
            inputs["filename_prefix"] = f"{folder}/{prompt_id}-{node_id}"


def raise_problems(problems: list[FieldViolation]) -> None:
    """INVALID_ARGUMENT naming every problem, each bounded (the summary names the first five)."""
    if problems:
        problems = [FieldViolation(p.field, bounded(p.description, MAX_DESCRIPTION_BYTES)) for p in problems]
        summary = "; ".join(f"{p.field}: {p.description}" for p in problems[:5])
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, summary, "INVALID_WORKFLOW", violations=problems)
