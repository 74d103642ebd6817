"""Two callers who cannot see each other's runs through any call of the gateway; an admin sees all.

The gateway knows three callers by token (alice, bob, and ops, an admin). A run belongs to
whoever created it; for anyone else (not an admin) it answers exactly as for a run that
does not exist, whichever call names it, so a run id tells nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import pytest
from grpc import aio
from minio import Minio

from comfyui_sim import SimulatorHandle
from mediagen.scaffold import RunningServer
from mediagen.scaffold.channels import open_channel
from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.stack.nats import NatsEndpoint
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, storage_pb2
from tests.gateway.conftest import Gateway, start_gateway, stop_gateway
from tests.gateway.durable.conftest import run_settings, wait_connected
from tests.gateway.durable.support import submit_request, watch
from tests.gateway.runs import output, request, run
from tests.storage.conftest import StorageServer

Stub: TypeAlias = "gateway_pb2_grpc.GatewayServiceAsyncStub"
TOKENS = {"alice": "alice-token", "bob": "bob-token", "ops": "ops-token"}


@dataclass
class Callers:
    gateway: Gateway
    stubs: dict[str, Stub]


@pytest.fixture
async def callers(
    tmp_path: Path,
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
) -> AsyncIterator[Callers]:
    async with limited_callers(tmp_path, generator, storage, nats_server, nats_prefix) as started:
        yield started


@contextlib.asynccontextmanager
async def limited_callers(
    tmp_path: Path,
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
    **limits: object,
) -> AsyncIterator[Callers]:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:alice-token\nbob:bob-token\nops:ops-token:admin\n")
    gateway = await start_gateway(
        generator_target=generator.address,
        storage_target=storage.address,
        auth_tokens_file=tokens,
        **run_settings(nats_server, nats_prefix),
        **limits,
    )
    channels: list[aio.Channel] = []
    stubs = {}
    for name, token in TOKENS.items():
        channel = open_channel(gateway.running.address, token=token)
        channels.append(channel)
        stubs[name] = gateway_pb2_grpc.GatewayServiceStub(channel)
    await wait_connected(Gateway(gateway.running, stubs["ops"], gateway.channel, gateway.settings))  # type: ignore[arg-type]
    try:
        yield Callers(gateway, stubs)  # type: ignore[arg-type]
    finally:
        for channel in channels:
            await channel.close()
        await stop_gateway(gateway)


async def refusal(call: Callable[[], Awaitable[Any]], hidden_id: str) -> tuple[object, ...]:
    """The status a call fails with, the id it names written as ID so two answers compare."""
    with pytest.raises(grpc.RpcError) as caught:
        await call()
    info = status_details(status_of_rpc_error(caught.value))
    if not hidden_id:
        return info.code, info.message, info.reason, dict(info.metadata)
    metadata = {key: value.replace(hidden_id, "ID") for key, value in info.metadata.items()}
    return info.code, info.message.replace(hidden_id, "ID"), info.reason, metadata


async def drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_generated_runs_and_their_media_are_their_creators_only(
    callers: Callers, minio_client: Minio, bucket: str
) -> None:
    alice, bob, ops = (callers.stubs[name] for name in ("alice", "bob", "ops"))
    result = await run(alice, request(output("solid_image", width=8, height=8)))
    run_id, media_id = result.run_id, result.records[0].media_id
    stored = json.loads(minio_client.get_object(bucket, f"runs/{run_id}/run.json").read())
    assert stored["caller"] == "alice"

    mine = await alice.GetRun(storage_pb2.GetRunRequest(run_id=run_id))
    assert (mine.run.caller, [m.media_id for m in mine.media]) == ("alice", [media_id])
    assert (await ops.GetRun(storage_pb2.GetRunRequest(run_id=run_id))).run.caller == "alice"
    async for part in ops.GetMedia(storage_pb2.GetMediaRequest(media_id=media_id)):
        assert part.record.run_id == run_id
        break

    missing_run = "0" * 32
    missing_media = f"{missing_run}.0.0"
    for hidden, missing in (
        (
            lambda: bob.GetRun(storage_pb2.GetRunRequest(run_id=run_id)),
            lambda: bob.GetRun(storage_pb2.GetRunRequest(run_id=missing_run)),
        ),
        (
            lambda: drain(bob.GetMedia(storage_pb2.GetMediaRequest(media_id=media_id))),
            lambda: drain(bob.GetMedia(storage_pb2.GetMediaRequest(media_id=missing_media))),
        ),
    ):
        seen = await refusal(hidden, run_id)
        assert seen[0] == grpc.StatusCode.NOT_FOUND
        assert seen == await refusal(missing, missing_run)


async def test_durable_runs_are_watched_cancelled_and_listed_by_their_owner_only(callers: Callers) -> None:
    alice, bob, ops = (callers.stubs[name] for name in ("alice", "bob", "ops"))
    status = await alice.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
    assert status.caller == "alice"
    bobs = await bob.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
    # A client cannot give its run to someone else: the gateway sets the owner.
    forged = submit_request(output("solid_image", width=8, height=8))
    forged.caller = "alice"
    assert (await bob.SubmitRun(forged)).caller == "bob"
    run_id, missing = status.run_id, "1" * 32

    for hidden, absent in (
        (
            lambda: drain(bob.WatchRun(gateway_pb2.WatchRunRequest(run_id=run_id))),
            lambda: drain(bob.WatchRun(gateway_pb2.WatchRunRequest(run_id=missing))),
        ),
        (
            lambda: bob.CancelRun(gateway_pb2.CancelRunRequest(run_id=run_id)),
            lambda: bob.CancelRun(gateway_pb2.CancelRunRequest(run_id=missing)),
        ),
        (
            lambda: bob.GetRun(storage_pb2.GetRunRequest(run_id=run_id)),
            lambda: bob.GetRun(storage_pb2.GetRunRequest(run_id=missing)),
        ),
    ):
        seen = await refusal(hidden, run_id)
        assert seen[0] == grpc.StatusCode.NOT_FOUND
        assert seen == await refusal(absent, missing)

    async def listed(stub: Stub) -> set[str]:
        return {s.run_id for s in (await stub.ListRuns(gateway_pb2.ListRunsRequest())).runs}

    assert run_id in await listed(alice)
    assert bobs.run_id not in await listed(alice)
    assert run_id not in await listed(bob)
    assert {run_id, bobs.run_id} <= await listed(ops)

    events = await watch(alice, run_id)
    assert events[-1].run_completed.media_stored == 1
    reply = await alice.GetRun(storage_pb2.GetRunRequest(run_id=run_id))
    assert (reply.run.caller, reply.status.caller) == ("alice", "alice")
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    await ops.CancelRun(gateway_pb2.CancelRunRequest(run_id=bobs.run_id))  # an admin may cancel any run


async def test_limits_per_caller_name_themselves_and_spare_the_other_callers(
    tmp_path: Path,
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
    sim: SimulatorHandle,
) -> None:
    async with limited_callers(
        tmp_path, generator, storage, nats_server, nats_prefix, caller_max_running=1, caller_max_queued=1
    ) as callers:
        alice, bob = callers.stubs["alice"], callers.stubs["bob"]
        sim.faults.node_delay_s = {"EmptyImage": 1.0}
        first = alice.Generate(request(output("solid_image", width=8, height=8)), timeout=60)
        assert (await anext(aiter(first))).WhichOneof("event") == "run_created"
        second = await refusal(lambda: run(alice, request(output("solid_image"))), "")
        assert second[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (second[2], second[3]) == (
            "CALLER_LIMIT",
            {"limit": "caller_max_running", "value": "1", "caller": "alice"},
        )
        assert (await run(bob, request(output("solid_image", width=8, height=8)))).completed.media_stored == 1
        async for _ in first:
            pass

        queued = await alice.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
        refused = await refusal(lambda: alice.SubmitRun(submit_request(output("solid_image"))), "")
        assert refused[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused[3] == {"limit": "caller_max_queued", "value": "1", "caller": "alice"}
        await bob.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
        await watch(alice, queued.run_id)
        await alice.SubmitRun(submit_request(output("solid_image", width=8, height=8)))  # room again


async def test_two_callers_choosing_the_same_run_id_each_get_their_own_run_through_every_call(
    callers: Callers, minio_client: Minio, bucket: str
) -> None:
    """Run ids are each caller's own: an id another caller took is neither refused nor revealed."""
    alice, bob, ops = (callers.stubs[name] for name in ("alice", "bob", "ops"))
    red, blue = (
        output("solid_image", width=8, height=8, color=0xFF0000),
        output("solid_image", width=8, height=8, color=0x0000FF),
    )

    # SubmitRun: the same id, two runs; a repeat is the same run; another request under it is refused.
    hers = await alice.SubmitRun(submit_request(red, run_id="shared"))
    his = await bob.SubmitRun(submit_request(blue, run_id="shared"))
    assert (hers.run_id, hers.caller, his.run_id, his.caller) == ("shared", "alice", "shared", "bob")
    again = await alice.SubmitRun(submit_request(red, run_id="shared"))
    assert again.created_at == hers.created_at
    with pytest.raises(grpc.RpcError) as taken:
        await alice.SubmitRun(submit_request(blue, run_id="shared"))
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS  # her own run: nothing leaks

    # WatchRun and GetRun: each sees its own run under the id it chose, with its own media.
    for stub, caller in ((alice, "alice"), (bob, "bob")):
        events = await watch(stub, "shared")
        assert {event.run_id for event in events} == {"shared"}
        stored_events = [e.media_stored for e in events if e.WhichOneof("event") == "media_stored"]
        assert [e.record.media_id for e in stored_events] == ["shared.0.0"]
        reply = await stub.GetRun(storage_pb2.GetRunRequest(run_id="shared"))
        assert (reply.run.run_id, reply.run.caller, reply.status.caller) == ("shared", caller, caller)
        assert [m.media_id for m in reply.media] == ["shared.0.0"]
        assert reply.status.outputs[0].media_ids == ["shared.0.0"]

    # GetMedia: the same media id, each caller's own bytes.
    colours = {}
    for stub, caller in ((alice, "alice"), (bob, "bob")):
        async for part in stub.GetMedia(storage_pb2.GetMediaRequest(media_id="shared.0.0")):
            if part.WhichOneof("part") == "record":
                assert part.record.media_id == "shared.0.0"
                colours[caller] = part.record.descriptor.sha256
    assert colours["alice"] != colours["bob"]

    # ListRuns: each lists its own once; an admin lists both, under the ids they are stored as.
    for stub, caller in ((alice, "alice"), (bob, "bob")):
        listed = (await stub.ListRuns(gateway_pb2.ListRunsRequest())).runs
        assert [(run.run_id, run.caller) for run in listed if run.run_id == "shared"] == [("shared", caller)]
    everything = (await ops.ListRuns(gateway_pb2.ListRunsRequest())).runs
    both = {run.caller: run.run_id for run in everything if run.run_id.endswith("_shared")}
    assert set(both) == {"alice", "bob"}
    assert len(set(both.values())) == 2
    for caller, stored in both.items():
        record = json.loads(minio_client.get_object(bucket, f"runs/{stored}/run.json").read())
        assert record["caller"] == caller
    # ...and names them by those ids.
    assert (await ops.GetRun(storage_pb2.GetRunRequest(run_id=both["bob"]))).run.caller == "bob"

    # Generate: the same id, two runs, no ALREADY_EXISTS for the second caller.
    first = await run(alice, request(red, run_id="made"))
    second = await run(bob, request(blue, run_id="made"))
    assert (first.run_id, second.run_id) == ("made", "made")
    assert first.records[0].media_id == second.records[0].media_id == "made.0.0"
    with pytest.raises(grpc.RpcError) as own:
        await run(alice, request(red, run_id="made"))
    assert own.value.code() == grpc.StatusCode.ALREADY_EXISTS

    # CancelRun: cancelling "queued" cancels the caller's own run only.
    await alice.SubmitRun(submit_request(red, run_id="queued"))
    await bob.SubmitRun(submit_request(blue, run_id="queued"))
    cancelled = await bob.CancelRun(gateway_pb2.CancelRunRequest(run_id="queued"))
    assert (cancelled.run_id, cancelled.caller) == ("queued", "bob")
    events = await watch(alice, "queued")
    assert events[-1].run_completed.state == gateway_pb2.RUN_STATE_SUCCEEDED


async def test_a_run_id_the_gateway_chose_names_the_same_run_when_given_back(callers: Callers) -> None:
    """Submitting again with the id a first submit was given is the same run, for its owner; for
    anyone else that id is free."""
    alice, bob = callers.stubs["alice"], callers.stubs["bob"]
    spec = output("solid_image", width=8, height=8)
    first = await alice.SubmitRun(submit_request(spec))
    again = await alice.SubmitRun(submit_request(spec, run_id=first.run_id))
    assert (again.run_id, again.created_at) == (first.run_id, first.created_at)
    others = await bob.SubmitRun(submit_request(spec, run_id=first.run_id))
    assert (others.run_id, others.caller) == (first.run_id, "bob")
    assert others.created_at != first.created_at
    assert (await alice.GetRun(storage_pb2.GetRunRequest(run_id=first.run_id))).run.caller == "alice"
    assert (await bob.GetRun(storage_pb2.GetRunRequest(run_id=first.run_id))).run.caller == "bob"
