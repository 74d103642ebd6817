"""Provider templates: a provider request (model, fixed fields) plus named, typed parameters.

They sit beside the ComfyUI templates (same parameter types, bounds and checks, listed by
``ListWorkflows`` with their backend kind) but fill fields of a provider request instead of node
inputs of a graph. One JSON file each in ``templates/``; a broken one stops start-up with its
name. A request is checked completely here, before any backend is touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from generator_service.inputs import kind_problem
from generator_service.providers.base import BackendKind
from generator_service.templates import (
    MEDIA_TYPES,
    Parameter,
    TemplateError,
    check_default,
    declared_parameter,
)
from generator_service.workflows import parameter_values, safe_upload_name
from mediagen.params import Scalar
from mediagen.rules import timeout_problem
from mediagen.scaffold import FieldViolation, ServiceError
from mediagen.v1 import generator_pb2

PACKAGED_DIR = Path(__file__).resolve().parent / "templates"
OPERATIONS = {BackendKind.IMAGES_API: ("generations", "edits"), BackendKind.PREDICTIONS: ("predictions",)}


@dataclass(frozen=True)
class ProviderTemplate:
    name: str
    kind: BackendKind
    operation: str
    model: str
    """The provider's model: ``gpt-image-1``, or ``owner/name`` (``owner/name:version`` pins one)."""
    description: str
    media_types: tuple[str, ...]
    request: dict[str, Any]
    """Fixed request fields (the body for the Images API, the ``input`` for predictions)."""
    parameters: dict[str, Parameter]
    fields: dict[str, str]
    """Parameter name to the request field it fills."""


@dataclass
class ImageUpload:
    field: str
    filename: str
    data: bytes


@dataclass
class ProviderWorkflow:
    template: ProviderTemplate
    values: dict[str, Scalar]
    request: dict[str, Any]
    images: list[ImageUpload] = field(default_factory=list)
    seed: int = 0


def load_provider_templates(*dirs: Path) -> dict[str, ProviderTemplate]:
    found: dict[str, ProviderTemplate] = {}
    for folder in dirs:
        for path in sorted(folder.glob("*.json")):
            try:
                found[path.stem] = parse(path.stem, json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise TemplateError(f"template {path.name}: {exc}") from exc
    return found


def parse(name: str, data: dict[str, Any]) -> ProviderTemplate:
    kind = BackendKind(data["kind"])
    if kind not in OPERATIONS:
        raise TemplateError(f"kind {kind} has no provider templates")
    operation = data.get("operation", OPERATIONS[kind][0])
    if operation not in OPERATIONS[kind]:
        raise TemplateError(f"operation must be one of {', '.join(OPERATIONS[kind])}")
    media = tuple(data.get("media_types", ["image"]))
    for item in media:
        if item not in MEDIA_TYPES:
            raise TemplateError(f"unknown media type {item!r}")
    parameters: dict[str, Parameter] = {}
    fields: dict[str, str] = {}
    for key, spec in data.get("parameters", {}).items():
        parameters[key] = param = declared_parameter(key, spec)
        check_default(param)
        fields[key] = str(spec.get("field", key))
    return ProviderTemplate(
        name,
        kind,
        operation,
        str(data["model"]),
        data.get("description", ""),
        media,
        dict(data.get("request", {})),
        parameters,
        fields,
    )


def check_job(request: generator_pb2.GenerateRequest, template: ProviderTemplate) -> ProviderWorkflow:
    """The job's provider request; INVALID_ARGUMENT listing every problem (timeout included)."""
    problems = [FieldViolation("timeout", why)] if (why := timeout_problem(request.timeout)) else []
    try:
        workflow = resolve(template, request.workflow)
    except ServiceError as exc:
        if exc.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        _raise_if(problems + list(exc.violations or [FieldViolation("workflow", exc.message)]))
        raise
    _raise_if(problems)
    return workflow


def resolve(template: ProviderTemplate, spec: generator_pb2.WorkflowSpec) -> ProviderWorkflow:
    """The request to send, or INVALID_ARGUMENT naming every bad field."""
    values, problems = parameter_values(template.parameters, spec)
    images = _images(template, spec, problems)
    _raise_if(problems)
    request = dict(template.request)
    for name, value in values.items():
        request[template.fields[name]] = value
    seed = values.get("seed")
    return ProviderWorkflow(template, values, request, images, seed if isinstance(seed, int) else 0)


def _images(
    template: ProviderTemplate, spec: generator_pb2.WorkflowSpec, problems: list[FieldViolation]
) -> list[ImageUpload]:
    images: list[ImageUpload] = []
    for i, item in enumerate(spec.inputs):
        param = template.parameters.get(item.parameter)
        where = f"workflow.inputs[{i}]"
        if param is None or param.type != "image":
            problems.append(
                FieldViolation(f"{where}.parameter", f"{item.parameter!r} is not an image parameter")
            )
        elif any(image.field == template.fields[item.parameter] for image in images):
            problems.append(FieldViolation(f"{where}.parameter", f"{item.parameter!r} is bound twice"))
        elif why := kind_problem(item.data, "image"):
            problems.append(FieldViolation(f"{where}.data", why))
        else:
            images.append(
                ImageUpload(template.fields[item.parameter], safe_upload_name(item.filename), item.data)
            )
    for name, param in template.parameters.items():
        if (
            param.type == "image"
            and param.required
            and not any(i.field == template.fields[name] for i in images)
        ):
            problems.append(FieldViolation(f"workflow.inputs[{name}]", "this image input is required"))
    return images


def _raise_if(problems: list[FieldViolation]) -> None:
    if problems:
        summary = "; ".join(f"{p.field}: {p.description}" for p in problems)
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, summary, "INVALID_WORKFLOW", violations=problems)
