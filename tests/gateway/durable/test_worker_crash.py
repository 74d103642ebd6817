"""A worker SIGKILLed mid-run: another worker process resumes the run, nothing is stored twice.

Two gateway workers run as real processes (``python -m gateway``, role worker); the test's
own gateway (role api) submits and watches. The first worker is killed with SIGKILL while
it generates the run's second output: its claim lapses, the second worker takes the run
over, skips the output already stored, generates the interrupted one again and the rest.
The generator sees the dead worker's stream drop and cancels its ComfyUI prompt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from comfyui_sim import SimulatorHandle
from mediagen.ports import free_port
from mediagen.scaffold import RunningServer
from mediagen.stack.nats import NatsEndpoint
from mediagen.stack.process import terminate_then_kill
from mediagen.v1 import gateway_pb2, storage_pb2
from tests.conftest import ROOT
from tests.gateway.conftest import Gateway, stop_gateway
from tests.gateway.durable.conftest import start_run_gateway
from tests.gateway.durable.support import eventually, submit_request, wait_state, watch
from tests.gateway.runs import output
from tests.gateway.test_faults import sim_idle
from tests.storage.conftest import StorageServer

CLAIM_SECONDS = 2.0


@contextmanager
def worker_process(
    log_file: Path,
    generator: RunningServer,
    storage: StorageServer,
    nats: NatsEndpoint,
    prefix: str,
    **settings: str,
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MEDIAGEN_PORT": str(free_port()),
        "MEDIAGEN_LOG_FORMAT": "text",
        "MEDIAGEN_GATEWAY_GENERATOR_TARGET": generator.address,
        "MEDIAGEN_GATEWAY_STORAGE_TARGET": storage.address,
        "MEDIAGEN_GATEWAY_NATS_URL": nats.url,
        "MEDIAGEN_GATEWAY_NATS_PREFIX": prefix,
        "MEDIAGEN_GATEWAY_ROLE": "worker",
        "MEDIAGEN_GATEWAY_CLAIM_SECONDS": str(CLAIM_SECONDS),
        **{f"MEDIAGEN_GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }
    with log_file.open("wb") as log:
        command = [sys.executable, "-m", "gateway"]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT)
    try:
        yield process
    finally:
        terminate_then_kill(process, grace=15)


@dataclass
class Crash:
    """The test's own gateway (role api), and worker processes on the same services to kill."""

    api: Gateway
    sim: SimulatorHandle
    generator: RunningServer
    storage: StorageServer
    nats: NatsEndpoint
    prefix: str
    logs: Path

    def worker(self, name: str, **settings: str) -> AbstractContextManager[subprocess.Popen[bytes]]:
        """A worker process for the length of the ``with`` block; its log is ``<name>.log``."""
        return worker_process(
            self.logs / f"{name}.log", self.generator, self.storage, self.nats, self.prefix, **settings
        )

    @staticmethod
    def kill(worker: subprocess.Popen[bytes]) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)


@pytest.fixture
async def crash(
    generator: RunningServer,
    storage: StorageServer,
    nats_server: NatsEndpoint,
    nats_prefix: str,
    sim: SimulatorHandle,
    tmp_path: Path,
) -> AsyncIterator[Crash]:
    """After the test: the simulator idle again (nothing left running), the api gateway stopped."""
    api = await start_run_gateway(generator, storage, nats_server, nats_prefix, role="api")
    try:
        yield Crash(api, sim, generator, storage, nats_server, nats_prefix, tmp_path)
        await eventually(lambda: sim_idle(sim))
    finally:
        await stop_gateway(api)


