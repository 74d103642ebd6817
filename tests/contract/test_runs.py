"""Scenarios 02-08: successful runs, caching, and each output kind, event by event."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import av
from PIL import Image

from tests.contract.client import Comfy, Recorder
from tests.contract.compare import (
    executing_nodes,
    first_difference,
    load,
    prompt_types,
    same_file_pattern,
    step,
    ws_texts,
)
from tests.contract.conftest import Target


def captured_prompt_ids(t: dict[str, Any]) -> list[str]:
    return [
        s["body"]["json"]["prompt_id"]
        for s in t["steps"]
        if s.get("request", {}).get("path") == "/prompt" and s["status"] == 200
    ]


async def run(comfy: Comfy, ws: Recorder, graph: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    pid = (await comfy.submit(graph, ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    return pid, await comfy.history(pid)


def files_of(outputs: dict[str, Any]) -> list[dict[str, str]]:
    return [
        f
        for ui in outputs.values()
        for v in ui.values()
        if isinstance(v, list)
        for f in v
        if isinstance(f, dict) and "filename" in f
    ]


def assert_history_like(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    assert first_difference(expected, actual, skip=("text[0]",)) is None, first_difference(expected, actual)
    assert actual["status"]["status_str"] == expected["status"]["status_str"]
    assert [m[0] for m in actual["status"]["messages"]] == [m[0] for m in expected["status"]["messages"]]
    assert sorted(actual["outputs"]) == sorted(expected["outputs"])
    for node, ui in expected["outputs"].items():
        pairs = zip(files_of({node: ui}), files_of({node: actual["outputs"][node]}), strict=True)
        for e, a in pairs:
            assert (e["subfolder"], e["type"]) == (a["subfolder"], a["type"])
            assert same_file_pattern(e["filename"], a["filename"]), (e, a)


@dataclass
class Replay:
    """A transcript's one prompt run again on the target (its prompt's events already checked)."""

    transcript: dict[str, Any]
    ws: Recorder
    pid: str
    entry: dict[str, Any]
    """The prompt's history entry on the target."""
    expected: str
    """The captured prompt's id."""

    def assert_history_like_capture(self) -> None:
        assert_history_like(step(self.transcript, "GET /history")["body"]["json"][self.expected], self.entry)


async def replay(target: Target, name: str) -> Replay:
    """Run transcript ``name``'s prompt; its prompt's event types must be the captured ones."""
    t = load(name)
    ws = await target.comfy.connect()
    pid, entry = await run(target.comfy, ws, step(t, "POST /prompt")["request"]["json"]["prompt"])
    expected = captured_prompt_ids(t)[0]
    assert prompt_types(ws.texts, pid) == prompt_types(ws_texts(t), expected)
    return Replay(t, ws, pid, entry, expected)


async def test_basic_run_events_history_and_view_match_capture(target: Target) -> None:
    r = await replay(target, "02_basic_image_run")
    t, ws, entry = r.transcript, r.ws, r.entry
    assert [m["type"] for m in ws.texts] == [m["type"] for m in ws_texts(t)]
    r.assert_history_like_capture()
    ref = entry["outputs"]["2"]["images"][0]
    status, body, response = await target.comfy.request("GET", "/view", params=ref)
    assert status == 200
    expected_headers = step(t, "GET /view")["headers"]
    assert set(expected_headers) <= {k.lower() for k in response.headers}
    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == len(body)
    assert Image.open(io.BytesIO(body)).size == (64, 64)
    await ws.close()


async def test_identical_resubmission_is_a_full_cache_hit_naming_the_first_file(target: Target) -> None:
    t = load("03_cached_rerun")
    ws = await target.comfy.connect()
    graph = step(t, "POST /prompt (first")["request"]["json"]["prompt"]
    graph["2"]["inputs"]["filename_prefix"] = f"probe/cached_{os.urandom(4).hex()}"
    first, entry1 = await run(target.comfy, ws, graph)
    second, entry2 = await run(target.comfy, ws, graph)
    pids = captured_prompt_ids(t)
    assert prompt_types(ws.texts, first) == prompt_types(ws_texts(t), pids[0])
    assert prompt_types(ws.texts, second) == prompt_types(ws_texts(t), pids[1])
    assert entry2["status"]["messages"][1][1]["nodes"] == ["1", "2"]
    assert entry2["outputs"] == entry1["outputs"]
    assert executing_nodes(ws.texts, second) == [None]
    await ws.close()


async def test_cache_hit_names_a_deleted_file_and_a_new_prefix_reruns_only_the_saver(target: Target) -> None:
    t = load("03b_cached_rerun_after_output_deleted")
    ws = await target.comfy.connect()
    graph = step(t, "POST /prompt (first")["request"]["json"]["prompt"]
    graph["2"]["inputs"]["filename_prefix"] = prefix = f"probe/deleted_{os.urandom(4).hex()}"
    _, entry1 = await run(target.comfy, ws, graph)
    ref = entry1["outputs"]["2"]["images"][0]
    os.remove(target.data_dir / "output" / ref["subfolder"] / ref["filename"])
    second, entry2 = await run(target.comfy, ws, graph)
    assert entry2["outputs"] == entry1["outputs"]
    status, _, _ = await target.comfy.request("GET", "/view", params=ref)
    assert status == step(t, "GET /view", 1)["status"] == 404
    graph["2"]["inputs"]["filename_prefix"] = prefix + "_nonce"
    third, entry3 = await run(target.comfy, ws, graph)
    pids = captured_prompt_ids(t)
    assert prompt_types(ws.texts, second) == prompt_types(ws_texts(t), pids[1])
    assert prompt_types(ws.texts, third) == prompt_types(ws_texts(t), pids[2])
    assert entry3["status"]["messages"][1][1]["nodes"] == ["1"]
    await ws.close()


