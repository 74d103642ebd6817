"""Media validity and determinism of the stand-in model graphs."""

from __future__ import annotations

import io
from typing import Any

import av
from PIL import Image

from tests.simulator.conftest import Running
from tests.simulator.graphs import text_to_audio, text_to_image, text_to_video


async def _run(running: Running, graph: dict[str, Any]) -> dict[str, Any]:
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(graph, ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    await ws.close()
    entry = await running.comfy.history(pid)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry


async def _download(running: Running, ref: dict[str, str]) -> bytes:
    status, body, _ = await running.comfy.request("GET", "/view", params=ref)
    assert status == 200
    return body  # type: ignore[no-any-return]


async def test_text_to_image_writes_pngs_of_the_requested_size_and_batch(running: Running) -> None:
    for ckpt in ("sd_v1-5.safetensors", "sdxl_base_1.0.safetensors", "sd3.5_large.safetensors"):
        entry = await _run(running, text_to_image(7, width=80, height=40, batch=2, ckpt=ckpt))
        refs = entry["outputs"]["7"]["images"]
        assert len(refs) == 2
        for ref in refs:
            assert Image.open(io.BytesIO(await _download(running, ref))).size == (80, 40)


async def test_same_graph_and_seed_give_identical_pixels_other_seed_differs(running: Running) -> None:
    first = await _run(running, text_to_image(11, prefix="gen/a"))
    again = await _run(running, text_to_image(11, prefix="gen/b"))
    other = await _run(running, text_to_image(12, prefix="gen/c"))
    pixels = []
    for entry in (first, again, other):
        data = await _download(running, entry["outputs"]["7"]["images"][0])
        pixels.append(Image.open(io.BytesIO(data)).tobytes())
    assert pixels[0] == pixels[1]
    assert pixels[0] != pixels[2]


async def test_prompt_text_changes_the_image(running: Running) -> None:
    one = await _run(running, text_to_image(5, text="a cat", prefix="gen/t1"))
    two = await _run(running, text_to_image(5, text="a dog", prefix="gen/t2"))
    a = await _download(running, one["outputs"]["7"]["images"][0])
    b = await _download(running, two["outputs"]["7"]["images"][0])
    assert Image.open(io.BytesIO(a)).tobytes() != Image.open(io.BytesIO(b)).tobytes()


async def test_text_to_audio_writes_a_decodable_mp3(running: Running) -> None:
    entry = await _run(running, text_to_audio(3, seconds=1.0))
    data = await _download(running, entry["outputs"]["8"]["audio"][0])
    with av.open(io.BytesIO(data), mode="r") as container:
        frames = list(container.decode(audio=0))
    assert sum(f.samples for f in frames) > 30000


async def test_wan_style_text_to_video_writes_an_h264_mp4_of_the_requested_size(running: Running) -> None:
    entry = await _run(running, text_to_video(9, width=64, height=48, length=9))
    ref = entry["outputs"]["10"]["images"][0]
    assert entry["outputs"]["10"]["animated"] == [True]
    assert ref["filename"].endswith(".mp4")
    with av.open(io.BytesIO(await _download(running, ref)), mode="r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 64, 48)
    assert len(frames) == 9


async def test_ksampler_reports_one_progress_per_step(running: Running) -> None:
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(text_to_image(1, prefix="gen/p"), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    progress = [
        (m["data"]["value"], m["data"]["max"], m["data"]["node"]) for m in ws.texts if m["type"] == "progress"
    ]
    assert progress == [(1, 4, "5"), (2, 4, "5"), (3, 4, "5"), (4, 4, "5")]
    await ws.close()


async def test_partial_cache_reruns_only_changed_nodes(running: Running) -> None:
    await _run(running, text_to_image(21, prefix="gen/cache"))
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(text_to_image(22, prefix="gen/cache"), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    cached = next(m for m in ws.texts if m["type"] == "execution_cached")["data"]["nodes"]
    assert cached == ["1", "2", "3", "4"]
    executing = [m["data"]["node"] for m in ws.texts if m["type"] == "executing"]
    assert executing == ["5", "6", "7", None]
    await ws.close()
