"""Bad workflows and failing nodes reach the caller as precise statuses, never INTERNAL or a hang."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest

from tests.generator.support import events_until, raw_request, run, running_node, template_request, wait_until


async def test_unknown_template_is_invalid_argument_before_anything_runs(generator_stub, simulator):
    result = await run(generator_stub, template_request("nope"))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in result.error.violations] == ["workflow.template"]
    assert not result.events
    assert simulator.state()["prompts_run"] == 0


async def test_out_of_bounds_parameter_names_the_parameter(generator_stub):
    result = await run(generator_stub, template_request("solid_image", width=0))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert result.error.violations[0].field == "workflow.parameters[width]"


async def test_graph_errors_are_found_before_submission_one_violation_per_node_input(
    generator_stub, simulator
):
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": "abc", "height": 8, "batch_size": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    result = await run(generator_stub, raw_request(graph))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT, result.error
    fields = {v.field for v in result.error.violations}
    assert {"graph.1.inputs.width", "graph.1.inputs.color"} <= fields
    assert "Traceback" not in result.error.message
    assert not result.events
    assert simulator.state()["prompts_run"] == 0


async def test_unknown_node_class_is_invalid_argument_on_the_graph(generator_stub):
    graph = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
    result = await run(generator_stub, raw_request(graph))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert result.error.violations[0].field == "graph.1.class_type"
    assert "NoSuchNode" in result.error.violations[0].description


async def test_a_200_with_node_errors_is_refused_strictly(generator_stub, simulator):
    """ComfyUI would silently run the valid output and drop the invalid one; we refuse both."""
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "good"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }
    result = await run(generator_stub, raw_request(graph))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT, result.error
    assert "graph.3.inputs.filename_prefix" in {v.field for v in result.error.violations}
    await wait_until(lambda: not simulator.state()["running"] and not simulator.state()["pending"])


async def test_node_failure_reaches_the_caller_as_aborted_with_node_id_and_type(generator_stub, simulator):
    simulator.faults.fail_nodes = {"ImageInvert": "injected: cannot invert"}
    result = await run(generator_stub, template_request("inverted_image", width=8, height=8))
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.ABORTED, result.error
    assert result.error.reason == "EXECUTION_ERROR"
    meta = result.error.metadata
    assert meta["node_id"] == "2"
    assert meta["node_type"] == "ImageInvert"
    assert "cannot invert" in meta["exception_message"]
    assert meta["prompt_id"] == result.accepted.prompt_id
    assert "Traceback" not in result.error.message


async def test_interrupt_by_someone_else_is_aborted_with_reason(generator_stub, simulator):
    simulator.faults.hang_nodes = ["ImageInvert"]
    call = generator_stub.Generate(template_request("inverted_image", width=8, height=8), timeout=30)
    await events_until(call, running_node("ImageInvert"))
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        await http.post("/interrupt", content=json.dumps({}))
    with pytest.raises(grpc.RpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert "interrupted" in (caught.value.details() or "")