async def test_invert_preview_and_text_outputs_run_in_captured_order(target: Target) -> None:
    r = await replay(target, "04_invert_preview_text")
    nodes, captured = executing_nodes(r.ws.texts, r.pid), executing_nodes(ws_texts(r.transcript), r.expected)
    # PreviewAny (5) is an output ready next to ImageInvert (2), so it always runs first. SaveImage
    # (3) and PreviewImage (4) become ready together; the real server breaks that tie by the order
    # of a set of output ids (validate_prompt), which changes from one server process to the next.
    assert nodes[:3] == captured[:3] == ["1", "5", "2"]
    assert sorted(map(str, nodes[3:5])) == sorted(map(str, captured[3:5])) == ["3", "4"]
    assert nodes[5:] == captured[5:] == [None]
    r.assert_history_like_capture()
    assert r.entry["outputs"]["4"]["images"][0]["type"] == "temp"
    assert isinstance(r.entry["outputs"]["5"]["text"][0], str)
    await r.ws.close()


async def _check_media(comfy: Comfy, entry: dict[str, Any]) -> list[Any]:
    opened: list[Any] = []
    for ref in files_of(entry["outputs"]):
        status, body, _ = await comfy.request("GET", "/view", params=ref)
        assert status == 200
        if ref["filename"].endswith((".png", ".webp")):
            opened.append(Image.open(io.BytesIO(body)))
        else:
            with av.open(io.BytesIO(body), mode="r") as container:
                opened.append(sum(1 for _ in container.decode(*container.streams)))
    return opened


async def test_animated_savers_report_images_and_animated_true(target: Target) -> None:
    r = await replay(target, "05_animated_webp_png")
    r.assert_history_like_capture()
    for node in ("4", "5"):
        assert r.entry["outputs"][node]["animated"] == [True]
    images = await _check_media(target.comfy, r.entry)
    # identical consecutive frames may be merged by the encoder, so only "animated" is pinned
    assert all(getattr(i, "is_animated", False) for i in images)


async def test_audio_savers_report_audio_files_that_decode(target: Target) -> None:
    r = await replay(target, "06_audio_save")
    r.assert_history_like_capture()
    assert all(n > 0 for n in await _check_media(target.comfy, r.entry))


async def test_video_savers_report_images_animated_not_video(target: Target) -> None:
    r = await replay(target, "07_video_save")
    assert executing_nodes(r.ws.texts, r.pid) == executing_nodes(ws_texts(r.transcript), r.expected)
    r.assert_history_like_capture()
    assert "video" not in r.entry["outputs"]["3"]
    assert await _check_media(target.comfy, r.entry) == [8, 8]


async def test_websocket_saver_sends_binary_frames_type1_or_type4_after_flags(target: Target) -> None:
    t = load("08_ws_binary_images")
    graph = step(t, "POST /prompt")["request"]["json"]["prompt"]
    plain = await target.comfy.connect()
    pid, entry = await run(target.comfy, plain, graph)
    assert entry["outputs"] == {}
    assert entry["meta"] == {}
    expected_types = [
        m["type"] for m in ws_texts(t, "plain") if m["data"].get("prompt_id") == captured_prompt_ids(t)[0]
    ]
    assert (
        prompt_types(plain.texts, pid) == [x for x in expected_types if x != "progress_state"]
        or prompt_types(plain.texts, pid) == expected_types
        or "progress" in prompt_types(plain.texts, pid)
    )
    assert [b[:8].hex() for b in plain.binaries] == ["0000000100000002"] * 3
    assert all(b[8:16] == b"\x89PNG\r\n\x1a\n" for b in plain.binaries)
    flags = await target.comfy.connect(flags=True)
    reply = await flags.wait_for(lambda m: m["type"] == "feature_flags")
    assert reply["data"] == next(m for m in ws_texts(t, "flags") if m["type"] == "feature_flags")["data"]
    pid2, _ = await run(target.comfy, flags, graph)
    assert (await target.comfy.history(pid2))["status"]["messages"][1][1]["nodes"] == ["1"]
    assert len(flags.binaries) == 3
    import json
    import struct

    for frame in flags.binaries:
        assert struct.unpack(">I", frame[:4])[0] == 4
        size = struct.unpack(">I", frame[4:8])[0]
        meta = json.loads(frame[8 : 8 + size])
        captured = next(m for m in t["ws_messages"] if m.get("event_type") == 4)["metadata"]
        assert set(meta) == set(captured)
        assert meta["image_type"] == "image/png"
        assert frame[8 + size : 8 + size + 8] == b"\x89PNG\r\n\x1a\n"
    for ws in (plain, flags):
        await ws.close()
