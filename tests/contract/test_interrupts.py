"""Scenarios 20-22: interrupting and deleting prompts (needs the ProbeSleepProgress node)."""

from __future__ import annotations

import asyncio
import time

from tests.contract.client import Recorder, basic_graph, sleep_graph
from tests.contract.compare import load, prompt_types, step, ws_texts
from tests.contract.conftest import Target


async def test_global_interrupt_stops_a_progress_node_within_a_step(target: Target) -> None:
    await target.require_probe_node()
    t = load("20_interrupt_running_in_node")
    ws = await target.comfy.connect()
    pid = (await target.comfy.submit(sleep_graph(50, 0.1), ws.client_id))["prompt_id"]
    await ws.wait_for(lambda m: m["type"] == "progress" and m["data"]["value"] >= 2)
    queue = await target.comfy.get("/queue")
    assert [item[1] for item in queue["queue_running"]] == [pid]
    status, body, _ = await target.comfy.request("POST", "/interrupt")
    sent = time.monotonic()
    assert (status, body) == (200, b"")
    await ws.wait_for(lambda m: m["type"] == "execution_interrupted")
    assert time.monotonic() - sent < 0.5
    await ws.wait_done(pid)
    types = prompt_types(ws.texts, pid)
    expected = prompt_types(ws_texts(t), step(t, "POST /prompt (")["body"]["json"]["prompt_id"])
    assert types[-2:] == expected[-2:] == ["execution_interrupted", "executing"]
    assert "execution_success" not in types
    entry = await target.comfy.history(pid)
    assert (entry["status"]["status_str"], entry["status"]["completed"], entry["outputs"]) == (
        "error",
        False,
        {},
    )
    data = entry["status"]["messages"][-1]
    assert data[0] == "execution_interrupted"
    assert data[1]["node_id"] == "2"
    assert data[1]["executed"] == ["1"]
    await target.comfy.request("POST", "/interrupt")
    later = (await target.comfy.submit(sleep_graph(3, 0.02, color=10801054), ws.client_id))["prompt_id"]
    await ws.wait_done(later)
    assert (await target.comfy.history(later))["status"]["status_str"] == "success"
    await ws.close()


async def test_targeted_interrupt_lets_a_node_without_progress_finish_then_stops(target: Target) -> None:
    """The simulator's ImageBlur is fast, so a node delay knob stands in for the real 4 s blur.

    The captured blur chain (1024x1024x4, radius 31) took 4.2 s on the capture machine and about
    15 s on a 2-core one, so a real server gets a minute to finish the running node.
    """
    t = load("21_interrupt_running_between_nodes")
    if target.sim is not None:
        target.faults.node_delay_s["ImageBlur"] = 0.6
    ws = await target.comfy.connect()
    graph = step(t, "POST /prompt")["request"]["json"]["prompt"]
    pid = (await target.comfy.submit(graph, ws.client_id))["prompt_id"]
    await ws.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") == "2")
    await asyncio.sleep(0.1)
    assert (await target.comfy.request("POST", "/interrupt", json={"prompt_id": "not-a-running-prompt"}))[
        0
    ] == 200
    assert (await target.comfy.request("POST", "/interrupt", json={"prompt_id": pid}))[0] == 200
    sent = time.monotonic()
    await ws.wait_done(pid, within=15.0 if target.sim is not None else 60.0)
    assert time.monotonic() - sent > 0.3, "the running node without progress hook ran to its end"
    expected = prompt_types(ws_texts(t), step(t, "POST /prompt")["body"]["json"]["prompt_id"])
    assert [x for x in prompt_types(ws.texts, pid) if x != "progress_state"] == [
        x for x in expected if x != "progress_state"
    ]
    last = (await target.comfy.history(pid))["status"]["messages"][-1]
    assert last[0] == "execution_interrupted"
    assert (last[1]["node_id"], sorted(last[1]["executed"])) == ("3", ["1", "2"])
    await ws.close()


async def started(ws: Recorder, prompt_id: str) -> None:
    """Wait until a prompt runs: its worker may still be busy (e.g. collecting garbage) after
    the previous prompt. The capture saw A and E start about a millisecond before the next POST."""
    await ws.wait_for(lambda m: m["type"] == "execution_start" and m["data"]["prompt_id"] == prompt_id)


async def test_pending_delete_is_silent_running_delete_has_no_effect_front_jumps(target: Target) -> None:
    await target.require_probe_node()
    t = load("22_queue_delete_pending")
    ws = await target.comfy.connect()
    a = await target.comfy.submit(sleep_graph(40, 0.05, color=6952407), ws.client_id)
    await started(ws, a["prompt_id"])
    b = await target.comfy.submit(basic_graph("probe/small", 7028663, 8), ws.client_id)
    c = await target.comfy.submit(basic_graph("probe/small", 4086568, 8), ws.client_id)
    d = await target.comfy.submit(basic_graph("probe/small", 11371588, 8), ws.client_id, front=True)
    assert d["number"] == -(a["number"] + 3)
    await ws.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") == "2")
    queue = await target.comfy.get("/queue")
    assert [i[1] for i in queue["queue_running"]] == [a["prompt_id"]]
    assert sorted(i[1] for i in queue["queue_pending"]) == sorted(x["prompt_id"] for x in (b, c, d))
    for victim in (b, a):
        status, body, _ = await target.comfy.request("POST", "/queue", json={"delete": [victim["prompt_id"]]})
        assert (status, body) == (200, b"")
    queue = await target.comfy.get("/queue")
    assert [i[1] for i in queue["queue_running"]] == [a["prompt_id"]]
    assert await target.comfy.get("/prompt") == step(t, "GET /prompt")["body"]["json"]
    await target.comfy.request("POST", "/interrupt", json={"prompt_id": a["prompt_id"]})
    await ws.wait_done(c["prompt_id"])
    starts = [m["data"]["prompt_id"] for m in ws.texts if m["type"] == "execution_start"]
    assert starts == [a["prompt_id"], d["prompt_id"], c["prompt_id"]]
    assert not [m for m in ws.texts if m["data"].get("prompt_id") == b["prompt_id"]]
    assert await target.comfy.history(b["prompt_id"]) == {}
    e = await target.comfy.submit(sleep_graph(10, 0.05, color=5771414), ws.client_id)
    await started(ws, e["prompt_id"])
    f = await target.comfy.submit(basic_graph("probe/small", 6323807, 8), ws.client_id)
    await target.comfy.request("POST", "/queue", json={"clear": True})
    queue = await target.comfy.get("/queue")
    assert ([i[1] for i in queue["queue_running"]], queue["queue_pending"]) == ([e["prompt_id"]], [])
    await ws.wait_done(e["prompt_id"])
    assert await target.comfy.history(f["prompt_id"]) == {}
    await ws.close()
