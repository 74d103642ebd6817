"""A finished job learns its outputs from the ``executed`` pushes and reads no ``/history``, unless
the pushes may not tell the whole outcome; a push naming an unsafe file fails the job as an unsafe
history does. The history entry is still dropped afterwards, by the batched delete.
"""

from __future__ import annotations

import io
from typing import Any

import grpc
from PIL import Image

from comfyui_sim.server import SimulatorHandle
from generator_service.comfy import events as ev
from generator_service.comfy.events import Event
from generator_service.comfy.pushed import PushedOutcome
from mediagen.v1 import generator_pb2_grpc
from tests.generator.support import raw_request, run, template_request, wait_until

PROMPT = "3f1c2a9e-0000-4000-8000-000000000001"


def _saved_and_previewed(color: int) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


def _pixel(data: bytes | bytearray) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as image:
        pixel = image.convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


async def test_a_job_whose_pushes_name_every_output_reads_no_history(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    result = await run(generator_stub, template_request("solid_image", width=8, height=8, color=0x00FF00))
    assert result.error is None, result.error
    [media] = result.media
    assert media.start.filename.startswith(result.accepted.prompt_id)
    assert _pixel(media.data) == (0, 255, 0)
    assert simulator.state()["history_reads"] == 0
    await wait_until(lambda: simulator.state()["history_size"] == 0, within=10.0)
    assert int(simulator.state()["history_delete_requests"]) >= 1  # type: ignore[call-overload]


async def test_cached_output_nodes_without_executed_fall_back_to_the_history(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    graph = _saved_and_previewed(0x0000FF)
    first = await run(generator_stub, raw_request(graph))
    assert first.error is None, first.error
    # The preview is taken from the cache and, as in ComfyUI 0.3.x, announced again: no history read.
    second = await run(generator_stub, raw_request(graph))
    assert second.error is None, second.error
    assert simulator.state()["history_reads"] == 0
    # A ComfyUI that announces no cached node: the pushes miss an output, the history is read.
    simulator.faults.cached_nodes_silent = True
    third = await run(generator_stub, raw_request(graph))
    assert third.error is None, third.error
    assert int(simulator.state()["history_reads"]) >= 1  # type: ignore[call-overload]
    assert third.completed is not None
    assert third.completed.media_count == 1
    [media] = third.media
    assert media.start.node_id == "2"
    assert media.start.filename.startswith(f"{third.accepted.prompt_id}-2_")
    assert _pixel(media.data) == (0, 0, 255)


async def test_a_job_whose_socket_dropped_during_the_prompt_reads_the_history(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    simulator.faults.drop_ws_on_node = ["SaveImage"]
    result = await run(generator_stub, template_request("solid_image", width=8, height=8, color=0xFF0000))
    assert result.error is None, result.error
    [media] = result.media
    assert _pixel(media.data) == (255, 0, 0)
    state = simulator.state()
    assert int(state["ws_drops"]) >= 1  # type: ignore[call-overload]
    assert int(state["history_reads"]) >= 1  # type: ignore[call-overload]


async def test_a_pushed_output_naming_a_parent_folder_is_data_loss_with_nothing_downloaded(
    generator_stub: generator_pb2_grpc.GeneratorServiceAsyncStub, simulator: SimulatorHandle
) -> None:
    simulator.faults.history_injected_files = [{"filename": "../x", "subfolder": "", "type": "output"}]
    result = await run(generator_stub, template_request("solid_image", width=8, height=8))
    assert result.error is not None
    assert (result.error.code, result.error.reason) == (grpc.StatusCode.DATA_LOSS, "UNSAFE_OUTPUT_NAME")
    assert result.media == []
    state = simulator.state()
    assert state["view_requests"] == []
    assert state["history_reads"] == 0, "the push alone was enough to refuse it"


# ------------------------------------------------------------------ the rule on its own


def _graph() -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8}},
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": f"jobs/{PROMPT}-2"},
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


def _pushes(*events: tuple[str, dict[str, Any]]) -> PushedOutcome:
    pushed = PushedOutcome(PROMPT, _graph(), include_previews=False)
    for kind, data in events:
        pushed.note(Event(kind, {**data, "prompt_id": PROMPT}))
    return pushed


def _run(
    cached: list[str], saved: dict[str, Any] | None, *announced: str
) -> list[tuple[str, dict[str, Any]]]:
    """One prompt's reports: the saver's ``executed`` (when ``saved``), then one without output
    for each of the ``announced`` nodes."""
    events: list[tuple[str, dict[str, Any]]] = [
        ("execution_start", {}),
        ("execution_cached", {"nodes": cached}),
    ]
    if saved is not None:
        events.append(("executed", {"node": "2", "output": saved}))
    events += [("executed", {"node": node, "output": None}) for node in announced]
    events.append(("execution_success", {}))
    return events


OWN = {"images": [{"filename": f"{PROMPT}-2_00001_.png", "subfolder": "jobs", "type": "output"}]}


def test_a_complete_run_gives_an_entry_listing_the_pushed_files() -> None:
    entry = _pushes(*_run([], OWN)).entry()
    assert entry is not None
    assert entry["outputs"] == {"2": OWN}
    assert entry["status"]["status_str"] == "success"
    assert _pushes(*_run(["1", "3"], OWN, "3")).entry() is not None, "the cached preview was announced"


def test_pushes_that_may_miss_something_give_no_entry() -> None:
    assert _pushes(*_run([], OWN)[:-1]).entry() is None, "no execution_success heard"
    assert _pushes(*_run(["1", "3"], OWN)).entry() is None, "a cached output node announced nothing"
    dropped = _run([], OWN)
    dropped.insert(1, (ev.WS_DOWN, {}))
    assert _pushes(*dropped).entry() is None, "the socket dropped during the prompt"
    foreign = {"images": [{"filename": "other-prompt-2_00001_.png", "subfolder": "jobs", "type": "output"}]}
    assert _pushes(*_run([], foreign)).entry() is None, "a file that is not the job's own"
    assert _pushes(*_run([], None)).entry() is None, "no file at all"


def test_an_unsafe_pushed_name_gives_the_entry_that_fails_the_job() -> None:
    unsafe = {"images": [{"filename": "../../etc/passwd", "subfolder": "", "type": "output"}]}
    entry = _pushes(*_run([], unsafe)).entry()
    assert entry is not None
    assert entry["outputs"] == {"2": unsafe}
