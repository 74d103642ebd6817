"""Builds a ``GatewayGenerateRequest`` from command-line groups or a run file.

On the command line each ``--template`` (or ``--graph``) starts a new output
and the ``--param``, ``--input`` and ``--timeout`` after it belong to it. A
run file (JSON, or YAML when PyYAML is installed) says the same thing::

    {"run_id": "...", "concurrency": 2, "context": {"schema": "...", "labels": {}},
     "outputs": [{"template": "solid_image", "parameters": {"width": 64}, "timeout": 30}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import duration_pb2

from mediagen.cli.params import BadParameter, split_assignment, typed_value
from mediagen.params import Scalar
from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2

Templates = dict[str, generator_pb2.WorkflowTemplate]


@dataclass
class OutputArgs:
    template: str = ""
    graph_file: Path | None = None
    params: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    timeout: float = 0.0


def output_from_args(group: OutputArgs, templates: Templates) -> gateway_pb2.OutputSpec:
    values: dict[str, Scalar] = {}
    for text in group.params:
        name, value = split_assignment(text, "--param")
        values[name] = value
    inputs = [_input_media(*split_assignment(text, "--input")) for text in group.inputs]
    return _output(group.template, group.graph_file, values, inputs, group.timeout, templates)


def request_from_file(path: Path, templates: Templates) -> gateway_pb2.GatewayGenerateRequest:
    data = _load(path)
    outputs = []
    for item in data.get("outputs", []):
        graph = Path(item["graph_file"]) if "graph_file" in item else None
        inputs = [_input_media(name, file) for name, file in item.get("inputs", {}).items()]
        outputs.append(
            _output(
                item.get("template", ""),
                graph,
                item.get("parameters", {}),
                inputs,
                float(item.get("timeout", 0)),
                templates,
            )
        )
    return gateway_pb2.GatewayGenerateRequest(
        run_id=data.get("run_id", ""),
        context=storage_pb2.RunContext(**data.get("context", {})),
        outputs=outputs,
        concurrency=int(data.get("concurrency", 0)),
    )


def _output(
    template: str,
    graph_file: Path | None,
    values: dict[str, Any],
    inputs: list[generator_pb2.InputMedia],
    timeout: float,
    templates: Templates,
) -> gateway_pb2.OutputSpec:
    workflow = generator_pb2.WorkflowSpec(inputs=inputs)
    if graph_file is not None:
        workflow.raw_graph_json = graph_file.read_text()
    else:
        workflow.template = template
    specs = {spec.name: spec for spec in templates[template].parameters} if template in templates else {}
    for name, value in values.items():
        try:
            workflow.parameters[name].CopyFrom(typed_value(specs.get(name), value))
        except BadParameter as err:
            raise BadParameter(f"parameter {name} of {template or 'graph'}: {err}") from None
    spec = gateway_pb2.OutputSpec(workflow=workflow)
    if timeout:
        spec.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout), nanos=int(timeout % 1 * 1e9)))
    return spec


def _input_media(parameter: str, file: str) -> generator_pb2.InputMedia:
    path = Path(file)
    return generator_pb2.InputMedia(parameter=parameter, filename=path.name, data=path.read_bytes())


def _load(path: Path) -> dict[str, Any]:
    text = path.read_text()
    loaded = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    if not isinstance(loaded, dict):
        raise BadParameter(f"{path}: a run file holds one object with an 'outputs' list")
    return loaded
