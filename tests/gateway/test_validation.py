"""Bad requests fail at once with INVALID_ARGUMENT naming every bad field, and create nothing.

The workflow rules have one owner, the generator: the table below pins every message and field
path, asked of the generator directly and of the gateway (which asks the generator before a run
exists), and both must say the same words, the gateway's fields under ``outputs[i].``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import duration_pb2
from minio import Minio

from comfyui_sim import SimulatorHandle
from generator_service.templates import PACKAGED_DIR, load_templates
from mediagen.scaffold import RunningServer
from mediagen.scaffold.channels import open_channel
from mediagen.scaffold.errors import StatusDetails, status_details, status_of_rpc_error
from mediagen.v1 import gateway_pb2, generator_pb2, generator_pb2_grpc
from tests.gateway.conftest import Gateway
from tests.gateway.runs import output, request, run

TEMPLATES = load_templates(PACKAGED_DIR)
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
LOADER_RULE = (
    "must be the name of one of this job's inputs (workflow.inputs[].parameter); "
    "files of the backend cannot be read"
)


async def refused_details(gateway: Gateway, req: gateway_pb2.GatewayGenerateRequest) -> StatusDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run(gateway.stub, req)
    return status_details(status_of_rpc_error(caught.value))


async def refused(
    gateway: Gateway, req: gateway_pb2.GatewayGenerateRequest
) -> tuple[grpc.StatusCode, list[str]]:
    details = await refused_details(gateway, req)
    return details.code, [v.field for v in details.violations]


def graph_output(graph: object, *inputs: generator_pb2.InputMedia) -> gateway_pb2.OutputSpec:
    text = graph if isinstance(graph, str) else json.dumps(graph)
    return gateway_pb2.OutputSpec(
        workflow=generator_pb2.WorkflowSpec(raw_graph_json=text, inputs=list(inputs))
    )


def with_inputs(spec: gateway_pb2.OutputSpec, *inputs: generator_pb2.InputMedia) -> gateway_pb2.OutputSpec:
    spec.workflow.inputs.extend(inputs)
    return spec


def with_parameter(spec: gateway_pb2.OutputSpec, name: str, value: int) -> gateway_pb2.OutputSpec:
    spec.workflow.parameters[name].int_value = value
    return spec


def with_timeout(spec: gateway_pb2.OutputSpec, seconds: int, nanos: int) -> gateway_pb2.OutputSpec:
    spec.timeout.CopyFrom(duration_pb2.Duration(seconds=seconds, nanos=nanos))
    return spec


def with_empty_value(spec: gateway_pb2.OutputSpec, name: str) -> gateway_pb2.OutputSpec:
    spec.workflow.parameters[name].Clear()
    spec.workflow.parameters[name].SetInParent()
    return spec


def image(name: str, data: bytes = PNG_HEAD) -> generator_pb2.InputMedia:
    return generator_pb2.InputMedia(parameter=name, filename=f"{name}.png", data=data)


def saved(source: str = "1") -> dict[str, object]:
    return {"class_type": "SaveImage", "inputs": {"images": [source, 0], "filename_prefix": "t"}}


def empty_image(**inputs: object) -> dict[str, object]:
    return {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0, **inputs},
    }


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], gateway_pb2.OutputSpec]
    violations: list[tuple[str, str]]


CASES = [
    Case(
        "out of bounds",
        lambda: output("solid_image", width=0),
        [("workflow.parameters[width]", "must be >= 1")],
    ),
    Case(
        "large bound printed whole",
        lambda: output("solid_image", color=2**24),
        [("workflow.parameters[color]", "must be <= 16777215")],
    ),
    Case(
        "wrong type",
        lambda: output("solid_image", width="wide"),
        [("workflow.parameters[width]", "must be an integer")],
    ),
    Case(
        "choice",
        lambda: output("sd15_txt2img", prompt="a", sampler="bogus"),
        [
            (
                "workflow.parameters[sampler]",
                "must be one of euler, euler_ancestral, heun, dpm_2, lms, dpmpp_2m, dpmpp_sde, dpmpp_2m_sde, "
                "dpmpp_3m_sde, ddim, uni_pc",
            )
        ],
    ),
    Case(
        "unknown parameter",
        lambda: output("solid_image", depth=3),
        [("workflow.parameters[depth]", "unknown parameter (known: width, height, color, batch_size)")],
    ),
    Case(
        "no value",
        lambda: with_empty_value(output("solid_image"), "width"),
        [("workflow.parameters[width]", "has no value")],
    ),
    Case(
        "required",
        lambda: output("sd15_txt2img"),
        [("workflow.parameters[prompt]", "is required")],
    ),
    Case(
        "image given as a parameter",
        lambda: with_inputs(output("sd15_img2img", prompt="a", image="x.png"), image("image")),
        [("workflow.parameters[image]", "is bound through workflow.inputs, not parameters")],
    ),
    Case(
        "NaN float",
        lambda: output("sd15_txt2img", prompt="a", cfg=float("nan")),
        [("workflow.parameters[cfg]", "must be a finite number")],
    ),
    Case(
        "infinite float",
        lambda: output("solid_video", fps=float("inf")),
        [("workflow.parameters[fps]", "must be a finite number")],
    ),
    Case(
        "input on a template without an image parameter",
        lambda: with_inputs(output("solid_image"), image("image")),
        [("workflow.inputs[0].parameter", "'image' is not an image parameter")],
    ),
    Case(
        "empty input",
        lambda: with_inputs(output("sd15_img2img", prompt="a"), image("image", b"")),
        [("workflow.inputs[0].data", "is empty")],
    ),
    Case(
        "input that is not an image",
        lambda: with_inputs(output("sd15_img2img", prompt="a"), image("image", b"hello, world")),
        [("workflow.inputs[0].data", "is not an image file this service recognises")],
    ),
    Case(
        "required image input",
        lambda: output("sd15_img2img", prompt="a"),
        [("workflow.inputs[image]", "this image input is required")],
    ),
    Case(
        "negative timeout",
        lambda: with_timeout(output("solid_image"), -1, 0),
        [("timeout", "must not be negative")],
    ),
    Case(
        "timeout too short",
        lambda: with_timeout(output("solid_image"), 0, 1),
        [("timeout", "must be 0 (the default) or at least 1s")],
    ),
    Case(
        "unknown template",
        lambda: output("nope"),
        [("workflow.template", f"unknown template 'nope' (known: {', '.join(sorted(TEMPLATES))})")],
    ),
    Case(
        "image bound twice",
        lambda: with_inputs(output("sd15_img2img", prompt="a"), image("image"), image("image")),
        [("workflow.inputs[1].parameter", "'image' is bound twice")],
    ),
    Case(
        "parameters on a raw graph",
        lambda: with_parameter(graph_output({"1": empty_image(), "2": saved()}), "steps", 3),
        [("workflow.parameters[steps]", "a raw graph takes no parameters")],
    ),
    Case(
        "link to a missing node",
        lambda: graph_output({"1": empty_image(), "2": saved("9")}),
        [("graph.2.inputs.images", "links to node '9', which is not in the graph")],
    ),
    Case(
        "link of a mismatched type",
        lambda: graph_output(
            {
                "1": {
                    "class_type": "EmptyLatentImage",
                    "inputs": {"width": 64, "height": 64, "batch_size": 1},
                },
                "2": saved(),
            }
        ),
        [("graph.2.inputs.images", "expects IMAGE, but output 0 of node 1 is LATENT")],
    ),
    Case(
        "graph literal above its maximum",
        lambda: graph_output({"1": empty_image(color=2**24), "2": saved()}),
        [("graph.1.inputs.color", "must be <= 16777215")],
    ),
    Case(
        "no workflow",
        lambda: gateway_pb2.OutputSpec(),
        [("workflow.template", "give a template name or raw_graph_json")],
    ),
    Case(
        "graph not JSON",
        lambda: graph_output("{not json"),
        [
            (
                "workflow.raw_graph_json",
                "not JSON: Expecting property name enclosed in double quotes at line 1 column 2",
            )
        ],
    ),
    Case(
        "graph nested 10,000 levels",
        lambda: graph_output('{"1": ' + "[" * 10_000 + "]" * 10_000 + "}"),
        [("workflow.raw_graph_json", "nested more than 32 levels deep")],
    ),
    Case(
        "NaN in a graph",
        lambda: graph_output('{"1": {"class_type": "EmptyImage", "inputs": {"width": NaN}}}'),
        [("workflow.raw_graph_json", "NaN is not a JSON number")],
    ),
    Case(
        "overflowing number in a graph",
        lambda: graph_output('{"1": {"class_type": "EmptyImage", "inputs": {"width": 1e999}}}'),
        [("workflow.raw_graph_json", "1e999 is not a finite number")],
    ),
    Case(
        "link to a node id that is not a string",
        lambda: graph_output(
            {
                "1": empty_image(),
                "2": {"class_type": "ImageInvert", "inputs": {"image": [1, 0]}},
                "3": saved("2"),
            }
        ),
        [("graph.2.inputs.image", 'a link must be ["<node id>", <output index>]')],
    ),
    Case(
        "unknown class",
        lambda: graph_output({"1": {"class_type": "NoSuchNode", "inputs": {}}, "2": saved()}),
        [("graph.1.class_type", "unknown node class 'NoSuchNode'")],
    ),
    Case(
        "wrong literal type",
        lambda: graph_output({"1": empty_image(width="abc"), "2": saved()}),
        [("graph.1.inputs.width", "must be an integer")],
    ),
    Case(
        "out of range",
        lambda: graph_output({"1": empty_image(height=0), "2": saved()}),
        [("graph.1.inputs.height", "must be >= 1")],
    ),
    Case(
        "not a choice",
        lambda: graph_output(
            {
                "1": empty_image(),
                "2": {
                    "class_type": "ImageScale",
                    "inputs": {
                        "image": ["1", 0],
                        "upscale_method": "magic",
                        "width": 8,
                        "height": 8,
                        "crop": "disabled",
                    },
                },
                "3": saved("2"),
            }
        ),
        [("graph.2.inputs.upscale_method", "must be one of nearest-exact, bilinear, area, bicubic, lanczos")],
    ),
    Case(
        "link of the wrong type",
        lambda: graph_output(
            {
                "1": empty_image(),
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 1]}},
                "3": saved("2"),
            }
        ),
        [("graph.2.inputs.image", "links to output 1 of node 1, which has 1 outputs")],
    ),
    Case(
        "one valid and one invalid output",
        lambda: graph_output(
            {
                "1": empty_image(),
                "2": saved(),
                "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
            }
        ),
        [("graph.3.inputs.filename_prefix", "required input is missing")],
    ),
    Case(
        "loader reading a path",
        lambda: graph_output(
            {"1": {"class_type": "LoadImage", "inputs": {"image": "../../../../etc/hostname"}}, "2": saved()}
        ),
        [("graph.1.inputs.image", LOADER_RULE)],
    ),
    Case(
        "loader reading another job's output",
        lambda: graph_output(
            {
                "1": {
                    "class_type": "LoadImage",
                    "inputs": {"image": "../output/mediagen/other-2_00001_.png"},
                },
                "2": saved(),
            },
            image("photo"),
        ),
        [
            ("graph.1.inputs.image", LOADER_RULE),
            ("workflow.inputs[0].parameter", "'photo' is not named by any loader of the graph"),
        ],
    ),
    Case(
        "loader input that is not an image",
        lambda: graph_output(
            {"1": {"class_type": "LoadImage", "inputs": {"image": "photo"}}, "2": saved()},
            image("photo", b"GIF"),
        ),
        [("workflow.inputs[0].data", "is not an image file this service recognises")],
    ),
    Case(
        "graph without an output",
        lambda: graph_output({"1": empty_image()}),
        [("graph", "has no output node (a node that saves its result)")],
    ),
]


async def test_every_rule_says_the_same_from_the_generator_and_the_gateway(
    gateway: Gateway, generator: RunningServer, sim: SimulatorHandle, minio_client: Minio, bucket: str
) -> None:
    runs_before = sim.state()["prompts_run"]
    channel = open_channel(generator.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    wrong: list[str] = []
    try:
        for case in CASES:
            spec = case.build()
            job = generator_pb2.GenerateRequest(workflow=spec.workflow, timeout=spec.timeout)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in stub.Generate(job, timeout=30):  # type: ignore[attr-defined]
                    pass
            direct = status_details(status_of_rpc_error(caught.value))
            got = [(v.field, v.description) for v in direct.violations]
            if (direct.code, got) != (grpc.StatusCode.INVALID_ARGUMENT, case.violations):
                wrong.append(f"{case.name}: generator said {direct.code.name} {got}")
            via = await refused_details(gateway, request(case.build(), run_id="never-created"))
            relayed = [(v.field, v.description) for v in via.violations]
            expected = [(f"outputs[0].{field}", words) for field, words in case.violations]
            if (via.code, relayed) != (grpc.StatusCode.INVALID_ARGUMENT, expected):
                wrong.append(f"{case.name}: gateway said {via.code.name} {relayed}")
    finally:
        await channel.close()
    assert wrong == [], "\n".join(wrong)
    assert sim.state()["prompts_run"] == runs_before
    assert list(minio_client.list_objects(bucket, recursive=True)) == []


async def test_no_outputs_is_invalid_argument_on_outputs(gateway: Gateway) -> None:
    assert await refused(gateway, request()) == (grpc.StatusCode.INVALID_ARGUMENT, ["outputs"])


async def test_malformed_run_id_is_invalid_argument_on_run_id(gateway: Gateway) -> None:
    code, fields = await refused(gateway, request(output("solid_image"), run_id="../escape"))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["run_id"])


async def test_every_bad_field_is_named_and_no_run_is_created(
    gateway: Gateway, minio_client: Minio, bucket: str
) -> None:
    req = request(
        output("solid_image", width="wide"),
        output("no_such_template"),
        output("empty_audio", duration=-1.0, loudness=3),
        run_id="never-created",
    )
    code, fields = await refused(gateway, req)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(fields) == [
        "outputs[0].workflow.parameters[width]",
        "outputs[1].workflow.template",
        "outputs[2].workflow.parameters[duration]",
        "outputs[2].workflow.parameters[loudness]",
    ]
    assert list(minio_client.list_objects(bucket, recursive=True)) == []


async def test_negative_timeout_and_missing_workflow_are_refused(gateway: Gateway) -> None:
    bad_timeout = output("solid_image")
    bad_timeout.timeout.seconds = -1
    code, fields = await refused(gateway, request(bad_timeout, gateway_pb2.OutputSpec()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == ["outputs[0].timeout", "outputs[1].workflow.template"]


async def test_reused_run_id_is_already_exists(gateway: Gateway, sim: object) -> None:
    await run(gateway.stub, request(output("solid_image", width=8, height=8), run_id="twice"))
    code, _ = await refused(gateway, request(output("solid_image"), run_id="twice"))
    assert code == grpc.StatusCode.ALREADY_EXISTS


async def test_a_raw_graph_reads_only_the_files_of_its_own_job(
    gateway: Gateway, sim: SimulatorHandle
) -> None:
    """The job's input is uploaded and bound where the graph names it; the result is stored."""
    png = _png(8, 8)
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "photo"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": saved("2"),
    }
    result = await run(gateway.stub, request(graph_output(graph, image("photo", png))))
    assert (result.completed.media_stored, result.completed.outputs_failed) == (1, 0)
    assert result.records[0].descriptor.width == 8


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()
