"""With the journal in NATS, a killed generator's prompts are freed by ANOTHER replica.

Real processes (``python -m generator_service``) on one ComfyUI simulator and one real
nats-server: the replica running a job is SIGKILLed, its lease lapses, and the surviving replica
adopts the prompt, stops it and deletes its history, without the dead one ever coming back.
The journal-level tests check the adoption rules on real NATS: one adopter per prompt, only for
backends it has, a dead replica's managed-backend entries dropped, live replicas left alone.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import nats

from generator_service.nats_journal import NatsJournal, prompt_key
from mediagen.ports import free_port
from mediagen.scaffold.channels import open_channel
from mediagen.stack import parts
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving
from mediagen.v1 import generator_pb2_grpc
from tests.generator.support import events_until, running_node, template_request, wait_until

LEASE = 1.5


async def _replica(
    tmp_path, name: str, comfyui_url: str, nats_url: str, prefix: str
) -> tuple[ManagedProcess, str]:
    port = free_port()
    address = f"127.0.0.1:{port}"
    overrides = {
        "MEDIAGEN_GENERATOR_NATS_URL": nats_url,
        "MEDIAGEN_GENERATOR_NATS_PREFIX": prefix,
        "MEDIAGEN_GENERATOR_LEASE_SECONDS": str(LEASE),
        "MEDIAGEN_GENERATOR_HOST": "127.0.0.1",
        # No state directory is given: a replica keeps nothing on disk.
        "MEDIAGEN_GENERATOR_STATE_DIR": str(tmp_path / f"{name}-unused"),
    }
    env = {**parts.base_env(), **parts.generator_env(port, comfyui_url, "", overrides)}
    process = ManagedProcess(name, parts.service_argv("generator_service"), env, tmp_path / f"{name}.log")
    await asyncio.to_thread(process.wait_until, lambda: grpc_serving(address), 30, "SERVING")
    return process, address


def _gone(state: dict, prompt_id: str) -> bool:
    return prompt_id not in state["running"] and prompt_id not in state["pending"]


async def _keys(nats_url: str, bucket: str) -> list[str]:
    client = await nats.connect(nats_url)
    try:
        kv = await client.jetstream().key_value(bucket)
        try:
            return list(await kv.keys())
        except nats.js.errors.NoKeysError:
            return []
    finally:
        await client.close()


async def test_another_replica_frees_comfyui_after_a_generator_is_killed_mid_job(
    tmp_path, simulator, nats_endpoint, nats_names
):
    simulator.faults.hang_nodes = ["ImageInvert"]  # runs until someone interrupts it
    prefix = nats_names.upper()
    first, first_address = await _replica(tmp_path, "first", simulator.url, nats_endpoint.url, prefix)
    second, _ = await _replica(tmp_path, "second", simulator.url, nats_endpoint.url, prefix)
    channel = open_channel(first_address)
    try:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        doomed = stub.Generate(template_request("inverted_image", width=8, height=8), timeout=60)
        seen = await events_until(doomed, running_node("ImageInvert"))
        prompt_id = seen[0].accepted.prompt_id
        assert await _keys(nats_endpoint.url, f"{prefix}_PROMPTS") == [prompt_key(simulator.url, prompt_id)]
        await asyncio.sleep(LEASE)
        assert simulator.state()["running"] == [prompt_id], "a live replica's job is left alone"

        first.kill()
        killed_at = time.monotonic()
        await wait_until(lambda: _gone(simulator.state(), prompt_id), within=LEASE + 10)
        freed_after = time.monotonic() - killed_at
        await wait_until(lambda: not simulator.executor.queue.history.get(prompt_id), within=5)
        assert simulator.state()["interrupts"] == 1
        for _ in range(50):
            if not await _keys(nats_endpoint.url, f"{prefix}_PROMPTS"):
                break
            await asyncio.sleep(0.1)
        assert await _keys(nats_endpoint.url, f"{prefix}_PROMPTS") == []
        assert "adopted prompt" in second.log_tail(50)
        print(f"ComfyUI freed by the other replica {freed_after:.2f}s after the kill (lease {LEASE}s)")
    finally:
        await channel.close()
        first.kill()
        await asyncio.to_thread(second.stop, 5.0)


async def _vanish(journal: NatsJournal) -> None:
    """As a killed process would: no more renewals, and no goodbye (its lease is left to lapse)."""
    for task in journal._tasks:
        task.cancel()
    assert journal._nc is not None
    await journal._nc.close()


async def test_adoption_takes_a_dead_replicas_prompts_once_and_only_where_it_can(nats_endpoint, nats_names):
    prefix = nats_names.upper()
    dead = NatsJournal(nats_endpoint.url, prefix, lease_seconds=1.0)
    adopters = [NatsJournal(nats_endpoint.url, prefix, lease_seconds=1.0) for _ in range(2)]
    bystander = NatsJournal(nats_endpoint.url, prefix, lease_seconds=1.0)
    for journal in (dead, *adopters, bystander):
        await journal.start()
    notified: list[str] = []
    for adopter in adopters:
        adopter.use_backends({"http://shared"})
        adopter.on_orphans = notified.append
    bystander.use_backends({"http://elsewhere"})
    try:
        await dead.record("http://shared", "p-shared")
        await dead.record("managed-0", "p-managed")
        await dead.record("http://nobody", "p-nobody")
        await bystander.record("http://shared", "p-live")
        await asyncio.sleep(2.0)
        assert all(a.orphans("http://shared") == [] for a in adopters), "a live lease: nothing adopted"

        await _vanish(dead)
        await wait_until(lambda: any(a.orphans("http://shared") for a in adopters), within=5)
        await asyncio.sleep(1.0)
        owners = [a for a in adopters if a.orphans("http://shared")]
        assert len(owners) == 1
        assert [e.prompt_id for e in owners[0].orphans("http://shared")] == ["p-shared"]
        assert notified == ["http://shared"]
        assert bystander.orphans("http://shared") == [], "a live replica's prompt stays its own"
        expected = {
            prompt_key("http://shared", "p-shared"),
            prompt_key("http://nobody", "p-nobody"),  # waits for a replica configured with it
            prompt_key("http://shared", "p-live"),
        }
        give_up = asyncio.get_running_loop().time() + 10
        while (keys := set(await _keys(nats_endpoint.url, f"{prefix}_PROMPTS"))) != expected:
            if asyncio.get_running_loop().time() > give_up:
                break
            await asyncio.sleep(0.2)
        assert keys == expected, "the dead replica's managed ComfyUI died with it: its entry is dropped"
        await owners[0].remove("p-shared")
        assert prompt_key("http://shared", "p-shared") not in await _keys(
            nats_endpoint.url, f"{prefix}_PROMPTS"
        )
    finally:
        for journal in (*adopters, bystander):
            await journal.close()


async def test_a_loopback_comfyui_is_adopted_only_on_the_host_that_reaches_it(nats_endpoint, nats_names):
    """127.0.0.1 is another ComfyUI on every host (a pod's sidecar): only a replica there adopts."""
    prefix = nats_names.upper()
    local = "http://127.0.0.1:8188"
    adopter = NatsJournal(nats_endpoint.url, prefix, lease_seconds=1.0)
    await adopter.start()
    adopter.use_backends({local})
    client = await nats.connect(nats_endpoint.url)
    try:
        kv = await client.jetstream().key_value(f"{prefix}_PROMPTS")
        here = socket.gethostname()
        for prompt_id, host in (("p-other-pod", "another-pod"), ("p-this-pod", here)):
            entry = {"prompt_id": prompt_id, "backend": local, "owner": "gone", "pid": 1, "host": host}
            await kv.put(prompt_key(local, prompt_id), json.dumps(entry).encode())
        await wait_until(lambda: bool(adopter.orphans(local)), within=5)
        await asyncio.sleep(1.0)
        assert [e.prompt_id for e in adopter.orphans(local)] == ["p-this-pod"]
        assert prompt_key(local, "p-other-pod") in await _keys(nats_endpoint.url, f"{prefix}_PROMPTS")
    finally:
        await client.close()
        await adopter.close()
