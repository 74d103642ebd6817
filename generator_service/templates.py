"""Workflow templates: an API-format ComfyUI graph plus a manifest of named, typed parameters.

Templates are data (one JSON file each in ``templates/``) so adding a workflow needs no code.
They are checked when the service starts: a parameter that points at a missing node input, a
default outside its bounds or a graph without a save node stops start-up with a message naming
the file, instead of failing the first request that uses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mediagen.params import Scalar
from mediagen.rules import number_problem
from mediagen.v1 import common_pb2

PACKAGED_DIR = Path(__file__).resolve().parent / "templates"
PARAM_TYPES = ("string", "int", "float", "bool", "image")
MEDIA_TYPES = {
    "image": common_pb2.MEDIA_TYPE_IMAGE,
    "animated_image": common_pb2.MEDIA_TYPE_ANIMATED_IMAGE,
    "audio": common_pb2.MEDIA_TYPE_AUDIO,
    "video": common_pb2.MEDIA_TYPE_VIDEO,
    "other": common_pb2.MEDIA_TYPE_OTHER,
}


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Target:
    node_id: str
    input_name: str


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    targets: tuple[Target, ...]
    description: str = ""
    required: bool = False
    default: Scalar | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    random: bool = False
    """Generated (a fresh random seed) when the caller gives no value."""


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    media_types: tuple[str, ...]
    graph: dict[str, Any]
    parameters: dict[str, Parameter] = field(default_factory=dict)


def load_templates(*dirs: Path) -> dict[str, Template]:
    """Every ``*.json`` template in the directories; a later directory overrides an earlier one."""
    found: dict[str, Template] = {}
    for folder in dirs:
        if not folder.is_dir():
            raise TemplateError(f"templates directory {folder} does not exist")
        for path in sorted(folder.glob("*.json")):
            found[path.stem] = load_template(path)
    if not found:
        raise TemplateError("no workflow templates found")
    return found


def load_template(path: Path) -> Template:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return parse_template(path.stem, data)
    except (OSError, json.JSONDecodeError, TemplateError, KeyError, TypeError) as exc:
        raise TemplateError(f"template {path.name}: {exc}") from exc


def parse_template(name: str, data: dict[str, Any]) -> Template:
    graph = data["graph"]
    check_graph(graph)
    media = tuple(data.get("media_types", []))
    for kind in media:
        if kind not in MEDIA_TYPES:
            raise TemplateError(f"unknown media type {kind!r}")
    params = {key: _parameter(key, spec, graph) for key, spec in data.get("parameters", {}).items()}
    return Template(name, data.get("description", ""), media, graph, params)


def check_graph(graph: Any) -> None:
    """The shape ComfyUI's /prompt expects: {node_id: {class_type: str, inputs: {...}}}."""
    if not isinstance(graph, dict) or not graph:
        raise TemplateError("graph must be a non-empty object of nodes")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise TemplateError(f"node {node_id}: needs a class_type")
        if not isinstance(node.get("inputs", {}), dict):
            raise TemplateError(f"node {node_id}: inputs must be an object")


def declared_parameter(name: str, spec: dict[str, Any]) -> Parameter:
    """A parameter as a template's manifest declares it (a known type), still without targets.

    Both kinds of template (ComfyUI graphs and provider requests) declare parameters alike.
    """
    kind = spec["type"]
    if kind not in PARAM_TYPES:
        raise TemplateError(f"parameter {name}: type must be one of {', '.join(PARAM_TYPES)}")
    return Parameter(
        name,
        kind,
        (),
        spec.get("description", ""),
        bool(spec.get("required", False)),
        spec.get("default"),
        spec.get("minimum"),
        spec.get("maximum"),
        tuple(spec.get("choices", ())),
        bool(spec.get("random", False)),
    )


def check_default(param: Parameter) -> None:
    """A declared default must itself be a value the parameter accepts."""
    if param.default is not None and (problem := check_value(param, param.default)):
        raise TemplateError(f"parameter {param.name}: default {param.default!r}: {problem}")


def _parameter(name: str, spec: dict[str, Any], graph: dict[str, Any]) -> Parameter:
    declared = declared_parameter(name, spec)
    targets = tuple(_target(name, text, graph) for text in spec["targets"])
    if not targets:
        raise TemplateError(f"parameter {name}: no targets")
    param = replace(declared, targets=targets)
    if param.required and param.default is not None:
        raise TemplateError(f"parameter {name}: a required parameter has no default")
    check_default(param)
    if param.default is None and not (param.required or param.random or param.type == "image"):
        raise TemplateError(f"parameter {name}: needs a default, required or random")
    return param


def _target(name: str, text: str, graph: dict[str, Any]) -> Target:
    node_id, _, input_name = str(text).partition(".")
    node = graph.get(node_id)
    if node is None or input_name not in node.get("inputs", {}):
        raise TemplateError(f"parameter {name}: target {text!r} is not an input of the graph")
    return Target(node_id, input_name)


def check_value(param: Parameter, value: Scalar) -> str:
    """Why ``value`` does not fit ``param``, or "" when it does."""
    expected: type | tuple[type, ...] | None = _PY_TYPES.get(param.type)
    if expected is None:
        return "is bound through workflow.inputs, not parameters"
    if isinstance(value, bool) != (param.type == "bool") or not isinstance(value, expected):
        return f"must be {_TYPE_WORDS[param.type]}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not_finite := number_problem(value):
            return not_finite
        if param.minimum is not None and value < param.minimum:
            return f"must be >= {_num(param.minimum)}"
        if param.maximum is not None and value > param.maximum:
            return f"must be <= {_num(param.maximum)}"
    if param.choices and value not in param.choices:
        return f"must be one of {', '.join(param.choices)}"
    return ""


_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "bool": bool,
    "int": int,
    "float": (int, float),
}
_TYPE_WORDS = {"string": "a string", "bool": "a bool", "int": "an integer", "float": "a number"}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
