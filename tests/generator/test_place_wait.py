"""A job that finds every backend full waits here for a place, in turn, for a bounded time.

Refusing at once made callers ask again and again (each refusal a whole call to check and
answer) and left a freed place empty until the next ask; waiting takes it at once. After
``place_wait_seconds`` the job is still refused BACKENDS_FULL, so its caller may go elsewhere.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc

from generator_service import backends
from generator_service.backends import BackendPool
from generator_service.comfy.client import ComfyClient
from generator_service.providers.base import BackendKind
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.generator.support import generator_refusals, run, template_request


async def test_jobs_beyond_the_limit_wait_for_a_place(generator_factory, simulator):
    simulator.faults.node_delay_s["SaveImage"] = 0.2
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, place_wait_seconds=30
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    refused_before = generator_refusals()
    try:
        first = asyncio.ensure_future(run(stub, template_request("solid_image", width=40, height=40)))
        await asyncio.sleep(0.05)  # the first holds the only place
        later = [
            asyncio.ensure_future(run(stub, template_request("solid_image", width=41 + i, height=40)))
            for i in range(3)
        ]
        results = [await first, *await asyncio.gather(*later)]
    finally:
        await channel.close()
    assert generator_refusals() == refused_before  # nobody was refused: each waited for the place
    for result in results:
        assert result.error is None, result.error
        assert result.completed is not None
    assert simulator.state()["prompts_run"] == 4


async def test_a_job_is_refused_once_place_wait_has_passed(generator_factory, simulator):
    simulator.faults.hang_nodes = ["EmptyImage"]
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, place_wait_seconds=0.3
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        busy = stub.Generate(template_request("solid_image"), timeout=30)
        await busy.read()  # accepted: the only place is taken, and kept
        refused = await run(stub, template_request("solid_image", width=32, height=32))
        busy.cancel()
    finally:
        await channel.close()
    assert refused.error is not None
    assert refused.error.reason == "BACKENDS_FULL"


def _waiting(request: generator_pb2.GenerateRequest, seconds: float) -> generator_pb2.GenerateRequest:
    request.place_wait.FromNanoseconds(int(seconds * 1e9))
    return request


async def test_a_request_waits_as_long_as_its_place_wait_asks(generator_factory, simulator):
    """The caller knows how long it will wait (the gateway: its start wait); the generator waits
    that long rather than refusing after its own default and making the caller ask again."""
    simulator.faults.node_delay_s["SaveImage"] = 0.8
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, place_wait_seconds=0.1
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    refused_before = generator_refusals()
    try:
        first = asyncio.ensure_future(run(stub, template_request("solid_image", width=40, height=40)))
        await asyncio.sleep(0.1)  # the first holds the only place for 0.8 s
        later = await run(stub, _waiting(template_request("solid_image", width=41, height=40), 5.0))
        earlier = await first
    finally:
        await channel.close()
    assert earlier.error is None, earlier.error
    assert later.error is None, later.error
    assert later.completed is not None
    assert generator_refusals() == refused_before


async def test_a_requests_place_wait_is_capped(generator_factory, simulator):
    simulator.faults.hang_nodes = ["EmptyImage"]
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, max_place_wait_seconds=0.3
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        busy = stub.Generate(template_request("solid_image"), timeout=30)
        await busy.read()  # accepted: the only place is taken, and kept
        started = time.monotonic()
        refused = await run(stub, _waiting(template_request("solid_image", width=32, height=32), 3600))
        waited = time.monotonic() - started
        busy.cancel()
    finally:
        await channel.close()
    assert refused.error is not None
    assert refused.error.reason == "BACKENDS_FULL"
    assert waited < 3.0  # refused at the cap, not after the hour asked


async def test_a_negative_place_wait_is_refused_with_its_field(generator_stub):
    request = template_request("solid_image")
    request.place_wait.seconds = -1
    result = await run(generator_stub, request)
    assert result.error is not None
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in result.error.violations] == ["place_wait"]


async def test_a_place_freed_by_another_callers_prompt_is_taken_at_its_push(
    generator_factory, simulator, monkeypatch
):
    """No release here frees it: ComfyUI's status push does, and it wakes the waiter (the timed
    recheck is put out of reach, so only the push can)."""
    monkeypatch.setattr(backends, "PLACE_RECHECK", 600.0)
    simulator.faults.hang_nodes = ["EmptyImage"]
    server = await generator_factory(
        comfyui_urls=simulator.url, max_queue_per_backend=1, max_place_wait_seconds=60
    )
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    others = ComfyClient(simulator.url)
    try:
        graph = {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1},
            },
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "other"}},
        }
        other = str(uuid.uuid4())
        await others.submit(graph, "someone-else", other)
        await asyncio.sleep(0.3)  # its status push has reached the generator: the place is taken
        call = stub.Generate(_waiting(template_request("solid_image"), 30), timeout=60)
        waiting = asyncio.ensure_future(call.read())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the other caller's prompt holds the only place
        simulator.faults.hang_nodes = []
        await others.interrupt(other)
        first = await asyncio.wait_for(waiting, 5)  # its place wait would end only after 30 s
        assert isinstance(first, generator_pb2.GenerateEvent)
        assert first.HasField("accepted")
        call.cancel()
    finally:
        await others.close()
        await channel.close()


class _LaggingBackend:
    """A full ComfyUI backend whose queue count gives a released place back only later.

    ComfyUI's ``queue_remaining`` still counts a finished prompt until its next status push,
    so just after a release the backend can still look full.
    """

    kind = BackendKind.COMFYUI
    up = True
    ready = True
    name = "lagging"
    last_error = ""

    def __init__(self) -> None:
        self.active = 1
        self.full = True
        self.looks = 0

    @property
    def load(self) -> int:
        self.looks += 1
        return 1 if self.full else self.active


async def test_waiters_woken_for_a_place_not_yet_free_do_not_wake_each_other_in_a_loop():
    backend = _LaggingBackend()
    pool = BackendPool([backend], max_queue=1)  # type: ignore[list-item]
    waiters = [asyncio.ensure_future(pool.acquire_waiting(BackendKind.COMFYUI, wait=5.0)) for _ in range(3)]
    await asyncio.sleep(0.01)
    looks_before = backend.looks
    pool.release(backend)  # type: ignore[arg-type]  # a job ended; the status push is still to come
    await asyncio.sleep(0.1)
    looks_while_lagging = backend.looks - looks_before
    backend.full = False  # the push came: the place is free
    first = await asyncio.wait_for(asyncio.shield(asyncio.wait(waiters, return_when="FIRST_COMPLETED")), 2)
    done = first[0]
    for waiter in waiters:
        if waiter not in done:
            waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    # Woken once by the release, the first waiter looked, found the place not yet free and
    # waited again; it did not wake the others to look in turn, over and over.
    assert looks_while_lagging <= 12, looks_while_lagging
    assert len([w for w in waiters if not w.cancelled() and w.exception() is None]) == 1
