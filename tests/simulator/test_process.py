"""The command line entry point and the large-output node, run as separate processes."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


async def _start(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "comfyui_sim",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
    assert line.startswith("comfyui-sim listening on http://127.0.0.1:"), line
    return proc, line.rsplit(" ", 1)[1]


async def test_cli_on_port_zero_prints_its_url_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc, url = await _start(tmp_path, "--step-delay", "0.01")
    assert not url.endswith(":0")
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/api/queue") as response:
            assert await response.json() == {"queue_running": [], "queue_pending": []}
        async with http.get(url + "/sim/faults") as response:
            assert (await response.json())["step_delay_s"] == 0.01
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert proc.stdout is not None
    assert b"stopped" in await proc.stdout.read()


async def test_crash_on_node_kills_the_process(tmp_path: Path) -> None:
    proc, url = await _start(tmp_path, "--crash-on-node", "SaveImage")
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    async with aiohttp.ClientSession() as http, http.post(url + "/prompt", json={"prompt": graph}) as r:
        assert r.status == 200
    assert await asyncio.wait_for(proc.wait(), 10) == 3


async def test_large_image_is_a_valid_png_written_with_bounded_memory(tmp_path: Path) -> None:
    """SimLargeImage streams ~size_bytes of random pixels; RSS must not grow with the file."""
    import psutil

    proc, url = await _start(tmp_path)
    size = 192 * 1024 * 1024
    graph = {
        "1": {
            "class_type": "SimLargeImage",
            "inputs": {"size_bytes": size, "seed": 1, "filename_prefix": "big/blob"},
        }
    }
    process = psutil.Process(proc.pid)
    baseline = process.memory_info().rss
    peak = baseline
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/prompt", json={"prompt": graph}) as response:
            pid = (await response.json())["prompt_id"]
        deadline = time.monotonic() + 60
        entry: dict[str, object] = {}
        while not entry and time.monotonic() < deadline:
            peak = max(peak, process.memory_info().rss)
            async with http.get(f"{url}/history/{pid}") as response:
                entry = (await response.json()).get(pid, {})
            await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    await proc.wait()
    assert peak - baseline < 50 * 1024 * 1024, (peak - baseline) / 2**20
    ref = json.loads(json.dumps(entry))["outputs"]["1"]["images"][0]
    path = tmp_path / "output" / ref["subfolder"] / ref["filename"]
    assert path.stat().st_size >= size
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as img:
        assert img.mode == "RGB"
        assert img.width * img.height * 3 >= size
        img.verify()
