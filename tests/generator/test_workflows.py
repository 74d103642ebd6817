"""Template loading and request binding: every bad input is refused with the field it concerns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from generator_service import workflows
from generator_service.templates import PACKAGED_DIR, TemplateError, load_templates
from mediagen.params import to_value as param
from mediagen.scaffold import ServiceError
from mediagen.v1 import generator_pb2

TEMPLATES = load_templates(PACKAGED_DIR)
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def spec(template: str, inputs=(), **params) -> generator_pb2.WorkflowSpec:
    result = generator_pb2.WorkflowSpec(template=template, inputs=list(inputs))
    for name, value in params.items():
        result.parameters[name].CopyFrom(param(value))
    return result


def refused(workflow: generator_pb2.WorkflowSpec) -> dict[str, str]:
    with pytest.raises(ServiceError) as caught:
        workflows.resolve(workflow, TEMPLATES)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return {v.field: v.description for v in caught.value.violations}


def test_shipped_templates_include_the_required_set():
    assert {
        "sd15_txt2img",
        "sdxl_txt2img",
        "sd35_large",
        "sd15_img2img",
        "stable_audio",
        "wan_t2v",
        "solid_image",
        "animated_webp",
        "empty_audio",
        "inverted_image",
        "large_image",
    } <= set(TEMPLATES)


def test_parameters_are_bound_into_every_target_and_defaults_filled():
    resolved = workflows.resolve(spec("stable_audio", prompt="rain", seconds=5.0, steps=7), TEMPLATES)
    graph = resolved.graph
    assert graph["3"]["inputs"]["text"] == "rain"
    assert graph["5"]["inputs"]["seconds"] == 5.0
    assert graph["6"]["inputs"]["seconds_total"] == 5.0
    assert graph["7"]["inputs"]["steps"] == 7
    assert graph["7"]["inputs"]["cfg"] == 4.98
    assert resolved.values["negative_prompt"] == ""
    assert resolved.template == "stable_audio"


def test_missing_seed_gets_a_random_one_that_is_reported_and_bound():
    first = workflows.resolve(spec("sd15_txt2img", prompt="a"), TEMPLATES)
    second = workflows.resolve(spec("sd15_txt2img", prompt="a"), TEMPLATES)
    assert 0 <= first.seed <= 2**53
    assert first.seed != second.seed
    assert first.graph["5"]["inputs"]["seed"] == first.seed == first.values["seed"]
    fixed = workflows.resolve(spec("sd15_txt2img", prompt="a", seed=42), TEMPLATES)
    assert fixed.seed == 42
    assert fixed.graph["5"]["inputs"]["seed"] == 42


def test_templates_are_not_mutated_by_requests():
    workflows.resolve(spec("solid_image", width=7), TEMPLATES)
    assert TEMPLATES["solid_image"].graph["1"]["inputs"]["width"] == 512


def test_unknown_template_names_the_template_field():
    assert "workflow.template" in refused(spec("nope"))


def test_empty_workflow_is_refused():
    assert "workflow.template" in refused(generator_pb2.WorkflowSpec())


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"prompt": "a", "stepz": 3}, "workflow.parameters[stepz]", "unknown parameter"),
        ({"prompt": "a", "steps": "many"}, "workflow.parameters[steps]", "integer"),
        ({"prompt": "a", "steps": 1.5}, "workflow.parameters[steps]", "integer"),
        ({"prompt": "a", "steps": True}, "workflow.parameters[steps]", "integer"),
        ({"prompt": "a", "steps": 0}, "workflow.parameters[steps]", ">= 1"),
        ({"prompt": "a", "cfg": 1000.0}, "workflow.parameters[cfg]", "<= 100"),
        ({"prompt": "a", "sampler": "bogus"}, "workflow.parameters[sampler]", "one of"),
        ({"prompt": 3}, "workflow.parameters[prompt]", "string"),
        ({}, "workflow.parameters[prompt]", "required"),
    ],
)
def test_bad_parameters_are_named(params, field, words):
    violations = refused(spec("sd15_txt2img", **params))
    assert field in violations
    assert words in violations[field]


def test_every_problem_is_reported_at_once():
    violations = refused(spec("sd15_txt2img", steps=0, cfg=-1.0))
    assert {"workflow.parameters[steps]", "workflow.parameters[cfg]", "workflow.parameters[prompt]"} <= set(
        violations
    )


def test_float_parameters_accept_integers():
    resolved = workflows.resolve(spec("sd15_txt2img", prompt="a", cfg=5), TEMPLATES)
    assert resolved.graph["5"]["inputs"]["cfg"] == 5


def test_image_inputs_must_target_an_image_parameter_and_required_ones_must_be_given():
    png = generator_pb2.InputMedia(parameter="prompt", filename="x.png", data=PNG_HEAD)
    violations = refused(spec("sd15_img2img", inputs=[png], prompt="a"))
    assert "workflow.inputs[0].parameter" in violations
    assert "workflow.inputs[image]" in violations
    empty = generator_pb2.InputMedia(parameter="image", filename="x.png", data=b"")
    assert "workflow.inputs[0].data" in refused(spec("sd15_img2img", inputs=[empty], prompt="a"))
    as_param = refused(spec("sd15_img2img", prompt="a", image="x.png"))
    assert "workflow.parameters[image]" in as_param


def test_image_input_keeps_only_the_base_name():
    item = generator_pb2.InputMedia(parameter="image", filename="../../etc/passwd", data=PNG_HEAD)
    resolved = workflows.resolve(spec("sd15_img2img", inputs=[item], prompt="a"), TEMPLATES)
    assert resolved.images[0].filename == "passwd"


@pytest.mark.parametrize("text", ["not json", "[]", "{}", '{"1": {"inputs": {}}}', '{"1": 5}'])
def test_malformed_raw_graphs_name_the_raw_graph_field(text):
    assert "workflow.raw_graph_json" in refused(generator_pb2.WorkflowSpec(raw_graph_json=text))


def test_raw_graph_takes_no_parameters():
    workflow = generator_pb2.WorkflowSpec(raw_graph_json='{"1": {"class_type": "X", "inputs": {}}}')
    workflow.parameters["steps"].CopyFrom(param(3))
    assert "workflow.parameters[steps]" in refused(workflow)


def test_job_prefix_rewrites_every_saver():
    graph = json.loads(json.dumps(TEMPLATES["wan_t2v"].graph))
    workflows.apply_job_prefix(graph, "mediagen", "abc")
    assert graph["10"]["inputs"]["filename_prefix"] == "mediagen/abc-10"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"graph": {}}, "non-empty"),
        (
            {
                "graph": {"1": {"class_type": "A", "inputs": {"x": 1}}},
                "parameters": {"p": {"type": "int", "targets": ["2.x"], "default": 1}},
            },
            "not an input",
        ),
        (
            {
                "graph": {"1": {"class_type": "A", "inputs": {"x": 1}}},
                "parameters": {"p": {"type": "int", "targets": ["1.x"], "default": 9, "maximum": 5}},
            },
            "must be <= 5",
        ),
        (
            {
                "graph": {"1": {"class_type": "A", "inputs": {"x": 1}}},
                "parameters": {"p": {"type": "complex", "targets": ["1.x"]}},
            },
            "type must be",
        ),
        ("{broken", "Expecting"),
    ],
)
def test_broken_template_files_fail_loading_with_the_file_name(tmp_path: Path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(TemplateError, match=r"bad\.json") as caught:
        load_templates(tmp_path)
    assert words in str(caught.value)


CUSTOM_NODES = {
    "MyLoader": {
        "input": {
            "required": {
                "picture": [["a.png", "b.png"], {"image_upload": True}],
                "strength": ["FLOAT", {"min": 0.0, "max": 1.0}],
            }
        },
        "output": ["IMAGE"],
        "output_node": False,
    },
    "MySaver": {
        "input": {"required": {"images": ["IMAGE", {}], "filename_prefix": ["STRING", {"default": "x"}]}},
        "output": [],
        "output_node": True,
    },
}


def raw_spec(graph: dict, *inputs: generator_pb2.InputMedia) -> generator_pb2.WorkflowSpec:
    return generator_pb2.WorkflowSpec(raw_graph_json=json.dumps(graph), inputs=list(inputs))


def test_any_input_declared_as_an_upload_is_a_loader_that_takes_only_the_jobs_inputs():
    graph: dict[str, dict[str, Any]] = {
        "1": {"class_type": "MyLoader", "inputs": {"picture": "a.png", "strength": 0.5}},
        "2": {"class_type": "MySaver", "inputs": {"images": ["1", 0], "filename_prefix": "p"}},
    }
    with pytest.raises(ServiceError) as caught:
        workflows.resolve(raw_spec(graph), TEMPLATES, CUSTOM_NODES)
    assert [v.field for v in caught.value.violations] == ["graph.1.inputs.picture"]
    graph["1"]["inputs"]["picture"] = "mine"
    photo = generator_pb2.InputMedia(parameter="mine", filename="../me.png", data=PNG_HEAD)
    resolved = workflows.resolve(raw_spec(graph, photo), TEMPLATES, CUSTOM_NODES)
    assert [
        (i.filename, [(t.node_id, t.input_name) for t in i.parameter.targets]) for i in resolved.images
    ] == [("me.png", [("1", "picture")])]
    workflows.bind_upload(resolved, resolved.images[0], "uploaded/me.png")
    assert resolved.graph["1"]["inputs"]["picture"] == "uploaded/me.png"


def test_without_a_node_catalogue_the_stock_loaders_still_take_only_the_jobs_inputs():
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "/etc/hostname"}}}
    with pytest.raises(ServiceError) as caught:
        workflows.resolve(raw_spec(graph), TEMPLATES, None)
    assert [v.field for v in caught.value.violations] == ["graph.1.inputs.image"]
