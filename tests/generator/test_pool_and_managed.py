"""Backends: listing, status, health, shortest-queue routing, and a supervised ComfyUI process."""

from __future__ import annotations

import sys
import time

import grpc
import httpx
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from comfyui_sim import SimulatorConfig, start_simulator
from mediagen.ports import free_port
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.generator.support import events_until, run, running_node, template_request, wait_until


async def test_list_workflows_describes_parameters(generator_stub):
    answer = await generator_stub.ListWorkflows(generator_pb2.ListWorkflowsRequest())
    by_name = {t.name: t for t in answer.templates}
    params = {p.name: p for p in by_name["sd15_txt2img"].parameters}
    assert params["prompt"].required
    assert params["prompt"].type == generator_pb2.PARAMETER_TYPE_STRING
    assert params["steps"].default_value.int_value == 20
    assert params["steps"].minimum == 1
    assert "euler" in params["sampler"].choices
    assert not params["seed"].HasField("default_value")
    assert {p.name: p.type for p in by_name["sd15_img2img"].parameters}[
        "image"
    ] == generator_pb2.PARAMETER_TYPE_IMAGE
    assert "Simulator only" in by_name["large_image"].description


async def test_jobs_go_to_the_backend_with_the_shortest_queue(generator_factory, tmp_path):
    sims = [await start_simulator(SimulatorConfig(port=0, data_dir=tmp_path / str(i))) for i in range(2)]
    for sim in sims:
        sim.faults.hang_nodes = ["ImageInvert"]
    server = await generator_factory(comfyui_urls=",".join(s.url for s in sims), max_queue_per_backend=1)
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        calls = [
            stub.Generate(template_request("inverted_image", width=8, height=8, color=i), timeout=30)
            for i in range(2)
        ]
        backends = [
            (await events_until(c, lambda e: e.HasField("accepted")))[0].accepted.backend for c in calls
        ]
        assert sorted(backends) == ["comfyui-0", "comfyui-1"]
        status = await stub.GetBackendStatus(generator_pb2.GetBackendStatusRequest())
        assert [(b.up, b.active_jobs, b.queue_running) for b in status.backends] == [(True, 1, 1)] * 2
        full = await run(stub, template_request("solid_image", width=8, height=8))
        assert full.error is not None
        assert full.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        for call in calls:
            call.cancel()
    finally:
        await channel.close()
        for sim in sims:
            await sim.stop()


async def test_no_backend_up_means_not_serving_and_unavailable(generator_factory):
    server = await generator_factory(comfyui_urls=f"http://127.0.0.1:{free_port()}")
    channel = open_channel(server.address)
    try:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
        result = await run(generator_pb2_grpc.GeneratorServiceStub(channel), template_request("solid_image"))
        assert result.error is not None
        assert result.error.code == grpc.StatusCode.UNAVAILABLE
        assert result.error.reason == "NO_BACKEND"
    finally:
        await channel.close()


async def _backend(stub) -> generator_pb2.BackendStatus:
    return (await stub.GetBackendStatus(generator_pb2.GetBackendStatusRequest())).backends[0]


async def test_managed_comfyui_crash_fails_the_job_fast_and_is_restarted(generator_factory, tmp_path):
    command = f"{sys.executable} -m comfyui_sim --host {{host}} --port {{port}} --data-dir {{data_dir}}"
    state_dir = tmp_path / "state"
    server = await generator_factory(
        comfyui_command=command, comfyui_data_dir=tmp_path / "managed", state_dir=state_dir
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        await wait_until(lambda: server.health.serving, within=15)
        status = await _backend(stub)
        assert status.managed
        assert status.up
        assert status.restarts == 0
        assert (await run(stub, template_request("solid_image", width=8, height=8))).error is None
        async with httpx.AsyncClient(base_url=status.url) as http:
            await http.post("/sim/faults", json={"crash_on_node": ["ImageInvert"], "step_delay_s": 0.2})
        started = time.monotonic()
        crashed = await run(stub, template_request("inverted_image", width=8, height=8))
        assert crashed.error is not None
        assert crashed.error.code == grpc.StatusCode.UNAVAILABLE, crashed.error
        assert time.monotonic() - started < 3.0
        deadline = time.monotonic() + 15
        while not ((status := await _backend(stub)).up and status.restarts == 1):
            assert time.monotonic() < deadline, status
            await wait_until(lambda: True)
        assert status.last_error == ""  # up means HTTP answers *and* the event socket is connected
        await wait_until(lambda: not any(state_dir.iterdir()))  # the crashed job's entry went with it
        again = await run(stub, template_request("inverted_image", width=8, height=8))
        assert again.error is None
        assert again.completed is not None
        assert again.completed.media_count == 1
        pid = _comfy_pid(status.url)
    finally:
        await channel.close()
        await server.stop(1.0)
    assert pid is not None
    assert not psutil.pid_exists(pid)


def _comfy_pid(url: str) -> int | None:
    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return conn.pid
    return None


async def test_running_node_progress_reports_node_type(generator_stub, simulator):
    simulator.faults.step_delay_s = 0.01
    call = generator_stub.Generate(template_request("sd15_txt2img", prompt="x", steps=5, width=64, height=64))
    seen = await events_until(call, running_node("KSampler"))
    steps = [
        e.progress for e in (seen + [e async for e in call]) if e.HasField("progress") and e.progress.max
    ]
    assert steps, "no step progress seen"
    assert {p.node_type for p in steps} == {"KSampler"}
    assert {p.max for p in steps} == {5}
    assert [p.value for p in steps] == sorted(p.value for p in steps)
    assert {p.nodes_total for p in steps} == {7}