async def test_a_killed_worker_s_run_is_resumed_by_another_and_nothing_is_stored_twice(crash: Crash) -> None:
    sim, api = crash.sim, crash.api
    sim.faults.node_delay_s = {"EmptyImage": 1.5}
    with crash.worker("first") as first:
        outputs = [output("solid_image", width=8, height=8, color=0x200000 + index) for index in range(3)]
        status = await api.stub.SubmitRun(submit_request(*outputs, run_id="survivor"))
        seen: list[gateway_pb2.RunEvent] = []
        async for event in api.stub.WatchRun(gateway_pb2.WatchRunRequest(run_id=status.run_id)):
            seen.append(event)
            if event.WhichOneof("event") == "output_accepted" and event.output_accepted.output_index == 1:
                break
        await eventually(lambda: bool(sim.state()["running"]))
        interrupts = int(sim.state()["interrupts"])  # type: ignore[call-overload]
        with crash.worker("second"):
            crash.kill(first)
            # The orphaned prompt is cancelled by the generator when the dead worker's stream drops.
            await eventually(lambda: int(sim.state()["interrupts"]) > interrupts)  # type: ignore[call-overload]
            reply = await wait_state(api.stub, "survivor", gateway_pb2.RUN_STATE_SUCCEEDED, within=60)
            rest = []
            after = seen[-1].sequence
            async for event in api.stub.WatchRun(
                gateway_pb2.WatchRunRequest(run_id="survivor", after_sequence=after)
            ):
                rest.append(event)
    keys = sorted((record.output_index, record.item_index) for record in reply.media)
    assert keys == [(0, 0), (1, 0), (2, 0)]
    assert reply.status.attempts == 2
    running = [e.state_changed for e in seen + rest if e.WhichOneof("event") == "state_changed"]
    resumed = [change for change in running if change.attempt == 2]
    assert resumed
    assert "resumed" in resumed[0].reason.message
    # Output 0 was stored before the kill and was not generated again.
    accepted = [e.output_accepted.output_index for e in rest if e.WhichOneof("event") == "output_accepted"]
    assert sorted(accepted) == [1, 2]
    stored = [e.media_stored.output_index for e in seen + rest if e.WhichOneof("event") == "media_stored"]
    assert stored.count(0) == 1
    assert rest[-1].run_completed.media_stored == 3


async def test_a_worker_killed_right_after_storing_an_output_leaves_it_stored_once(crash: Crash) -> None:
    """The narrowest window: the output's media are stored (and logged), its outcome not yet
    recorded. The survivor generates that output again and keeps the stored copy of its item,
    though the new bytes differ (every job draws its own seed)."""
    api = crash.api
    crash.sim.faults.node_delay_s = {"EmptyImage": 0.5}
    with crash.worker("first") as first:
        outputs = [output("solid_image", width=8, height=8) for _ in range(2)]
        status = await api.stub.SubmitRun(submit_request(*outputs, run_id="narrow"))
        async for event in api.stub.WatchRun(gateway_pb2.WatchRunRequest(run_id=status.run_id)):
            if event.WhichOneof("event") == "media_stored":
                crash.kill(first)
                break
        stored_first = await crash.storage.stub.ListRunMedia(storage_pb2.ListRunMediaRequest(run_id="narrow"))
        with crash.worker("second"):
            reply = await wait_state(api.stub, "narrow", gateway_pb2.RUN_STATE_SUCCEEDED, within=60)
    keys = sorted((record.output_index, record.item_index) for record in reply.media)
    assert keys == [(0, 0), (1, 0)]
    kept = {media.media_id: media.descriptor.sha256 for media in stored_first.media}
    for media in reply.media:
        if media.media_id in kept:
            assert media.descriptor.sha256 == kept[media.media_id]
    assert [o.state for o in reply.status.outputs] == [gateway_pb2.OUTPUT_STATE_SUCCEEDED] * 2


async def test_a_run_whose_workers_keep_dying_is_given_up(crash: Crash) -> None:
    """At the bound (max_worker_deaths) the next worker records the run FAILED instead of running it."""
    api = crash.api
    crash.sim.faults.hang_nodes = ["EmptyImage"]
    with crash.worker("first") as first:
        status = await api.stub.SubmitRun(submit_request(output("solid_image", color=0x5A5A5A)))
        await wait_state(api.stub, status.run_id, gateway_pb2.RUN_STATE_RUNNING)
        await eventually(lambda: bool(crash.sim.state()["running"]))
        crash.kill(first)
        with crash.worker("second", max_worker_deaths="1"):
            reply = await wait_state(api.stub, status.run_id, gateway_pb2.RUN_STATE_FAILED, within=60)
            events = await watch(api.stub, status.run_id)
    assert "given up" in reply.status.error.message
    assert events[-1].run_completed.state == gateway_pb2.RUN_STATE_FAILED
    assert list(reply.media) == []
