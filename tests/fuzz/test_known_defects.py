"""Defects the fuzzing found that are being fixed in code owned elsewhere, one case each.

Strict ``xfail``: once the fix lands the test passes, the run fails as XPASS, and the mark is to
be removed here together with the defect's entry in :mod:`bench.fuzz.known`.
"""

from __future__ import annotations

import json

import grpc
import pytest

from bench.fuzz.checks import MAX_DETAILS, MAX_MESSAGE
from mediagen.scaffold.errors import status_of_rpc_error
from mediagen.v1 import generator_pb2, generator_pb2_grpc


async def answer(stub: generator_pb2_grpc.GeneratorServiceAsyncStub, workflow: generator_pb2.WorkflowSpec):
    request = generator_pb2.GenerateRequest(request_id="known-defect", workflow=workflow)
    try:
        async for _ in stub.Generate(request, timeout=30):
            pass
    except grpc.RpcError as err:
        return status_of_rpc_error(err)
    return None


def raw(text: str) -> generator_pb2.WorkflowSpec:
    return generator_pb2.WorkflowSpec(raw_graph_json=text)


@pytest.mark.xfail(strict=True, reason="NaN floats end as INTERNAL (known, fixed in the validation work)")
async def test_nan_in_a_raw_graph_is_invalid_argument(generator_stub) -> None:
    graph = (
        '{"1": {"class_type": "EmptyImage",'
        ' "inputs": {"width": NaN, "height": 8, "batch_size": 1, "color": 0}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}'
    )
    status = await answer(generator_stub, raw(graph))
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.mark.xfail(strict=True, reason="NaN floats end as INTERNAL (known, fixed in the validation work)")
async def test_a_nan_parameter_is_invalid_argument(generator_stub) -> None:
    workflow = generator_pb2.WorkflowSpec(template="animated_webp")
    workflow.parameters["fps"].float_value = float("nan")
    status = await answer(generator_stub, workflow)
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.mark.xfail(strict=True, reason="a 10,000-level raw graph raises RecursionError (known)")
async def test_a_deeply_nested_raw_graph_is_invalid_argument(generator_stub) -> None:
    depth = 10_000
    graph = '{"1": {"class_type": "EmptyImage", "inputs": {"width": ' + "[" * depth + "]" * depth + "}}}"
    status = await answer(generator_stub, raw(graph))
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.mark.xfail(strict=True, reason="a caller's template name is echoed whole (known)")
async def test_a_megabyte_template_name_is_quoted_only_in_part(generator_stub) -> None:
    status = await answer(generator_stub, generator_pb2.WorkflowSpec(template="x" * 1_000_000))
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert len(status.message.encode()) <= MAX_MESSAGE
    assert sum(d.ByteSize() for d in status.details) <= MAX_DETAILS


def test_the_json_of_the_nan_case_is_what_a_caller_can_send() -> None:
    """The NaN case above is reachable: Python's json (the generator's parser) accepts it."""
    assert json.loads('{"a": NaN}')["a"] != json.loads('{"a": NaN}')["a"]
