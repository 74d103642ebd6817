"""The shared server scaffold: health, reflection, auth, errors, metrics, drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mediagen.scaffold import RunningServer, ServerSettings, start_server
from mediagen.scaffold.channels import open_channel
from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.scaffold.probe_service import SERVICE, ProbeServicer, Switch, probe_spec

TOKEN = "test-token-0123456789"


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await start_server(probe_spec(), ServerSettings(auth_token=TOKEN, metrics_port=0))
    yield running
    await running.stop(0)


async def health_of(address: str, service: str = "") -> int:
    async with aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return int(reply.status)


async def test_reflection_lists_the_service_and_health_without_a_token(server: RunningServer) -> None:
    async with aio.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = [r async for r in stub.ServerReflectionInfo(iter([request]))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names
    assert await health_of(server.address) == health_pb2.HealthCheckResponse.SERVING
    assert await health_of(server.address, SERVICE) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_calls_without_the_right_token_are_unauthenticated(
    server: RunningServer, token: str | None
) -> None:
    async with open_channel(server.address, token=token) as channel:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        with pytest.raises(aio.AioRpcError) as unary:
            await stub.ListWorkflows(generator_pb2.ListWorkflowsRequest())
        with pytest.raises(aio.AioRpcError) as streaming:
            async for _ in stub.Generate(generator_pb2.GenerateRequest()):
                pass
    assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert streaming.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_service_error_reaches_the_caller_with_the_offending_field(server: RunningServer) -> None:
    async with open_channel(server.address, token=TOKEN) as channel:
        with pytest.raises(aio.AioRpcError) as caught:
            await generator_pb2_grpc.GeneratorServiceStub(channel).ListWorkflows(
                generator_pb2.ListWorkflowsRequest()
            )
    details = status_details(status_of_rpc_error(caught.value))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.violations] == ["workflow.template"]


async def test_a_servicer_bug_becomes_internal_not_a_hang(server: RunningServer) -> None:
    async with open_channel(server.address, token=TOKEN) as channel:
        with pytest.raises(aio.AioRpcError) as caught:
            await generator_pb2_grpc.GeneratorServiceStub(channel).GetBackendStatus(
                generator_pb2.GetBackendStatusRequest(), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "RuntimeError" in (caught.value.details() or "")


async def test_metrics_count_calls_by_method_and_code(server: RunningServer) -> None:
    async with open_channel(server.address, token=TOKEN) as channel:
        with pytest.raises(aio.AioRpcError):
            await generator_pb2_grpc.GeneratorServiceStub(channel).ListWorkflows(
                generator_pb2.ListWorkflowsRequest()
            )
    assert server.metrics is not None
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{server.metrics.port}/metrics")).text
    labels = 'grpc_method="ListWorkflows",grpc_service="mediagen.v1.GeneratorService",grpc_type="unary"'
    # The grpc-prometheus names and labels, which ready-made gRPC dashboards chart.
    assert f'grpc_server_handled_total{{grpc_code="INVALID_ARGUMENT",{labels}}} ' in text
    assert f"grpc_server_started_total{{{labels}}} " in text
    assert f"grpc_server_handling_seconds_count{{{labels}}} " in text


async def test_health_follows_a_dependency_down_and_back() -> None:
    switch = Switch()
    running = await start_server(probe_spec(switch=switch), ServerSettings())
    try:
        assert await health_of(running.address) == health_pb2.HealthCheckResponse.SERVING
        switch.up = False
        await asyncio.sleep(0.4)
        assert await health_of(running.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert "switch" in running.health.failures
        switch.up = True
        await asyncio.sleep(0.4)
        assert await health_of(running.address) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(0)


async def test_shutdown_drains_an_in_flight_stream_and_refuses_new_calls() -> None:
    running = await start_server(probe_spec(ProbeServicer(events=4, interval=0.15)), ServerSettings())
    async with open_channel(running.address) as channel:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        call = stub.Generate(generator_pb2.GenerateRequest())
        first = await call.read()
        assert isinstance(first, generator_pb2.GenerateEvent)
        stopping = asyncio.create_task(running.stop(grace=5))
        rest: list[generator_pb2.GenerateEvent] = []  # read() only: grpc.aio forbids mixing it with iteration
        while (event := await call.read()) is not aio.EOF:
            assert isinstance(event, generator_pb2.GenerateEvent)
            rest.append(event)
        await stopping
        assert [e.progress.value for e in [first, *rest]] == [1, 2, 3, 4]
        with pytest.raises(aio.AioRpcError) as refused:
            await stub.ListWorkflows(generator_pb2.ListWorkflowsRequest(), timeout=2)
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_a_second_server_cannot_take_a_port_in_use(server: RunningServer) -> None:
    with pytest.raises(OSError, match="cannot listen"):
        await start_server(probe_spec(), ServerSettings(port=server.port))
