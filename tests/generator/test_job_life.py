"""A job's life is one state with explicit moves; letting go of a job does the right thing in each.

The first part drives :class:`JobLife` alone through every state and every move (legal ones
happen, illegal ones raise and change nothing). The second runs real ComfyUI jobs on the
simulator and lets go of them in each state, checking what is left on the backend and in the
journal afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest

from comfyui_sim.server import SimulatorHandle
from generator_service import workflows
from generator_service.app import job_limits
from generator_service.backends import Backend
from generator_service.jobs import Job
from generator_service.journal import FileJournal
from generator_service.lifecycle import MOVES, IllegalMove, JobLife, JobState
from generator_service.outbox import Ended, Failed, Outbox
from generator_service.templates import PACKAGED_DIR, load_templates
from mediagen.scaffold import ServiceError
from mediagen.v1 import common_pb2, generator_pb2
from tests.generator.conftest import generator_settings
from tests.generator.support import template_request, wait_until
from tests.support.events import messages

S = JobState
STEPS: dict[str, Callable[[JobLife], object]] = {
    "start": JobLife.start,
    "reach_backend": JobLife.reach_backend,
    "refused": JobLife.refused,
    "deliver": JobLife.deliver,
    "release": JobLife.release,
    "stop": JobLife.stop,
    "end": JobLife.end,
}
PATHS: dict[JobState, tuple[str, ...]] = {
    S.CREATED: (),
    S.RUNNING: ("start",),
    S.ON_BACKEND: ("start", "reach_backend"),
    S.DELIVERED: ("start", "reach_backend", "deliver"),
    S.CLEANING_UP: ("start", "reach_backend", "deliver", "release"),
    S.ENDED: ("start", "reach_backend", "deliver", "release", "end"),
}
"""One way from a new job to each state, through the public steps only."""
TARGETS = {
    "start": S.RUNNING,
    "reach_backend": S.ON_BACKEND,
    "refused": S.RUNNING,
    "deliver": S.DELIVERED,
    "end": S.ENDED,
}
"""Where each plain step goes (``release`` and ``stop`` depend on the state, tested apart)."""


def state_of(life: JobLife) -> JobState:
    """The state read afresh (type checkers keep a narrowed state across the steps that change it)."""
    return life.state


def life_in(state: JobState) -> JobLife:
    life = JobLife()
    for step in PATHS[state]:
        STEPS[step](life)
    assert life.state is state
    return life


def test_every_state_is_reachable_and_only_ended_is_final() -> None:
    assert set(PATHS) == set(JobState) == set(MOVES)
    assert [state for state, moves in MOVES.items() if not moves] == [S.ENDED]


@pytest.mark.parametrize(("state", "step"), list(itertools.product(JobState, TARGETS)))
def test_a_step_moves_where_the_table_allows_and_raises_elsewhere(state: JobState, step: str) -> None:
    life = life_in(state)
    target = TARGETS[step]
    if target in MOVES[state]:
        STEPS[step](life)
        assert life.state is target
    else:
        with pytest.raises(IllegalMove, match=f"from {state.value} to {target.value}"):
            STEPS[step](life)
        assert life.state is state, "a refused move changes nothing"


RELEASED = {
    S.CREATED: (S.ENDED, False),
    S.RUNNING: (S.CLEANING_UP, True),
    S.ON_BACKEND: (S.CLEANING_UP, True),
    S.DELIVERED: (S.CLEANING_UP, False),
    S.CLEANING_UP: (S.CLEANING_UP, False),
    S.ENDED: (S.ENDED, False),
}


@pytest.mark.parametrize("state", list(JobState))
async def test_letting_go_stops_a_producing_job_and_lets_a_delivered_one_clean_up(state: JobState) -> None:
    life = life_in(state)
    after, must_cancel = RELEASED[state]
    assert life.release() is must_cancel
    assert life.state is after
    await asyncio.wait_for(life.released(), 1.0)  # the job's task waits on nothing more
    assert life.release() is False, "letting go twice changes nothing more"
    assert life.state is after


@pytest.mark.parametrize("state", [S.RUNNING, S.ON_BACKEND, S.DELIVERED, S.CLEANING_UP])
def test_a_cancelled_task_cleans_up_from_any_state_it_can_be_in(state: JobState) -> None:
    life = life_in(state)
    life.stop()
    assert life.state is S.CLEANING_UP
    life.end()
    assert state_of(life) is S.ENDED


@pytest.mark.parametrize("state", [S.CREATED, S.ENDED])
def test_a_job_that_is_not_running_cannot_be_stopped(state: JobState) -> None:
    with pytest.raises(IllegalMove):
        life_in(state).stop()


def test_the_backend_holds_a_job_from_its_submission_unless_refused_outright() -> None:
    life = JobLife()
    life.start()
    assert not life.backend_may_hold
    life.reach_backend()
    assert life.backend_may_hold
    life.refused()
    assert not life.backend_may_hold, "the backend refused it without queueing any of it"
    life.reach_backend()
    life.deliver()
    life.release()
    assert life.backend_may_hold, "the clean-up must still stop and forget it there"
    life.end()
    assert life.backend_may_hold


def test_every_life_ends_in_exactly_one_terminal_state() -> None:
    """From every state some steps lead to ENDED, and ENDED is the only state no step leaves."""
    leads_on: dict[JobState, set[JobState]] = {}
    for state in JobState:
        leads_on[state] = set()
        for step in STEPS:
            life = life_in(state)
            with contextlib.suppress(IllegalMove):
                STEPS[step](life)
            if life.state is not state:
                leads_on[state].add(life.state)
    assert [state for state, after in leads_on.items() if not after] == [S.ENDED]
    for state in JobState:
        seen, frontier = {state}, [state]
        while frontier:
            for after in leads_on[frontier.pop()] - seen:
                seen.add(after)
                frontier.append(after)
        assert S.ENDED in seen, f"a job in {state.value} can never end"


async def test_the_outbox_ends_the_stream_on_its_last_item() -> None:
    progress = generator_pb2.GenerateEvent(progress=common_pb2.Progress(value=1))
    outbox = Outbox()
    await outbox.put(progress)
    await outbox.put(Ended())
    assert [event async for event in outbox.events()] == [progress]

    error = ServiceError(grpc.StatusCode.ABORTED, "node failed", "EXECUTION_ERROR", {"prompt_id": "p"})
    outbox = Outbox()
    await outbox.put(progress)
    await outbox.put(Failed(error))
    events = outbox.events()
    assert await anext(events) == progress
    with pytest.raises(ServiceError) as raised:
        await anext(events)
    assert raised.value is error


# Real jobs on the simulator.


@pytest.fixture
async def backend(simulator: SimulatorHandle, tmp_path: Path) -> AsyncIterator[Backend]:
    comfy = Backend(
        "comfyui-0",
        simulator.url,
        client_id_prefix="life",
        http_timeout=5.0,
        journal=FileJournal(tmp_path / "journal"),
        cancel_wait=3.0,
    )
    comfy.events.start()
    await comfy.check()
    await wait_until(lambda: comfy.ready)
    yield comfy
    await comfy.close()


def new_job(backend: Backend, template: str = "inverted_image") -> Job:
    templates = load_templates(PACKAGED_DIR)
    workflow = workflows.check_job(template_request(template, width=8, height=8), templates, None)
    loop = asyncio.get_running_loop()
    limits = job_limits(generator_settings(comfyui_urls=backend.url))
    return Job(backend, workflow, deadline=loop.time() + 30, limits=limits)


async def ended(job: Job) -> None:
    assert job.task is not None
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(job.task, 10)
    assert job.state is S.ENDED


async def drain(events: AsyncIterator[generator_pb2.GenerateEvent]) -> None:
    async for _ in events:
        pass


def journalled(directory: Path) -> list[str]:
    """The prompts the journal keeps (one file per prompt)."""
    return sorted(path.stem for path in directory.glob("*.json"))


async def test_a_finished_job_waits_for_the_caller_then_forgets_its_prompt(
    backend: Backend, simulator: SimulatorHandle, tmp_path: Path
) -> None:
    job = new_job(backend)
    job.start()
    events = [event async for event in messages(job.events())]
    assert events[-1].HasField("completed")
    assert job.state is S.DELIVERED
    assert simulator.state()["history_size"] == 1, "nothing is cleaned up before the caller lets go"
    assert journalled(tmp_path / "journal") == [job.prompt_id]
    job.release()
    await ended(job)
    assert simulator.state()["history_size"] == 0
    assert journalled(tmp_path / "journal") == []


async def test_a_failed_job_is_delivered_as_its_status_and_cleaned_up(
    backend: Backend, simulator: SimulatorHandle, tmp_path: Path
) -> None:
    simulator.faults.fail_nodes = {"ImageInvert": "boom"}
    job = new_job(backend)
    job.start()
    with pytest.raises(ServiceError) as raised:
        await drain(messages(job.events()))
    assert raised.value.code == grpc.StatusCode.ABORTED
    assert job.state is S.DELIVERED
    job.release()
    await ended(job)
    assert simulator.state()["history_size"] == 0
    assert journalled(tmp_path / "journal") == []


async def test_letting_go_of_a_running_prompt_stops_it_on_the_backend(
    backend: Backend, simulator: SimulatorHandle, tmp_path: Path
) -> None:
    simulator.faults.hang_nodes = ["ImageInvert"]
    job = new_job(backend)
    job.start()
    async for event in messages(job.events()):
        if event.HasField("progress") and event.progress.node_type == "ImageInvert":
            break
    assert job.state is S.ON_BACKEND
    assert simulator.state()["running"] == [job.prompt_id]
    job.release()
    assert state_of(job.life) is S.CLEANING_UP
    await ended(job)
    await wait_until(lambda: not simulator.state()["running"] and not simulator.state()["pending"])
    interrupts = simulator.state()["interrupts"]
    assert isinstance(interrupts, int)
    assert interrupts >= 1
    await wait_until(lambda: simulator.state()["history_size"] == 0)
    await wait_until(lambda: journalled(tmp_path / "journal") == [])


async def test_letting_go_before_the_backend_has_it_sends_nothing(
    simulator: SimulatorHandle, tmp_path: Path
) -> None:
    """No event socket yet: the job waits for one, still RUNNING, when the caller lets go."""
    quiet = Backend(
        "comfyui-0",
        simulator.url,
        client_id_prefix="life",
        http_timeout=5.0,
        journal=FileJournal(tmp_path / "journal"),
        cancel_wait=3.0,
    )
    try:
        job = new_job(quiet)
        job.start()
        await asyncio.sleep(0.05)
        assert job.state is S.RUNNING
        job.release()
        await ended(job)
        assert not job.life.backend_may_hold
        assert simulator.state()["history_size"] == 0
        assert not simulator.state()["running"]
        assert not simulator.state()["pending"]
        assert journalled(tmp_path / "journal") == []
    finally:
        await quiet.close()


async def test_letting_go_before_the_start_ends_the_job_and_it_cannot_start(backend: Backend) -> None:
    job = new_job(backend)
    job.release()
    assert job.state is S.ENDED
    with pytest.raises(IllegalMove):
        job.start()
    assert job.task is None
