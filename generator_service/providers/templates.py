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

from generator_service.providers.base import BackendKind
from generator_service.templates import (
    Parameter,
    TemplateError,
    check_default,
    declared_media_types,
    declared_parameter,
)
from generator_service.workflows import bind_images, checked, parameter_values, raise_problems
from mediagen.params import Scalar
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
    media = declared_media_types(data.get("media_types", ["image"]))
    parameters: dict[str, Parameter] = {}
    fields: dict[str, str] = {}
    for key, spec in data.get("parameters", {}).items():
        parameters[key] = param = declared_parameter(key, spec)
        check_default(param)
        filled = str(spec.get("field", key))
        if owner := next((other for other, used in fields.items() if used == filled), None):
            # two parameters filling one field would overwrite each other (or send two files)
            raise TemplateError(f"parameter {key}: field {filled!r} is already filled by {owner}")
        fields[key] = filled
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
    return checked(request, lambda: resolve(template, request.workflow))


def resolve(template: ProviderTemplate, spec: generator_pb2.WorkflowSpec) -> ProviderWorkflow:
    """The request to send, or INVALID_ARGUMENT naming every bad field."""
    values, problems = parameter_values(template.parameters, spec)
    images, image_problems = bind_images(template.parameters, spec)
    raise_problems(problems + image_problems)
    request = dict(template.request)
    for name, value in values.items():
        request[template.fields[name]] = value
    uploads = [ImageUpload(template.fields[i.parameter.name], i.filename, i.data) for i in images]
    seed = values.get("seed")
    return ProviderWorkflow(template, values, request, uploads, seed if isinstance(seed, int) else 0)
