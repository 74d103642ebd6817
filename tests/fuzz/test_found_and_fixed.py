"""Defects the fuzzing found and that were fixed, each pinned by its smallest case (the NaN,
nesting and echo cases were fixed in the generator's validation)."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import duration_pb2

from bench.fuzz.cases import ANCHOR_RUNS, Case
from bench.fuzz.checks import MAX_DETAILS, MAX_MESSAGE, Session
from generator_service.comfy.outputs import parse_history
from mediagen.scaffold.errors import status_of_rpc_error
from mediagen.v1 import gateway_pb2, generator_pb2, generator_pb2_grpc, storage_pb2


async def status_of(session: Session, case: Case) -> grpc.StatusCode:
    answer = await session.target.call(case)
    assert not answer.output_statuses, answer.output_statuses
    return answer.status.code


@pytest.mark.parametrize("media_id", [f"{ANCHOR_RUNS[0]}.².0", f"{ANCHOR_RUNS[0]}.0.²", "x.٣.0"])
@pytest.mark.parametrize("service", ["storage", "gateway"])
async def test_a_media_id_with_non_ascii_digits_is_invalid_argument(
    fuzz_session: Session, media_id: str, service: str
) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises: it used to end as INTERNAL."""
    case = Case(service, "GetMedia", "read", storage_pb2.GetMediaRequest(media_id=media_id))
    assert await status_of(fuzz_session, case) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("seconds", [2**63 - 1, 10**14, -(2**63)])
async def test_a_presign_ttl_beyond_timedelta_is_invalid_argument(
    fuzz_session: Session, seconds: int
) -> None:
    request = storage_pb2.PresignMediaRequest(
        media_id=f"{ANCHOR_RUNS[0]}.0.0", ttl=duration_pb2.Duration(seconds=seconds)
    )
    case = Case("storage", "PresignMedia", "presign", request)
    assert await status_of(fuzz_session, case) == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_output_timeout_beyond_timedelta_means_no_limit(fuzz_session: Session) -> None:
    """The gateway read it with ToTimedelta() and failed the output with INTERNAL OverflowError."""
    workflow = generator_pb2.WorkflowSpec(template="solid_image")
    workflow.parameters["width"].int_value = 8
    output = gateway_pb2.OutputSpec(workflow=workflow, timeout=duration_pb2.Duration(seconds=2**63 - 1))
    case = Case("gateway", "Generate", "timeout", gateway_pb2.GatewayGenerateRequest(outputs=[output]))
    answer = await fuzz_session.target.call(case)
    assert answer.status.code == grpc.StatusCode.OK
    assert answer.output_statuses == []
    assert answer.media_stored == 1


def test_history_node_ids_with_non_ascii_digits_are_ordered() -> None:
    entry = {
        "status": {"status_str": "success", "messages": []},
        "outputs": {"²": {"images": [{"filename": "a.png", "type": "output"}]}, "3": {"images": []}},
    }
    assert [f.node_id for f in parse_history(entry, False).files] == ["²"]


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


async def test_nan_in_a_raw_graph_is_invalid_argument(generator_stub) -> None:
    graph = (
        '{"1": {"class_type": "EmptyImage",'
        ' "inputs": {"width": NaN, "height": 8, "batch_size": 1, "color": 0}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}'
    )
    status = await answer(generator_stub, raw(graph))
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_a_nan_parameter_is_invalid_argument(generator_stub) -> None:
    workflow = generator_pb2.WorkflowSpec(template="animated_webp")
    workflow.parameters["fps"].float_value = float("nan")
    status = await answer(generator_stub, workflow)
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_a_deeply_nested_raw_graph_is_invalid_argument(generator_stub) -> None:
    depth = 10_000
    graph = '{"1": {"class_type": "EmptyImage", "inputs": {"width": ' + "[" * depth + "]" * depth + "}}}"
    status = await answer(generator_stub, raw(graph))
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_a_megabyte_template_name_is_quoted_only_in_part(generator_stub) -> None:
    status = await answer(generator_stub, generator_pb2.WorkflowSpec(template="x" * 1_000_000))
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert len(status.message.encode()) <= MAX_MESSAGE
    assert sum(d.ByteSize() for d in status.details) <= MAX_DETAILS


def test_the_json_of_the_nan_case_is_what_a_caller_can_send() -> None:
    """The NaN case above is reachable: Python's json (the generator's parser) accepts it."""
    assert json.loads('{"a": NaN}')["a"] != json.loads('{"a": NaN}')["a"]


async def test_a_raw_graph_integer_of_5000_digits_is_invalid_argument(generator_stub) -> None:
    graph = '{"1": {"class_type": "EmptyImage", "inputs": {"width": ' + "9" * 5000 + "}}}"
    status = await answer(generator_stub, raw(graph))
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_seventy_bad_outputs_get_a_status_that_fits_in_trailers(fuzz_session: Session) -> None:
    output = gateway_pb2.OutputSpec(workflow=generator_pb2.WorkflowSpec(template=""))
    case = Case("gateway", "Generate", "many", gateway_pb2.GatewayGenerateRequest(outputs=[output] * 70))
    answer_ = await fuzz_session.target.call(case)
    assert answer_.status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert answer_.status.details_bytes <= MAX_DETAILS


async def test_an_oversize_upload_gets_storages_status_not_a_client_internal(fuzz_session: Session) -> None:
    """grpc/grpc#36066: a send failing after storage ended the call was reported as INTERNAL."""
    size = 2 * 1024 * 1024
    data = b"\x89PNG\r\n\x1a\n" + bytes(size - 8)
    parts = (
        storage_pb2.PutMediaRequest(header=storage_pb2.MediaHeader(run_id=ANCHOR_RUNS[1], output_index=9)),
        *(storage_pb2.PutMediaRequest(chunk=data[i : i + 65536]) for i in range(0, size, 65536)),
        storage_pb2.PutMediaRequest(trailer=storage_pb2.MediaTrailer(size_bytes=size)),
    )
    for _ in range(5):
        assert await status_of(fuzz_session, Case("storage", "PutMedia", "oversize", parts)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )


async def test_a_generator_timeout_beyond_timedelta_is_the_longest_allowed(fuzz_session: Session) -> None:
    """The generator read it with ToTimedelta() and answered INTERNAL OverflowError."""
    workflow = generator_pb2.WorkflowSpec(template="solid_image")
    workflow.parameters["width"].int_value = 8
    request = generator_pb2.GenerateRequest(
        request_id="fuzz", workflow=workflow, timeout=duration_pb2.Duration(seconds=2**63 - 1)
    )
    case = Case("generator", "Generate", "timeout", request)
    assert await status_of(fuzz_session, case) == grpc.StatusCode.OK


@pytest.mark.parametrize("media_type", [-1, 99])
async def test_a_media_type_outside_the_enum_is_invalid_argument(
    fuzz_session: Session, media_type: int
) -> None:
    """With a format hint and bytes that say nothing, it reached ``MediaType.Name()``: INTERNAL."""
    header = storage_pb2.MediaHeader(run_id=ANCHOR_RUNS[0], output_index=7, format_hint="bin")
    header.media_type = media_type  # type: ignore[assignment]
    parts = (
        storage_pb2.PutMediaRequest(header=header),
        storage_pb2.PutMediaRequest(chunk=b"\x00" * 16),
    )
    case = Case("storage", "PutMedia", "header", parts)
    assert await status_of(fuzz_session, case) == grpc.StatusCode.INVALID_ARGUMENT
