"""A raw graph, checked before anything is created: its text, its files, its nodes.

Three kinds of rule, in the order they apply:

* The text must be a JSON object of nodes, without NaN or infinities (JSON has neither) and at
  most :data:`MAX_DEPTH` levels deep: anything else would fail later, as an internal error.
* File inputs of loader nodes (``LoadImage``, ``LoadImageMask``, ``LoadAudio``, ``LoadVideo``,
  and any input ``/object_info`` declares as an upload) must name one of the job's own inputs;
  the generator uploads those and puts their uploaded names in. A path, or the name of a file
  already on the backend, is refused: it would let a caller read any file the backend can.
* With the backend's ``/object_info``, every node is checked the way ComfyUI checks a prompt:
  known class, required inputs present, literals of the right type and within bounds, list
  choices respected, links to existing outputs of a matching type, at least one output node.
  ComfyUI accepts a prompt where one output is valid and another is not (it runs the valid one);
  here every node must be valid, so such a graph is refused whole and nothing runs.

Violations name ``graph.<node>.inputs.<input>``, as ComfyUI's own refusals do once translated
(:mod:`generator_service.failures`), so a field reads the same whoever found the problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from generator_service.templates import TemplateError, check_graph
from mediagen.scaffold import FieldViolation

MAX_DEPTH = 32
MAX_CHOICES_SHOWN = 8

LOADERS: dict[tuple[str, str], str] = {
    ("LoadImage", "image"): "image",
    ("LoadImageMask", "image"): "image",
    ("LoadAudio", "audio"): "audio",
    ("LoadVideo", "file"): "video",
}
"""Stock loader nodes, known even when ``/object_info`` cannot be had."""

_UPLOAD_OPTIONS = {"image_upload": "image", "audio_upload": "audio", "video_upload": "video"}
_CONVERT: dict[str, type] = {"INT": int, "FLOAT": float, "STRING": str}
_WORDS = {"INT": "an integer", "FLOAT": "a number", "STRING": "a string"}


class GraphError(ValueError):
    """Raw graph text that is not a graph at all."""


@dataclass(frozen=True)
class FileInput:
    node_id: str
    input_name: str
    kind: str
    """What the loader reads: ``image``, ``audio`` or ``video``."""

    @property
    def field(self) -> str:
        return f"graph.{self.node_id}.inputs.{self.input_name}"


def parse(text: str) -> dict[str, Any]:
    """The graph of ``text``; :class:`GraphError` saying why when it is not one."""
    try:
        graph = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise GraphError(f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise GraphError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise GraphError(str(exc)) from None
    if _depth(graph) > MAX_DEPTH:
        raise GraphError(f"nested more than {MAX_DEPTH} levels deep")
    try:
        check_graph(graph)
    except TemplateError as exc:
        raise GraphError(str(exc)) from None
    return dict(graph)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def file_inputs(graph: dict[str, Any], nodes: dict[str, Any] | None) -> list[FileInput]:
    """Every input of the graph that names a file for a loader to read."""
    found: list[FileInput] = []
    for node_id, node in graph.items():
        class_type = node["class_type"]
        declared = _declared_uploads(nodes.get(class_type) if nodes else None)
        for input_name in node.get("inputs", {}):
            kind = declared.get(input_name) or LOADERS.get((class_type, input_name))
            if kind:
                found.append(FileInput(str(node_id), str(input_name), kind))
    return found


def _declared_uploads(info: Any) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for name, entry in _spec_entries(info):
        options = _options(entry)
        for key, kind in _UPLOAD_OPTIONS.items():
            if options.get(key):
                kinds[name] = kind
        upload = options.get("upload")
        if isinstance(upload, str) and upload in ("image", "audio", "video"):
            kinds[name] = upload
    return kinds


def _spec_entries(info: Any) -> Iterator[tuple[str, Any]]:
    inputs = info.get("input") if isinstance(info, dict) else None
    for category in ("required", "optional"):
        section = inputs.get(category) if isinstance(inputs, dict) else None
        if isinstance(section, dict):
            yield from section.items()


def _options(entry: Any) -> dict[str, Any]:
    if isinstance(entry, list) and len(entry) > 1 and isinstance(entry[1], dict):
        return entry[1]
    return {}


def schema_violations(
    graph: dict[str, Any], nodes: dict[str, Any], files: list[FileInput]
) -> list[FieldViolation]:
    """What ComfyUI would refuse in ``graph``, judged from its ``/object_info``."""
    skip = {(f.node_id, f.input_name) for f in files}
    problems: list[FieldViolation] = []
    has_output = False
    for node_id, node in graph.items():
        info = nodes.get(node["class_type"])
        if not isinstance(info, dict):
            problems.append(
                FieldViolation(f"graph.{node_id}.class_type", f"unknown node class {node['class_type']!r}")
            )
            continue
        has_output = has_output or bool(info.get("output_node"))
        inputs = node.get("inputs", {})
        declared = info.get("input")
        required = declared.get("required") if isinstance(declared, dict) else None
        required = required if isinstance(required, dict) else {}
        for name, entry in _spec_entries(info):
            where = f"graph.{node_id}.inputs.{name}"
            if name not in inputs:
                if name in required:
                    problems.append(FieldViolation(where, "required input is missing"))
                continue
            if (str(node_id), name) in skip:
                continue
            kind = entry[0] if isinstance(entry, list) and entry else None
            value = inputs[name]
            why = (
                _link_problem(value, kind, graph, nodes)
                if isinstance(value, list)
                else _literal_problem(value, kind, _options(entry))
            )
            if why:
                problems.append(FieldViolation(where, why))
    if graph and not problems and not has_output:
        problems.append(FieldViolation("graph", "has no output node (a node that saves its result)"))
    return problems


def _link_problem(value: list[Any], kind: Any, graph: dict[str, Any], nodes: dict[str, Any]) -> str:
    if len(value) != 2 or not isinstance(value[0], str) or type(value[1]) is not int:
        return 'a link must be ["<node id>", <output index>]'
    source = graph.get(value[0])
    if source is None:
        return f"links to node {str(value[0])[:40]!r}, which is not in the graph"
    info = nodes.get(source["class_type"])
    if not isinstance(info, dict):
        return ""  # the unknown class is reported on its own node
    outputs = info.get("output", [])
    if not 0 <= value[1] < len(outputs):
        return f"links to output {value[1]} of node {value[0]}, which has {len(outputs)} outputs"
    received = outputs[value[1]]
    if isinstance(kind, str) and not _types_match(received, kind):
        return f"expects {kind}, but output {value[1]} of node {value[0]} is {received}"
    return ""


def _types_match(received: Any, wanted: str) -> bool:
    if received == wanted or received == "*" or wanted == "*":
        return True
    if not isinstance(received, str):
        return False
    return set(received.split(",")) <= set(wanted.split(","))


def _literal_problem(value: Any, kind: Any, options: dict[str, Any]) -> str:
    if isinstance(value, dict) and "__value__" in value:
        value = value["__value__"]
    if isinstance(kind, str) and kind in _CONVERT:
        try:
            value = _CONVERT[kind](value)
        except (TypeError, ValueError, OverflowError):
            return f"must be {_WORDS[kind]}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        low, high = options.get("min"), options.get("max")
        if isinstance(low, int | float) and value < low:
            return f"must be >= {low}"
        if isinstance(high, int | float) and value > high:
            return f"must be <= {high}"
    if isinstance(kind, list) and value not in kind:
        shown = ", ".join(str(choice) for choice in kind[:MAX_CHOICES_SHOWN])
        more = f" (and {len(kind) - MAX_CHOICES_SHOWN} more)" if len(kind) > MAX_CHOICES_SHOWN else ""
        return f"must be one of {shown}{more}"
    return ""
