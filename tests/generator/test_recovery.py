"""A generator that dies mid-job leaves nothing running on ComfyUI once it is back.

The journal names every prompt posted and not yet cleaned up; a generator starting on the same
state directory stops those prompts with the targeted sequence and deletes their history. A
replica with another state directory never touches them, nor they its jobs.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from generator_service.comfy.client import ComfyClient
from generator_service.journal import FileJournal
from generator_service.recovery import recover
from mediagen.ports import free_port
from mediagen.scaffold.channels import open_channel
from mediagen.stack import parts
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving
from mediagen.v1 import generator_pb2_grpc
from tests.generator.support import events_until, run, running_node, template_request, wait_until


async def _generator_process(tmp_path, name: str, comfyui_url: str, state_dir) -> tuple[ManagedProcess, str]:
    """``python -m generator_service`` on a journal directory; returns it and its address."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {
        **parts.base_env(),
        **parts.generator_env(
            port,
            comfyui_url,
            "",
            {"MEDIAGEN_GENERATOR_STATE_DIR": str(state_dir), "MEDIAGEN_GENERATOR_HOST": "127.0.0.1"},
        ),
    }
    process = ManagedProcess(name, parts.service_argv("generator_service"), env, tmp_path / f"{name}.log")
    await asyncio.to_thread(process.wait_until, lambda: grpc_serving(address), 30, "SERVING")
    return process, address


def _gone(state: dict, prompt_id: str) -> bool:
    return prompt_id not in state["running"] and prompt_id not in state["pending"]


async def test_a_restarted_generator_stops_what_its_killed_predecessor_left(
    tmp_path, simulator, generator_factory
):
    simulator.faults.hang_nodes = ["ImageInvert"]  # runs until someone interrupts it
    state_dir = tmp_path / "state"
    first, address = await _generator_process(tmp_path, "first", simulator.url, state_dir)
    other = await generator_factory(comfyui_urls=simulator.url)  # a replica, state dir of its own
    channels = [open_channel(address), open_channel(other.address)]
    stubs = [generator_pb2_grpc.GeneratorServiceStub(c) for c in channels]
    second = None
    try:
        doomed = stubs[0].Generate(template_request("inverted_image", width=8, height=8), timeout=60)
        seen = await events_until(doomed, running_node("ImageInvert"))
        prompt_id = seen[0].accepted.prompt_id
        bystander = asyncio.ensure_future(run(stubs[1], template_request("solid_image", width=8, height=8)))
        await wait_until(lambda: len(simulator.state()["pending"]) == 1)

        first.kill()
        assert [p.name for p in state_dir.iterdir()] == [f"{prompt_id}.json"]
        await asyncio.sleep(0.5)
        assert simulator.state()["running"] == [prompt_id], "nobody else stops it"

        restarted_at = time.monotonic()
        second, _ = await _generator_process(tmp_path, "second", simulator.url, state_dir)
        await wait_until(lambda: _gone(simulator.state(), prompt_id), within=5)
        async with httpx.AsyncClient(base_url=simulator.url) as http:
            await wait_until(lambda: not simulator.executor.queue.history.get(prompt_id), within=5)
            assert (await http.get(f"/history/{prompt_id}")).json() == {}
        assert time.monotonic() - restarted_at < 10
        await wait_until(lambda: not any(state_dir.iterdir()), within=5)

        result = await bystander
        assert result.error is None, result.error
        assert result.completed is not None
        assert result.completed.media_count == 1
        assert simulator.state()["interrupts"] == 1
    finally:
        for channel in channels:
            await channel.close()
        first.kill()
        if second is not None:
            await asyncio.to_thread(second.stop, 5.0)


async def test_journal_keeps_live_jobs_and_other_live_processes_out_of_recovery(tmp_path):
    journal = FileJournal(tmp_path)
    await journal.record("http://a", "p1")
    await journal.record("http://b", "p2")
    assert journal.orphans("http://a") == []  # its job is running
    journal.settle("p1")
    assert [e.prompt_id for e in journal.orphans("http://a")] == ["p1"]
    await journal.remove("p1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p2.json"]

    held = (tmp_path / "p2.json").read_text().replace(f'"pid": {os.getpid()}', f'"pid": {os.getppid()}')
    (tmp_path / "p2.json").write_text(held)
    (tmp_path / ".p3.tmp").write_text("{")  # a write cut short: never posted
    later = FileJournal(tmp_path)
    assert later.orphans("http://b") == [], "another live generator's entry"
    assert not (tmp_path / ".p3.tmp").exists()


async def test_journal_drops_what_was_left_on_backends_no_longer_configured(tmp_path):
    earlier = FileJournal(tmp_path)
    await earlier.record("http://old", "p1")
    await earlier.record("http://kept", "p2")
    journal = FileJournal(tmp_path)
    journal.use_backends({"http://kept"})
    assert [e.prompt_id for e in journal.orphans("http://kept")] == ["p2"]
    assert [p.name for p in tmp_path.iterdir()] == ["p2.json"]


async def test_a_fresh_managed_process_means_its_orphans_are_just_dropped(tmp_path):
    earlier = FileJournal(tmp_path)
    await earlier.record("http://127.0.0.1:1", "gone-with-the-process")
    journal = FileJournal(tmp_path)
    client = ComfyClient("http://127.0.0.1:1", timeout=0.5)  # nothing listens: no call may be needed
    try:
        assert await recover(client, journal, "http://127.0.0.1:1", fresh_process=True, cancel_wait=1.0) == 1
        assert await recover(client, journal, "http://127.0.0.1:1", fresh_process=False, cancel_wait=1.0) == 0
    finally:
        await client.close()
    assert not any(tmp_path.iterdir())


async def test_an_unconfirmed_clean_up_stays_journalled_for_later(tmp_path):
    journal = FileJournal(tmp_path)
    await journal.record("http://127.0.0.1:1", "p")
    journal.settle("p")
    client = ComfyClient("http://127.0.0.1:1", timeout=0.5)
    try:
        assert await recover(client, journal, "http://127.0.0.1:1", fresh_process=False, cancel_wait=1.0) == 0
    finally:
        await client.close()
    assert [e.prompt_id for e in journal.orphans("http://127.0.0.1:1")] == ["p"]
