"""A backend takes jobs once its event socket is connected, and that socket is back at once.

The race this guards: a restarted ComfyUI answered HTTP, so its backend was reported up and got
a job, while the event socket still sat in a reconnect backoff of over a second; the job gave up
on the socket first and failed with a stale "connect call failed".
"""

from __future__ import annotations

import asyncio
import time

from comfyui_sim import SimulatorConfig, start_simulator
from generator_service.backends import Backend, BackendPool
from generator_service.comfy.events import EventStream
from generator_service.journal import FileJournal
from mediagen.ports import free_port
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.generator.support import run, template_request, wait_until


async def test_socket_reconnects_at_once_when_the_backend_is_seen_again(tmp_path):
    port = free_port()
    stream = EventStream(f"http://127.0.0.1:{port}", "test")
    stream.start()
    try:
        await asyncio.sleep(2.0)  # refused over and over: the pause is now 1.6 s or more
        assert not stream.connected
        assert "Connect call failed" in stream.last_error or "refused" in stream.last_error.lower()
        sim = await start_simulator(SimulatorConfig(port=port, data_dir=tmp_path))
        try:
            stream.reconnect_soon()
            took = await wait_until(lambda: stream.connected, within=1.0, every=0.005)
            assert took < 0.3, f"reconnected after {took:.2f}s, not at once"
            assert stream.last_error == ""
        finally:
            await sim.stop()
    finally:
        await stream.stop()


async def test_an_up_backend_without_its_socket_is_not_ready_nor_chosen_first(tmp_path):
    sims = [await start_simulator(SimulatorConfig(port=0, data_dir=tmp_path / str(i))) for i in range(2)]
    journal = FileJournal(tmp_path / "state")
    backends = [
        Backend(f"b{i}", sim.url, client_id_prefix="test", http_timeout=5.0, journal=journal, cancel_wait=1.0)
        for i, sim in enumerate(sims)
    ]
    pool = BackendPool(backends, max_queue=4)
    try:
        await pool.start()
        await wait_until(lambda: all(b.ready for b in backends))
        await backends[0].events.stop()
        assert backends[0].up
        assert not backends[0].ready
        status = await backends[0].status()
        assert not status.up
        assert "event socket not connected" in status.last_error
        assert [pool.acquire().name for _ in range(3)] == ["b1"] * 3  # b0 has the shorter queue
        await backends[1].events.stop()
        assert pool.acquire().name == "b0"  # none ready: placed anyway, the job waits a little
    finally:
        await pool.close()
        for sim in sims:
            await sim.stop()


async def test_a_job_placed_while_the_socket_reconnects_waits_for_it(generator_factory, simulator):
    server = await generator_factory(comfyui_urls=simulator.url, backend_lost_seconds=3.0)
    backend = server.spec.servicers[0][2]._pool.backends[0]
    await wait_until(lambda: backend.ready)
    await backend.events.stop()
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        started = time.monotonic()
        call = asyncio.ensure_future(run(stub, template_request("solid_image", width=8, height=8)))
        await asyncio.sleep(0.5)
        assert not call.done()
        backend.events.start()
        result = await call
        assert result.error is None, result.error
        assert result.completed is not None
        assert result.completed.media_count == 1
        assert 0.5 <= time.monotonic() - started < 3.0
        status = await stub.GetBackendStatus(generator_pb2.GetBackendStatusRequest())
        assert status.backends[0].up
    finally:
        await channel.close()
