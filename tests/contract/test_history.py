"""Scenarios 25-27: history paging/deletion, prompts without client_id, completion vs history."""

from __future__ import annotations

import asyncio
import uuid

from tests.contract.client import basic_graph, sleep_graph
from tests.contract.compare import load, step, ws_texts
from tests.contract.conftest import Target


async def test_history_paging_delete_and_clear(target: Target) -> None:
    t = load("25_history_ops")
    ws = await target.comfy.connect()
    ids = []
    for color in (12545543, 15138099, 12068011):
        pid = (await target.comfy.submit(basic_graph("probe/hist", color, 8), ws.client_id))["prompt_id"]
        await ws.wait_done(pid)
        ids.append(pid)
    everything = await target.comfy.get("/history")
    assert list(everything)[-3:] == ids, "oldest first, in insertion order"
    newest = await target.comfy.get("/history", params={"max_items": 2})
    assert list(newest) == ids[1:]
    assert len(step(t, "GET /history?max_items=2")["body"]["json"]) == 2
    oldest = await target.comfy.get("/history", params={"max_items": 1, "offset": 0})
    assert list(oldest) == list(everything)[:1]
    assert await target.comfy.get("/history/not-a-real-id") == {}
    for payload in ({"delete": [ids[0]]}, {"delete": ["nope"]}):
        assert (await target.comfy.request("POST", "/history", json=payload))[:2] == (200, b"")
    assert await target.comfy.history(ids[0]) == {}
    await target.comfy.request("POST", "/history", json={"clear": True})
    assert await target.comfy.get("/history") == {}
    assert await target.comfy.history(ids[2]) == {}
    await ws.close()


async def test_without_client_id_only_status_and_broadcast_progress_state_arrive(target: Target) -> None:
    t = load("26_no_client_id_and_custom_prompt_id")
    observer = await target.comfy.connect()
    pid = (await target.comfy.submit(basic_graph("probe/noclient", 251940, 8)))["prompt_id"]
    entry = await target.comfy.poll_history(pid)
    await asyncio.sleep(0.1)
    assert entry["prompt"][3] == {}
    captured = ws_texts(t, "observer")
    first_pid = step(t, "(a) POST")["body"]["json"]["prompt_id"]
    expected = {m["type"] for m in captured if m["data"].get("prompt_id") == first_pid}
    seen = {m["type"] for m in observer.texts if m["data"].get("prompt_id") == pid}
    assert seen == expected == {"progress_state"}
    await observer.close()


async def test_caller_prompt_id_is_used_and_a_reused_id_overwrites_history(target: Target) -> None:
    ws = await target.comfy.connect()
    chosen = str(uuid.uuid4())
    first = await target.comfy.submit(basic_graph("probe/myid", 7268825, 8), ws.client_id, prompt_id=chosen)
    second = await target.comfy.submit(basic_graph("probe/myid2", 4745882, 8), ws.client_id, prompt_id=chosen)
    assert first["prompt_id"] == second["prompt_id"] == chosen
    await ws.wait_for(
        lambda m: (
            m["type"] == "executing"
            and m["data"].get("node") is None
            and len([x for x in ws.texts if x["type"] == "execution_success"]) == 2
        )
    )
    entry = await target.comfy.history(chosen)
    assert entry["prompt"][0] == second["number"]
    assert entry["outputs"]["2"]["images"][0]["filename"].startswith("myid2_")
    await ws.close()


async def test_reconnect_while_running_sends_executing_without_prompt_id(target: Target) -> None:
    await target.require_probe_node()
    t = load("26_no_client_id_and_custom_prompt_id")
    client = uuid.uuid4().hex
    first = await target.comfy.connect(client)
    pid = (await target.comfy.submit(sleep_graph(15, 0.05, color=507324), client))["prompt_id"]
    await first.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") == "2")
    await first.close()
    again = await target.comfy.connect(client)
    await again.wait_done(pid)
    captured = ws_texts(t, "d-reconnected")
    assert [m["type"] for m in again.texts[:2]] == [m["type"] for m in captured[:2]]
    assert again.texts[1]["data"] == captured[1]["data"] == {"node": "2"}
    assert again.texts[0]["data"]["sid"] == client
    await again.close()


async def test_history_is_present_when_executing_null_arrives(target: Target) -> None:
    """27: a GET sent on executing{node:null} never comes back empty."""
    summary = load("27_completion_vs_history_race")["summary"]
    assert summary["immediate_get_on_executing_null"]["get_returned_empty"] == 0
    ws = await target.comfy.connect()
    for run in range(15):
        pid = (await target.comfy.submit(basic_graph(f"probe/race{run}", run, 8), ws.client_id))["prompt_id"]
        await ws.wait_done(pid)
        assert await target.comfy.history(pid), run
    await ws.close()


async def test_history_can_lag_execution_success_when_the_race_is_widened(target: Target) -> None:
    """27 (simulator knob): execution_success precedes the history write, as on the real server."""
    target.faults.history_delay_s = 0.3
    ws = await target.comfy.connect()
    pid = (await target.comfy.submit(basic_graph("probe/racewide"), ws.client_id))["prompt_id"]
    await ws.wait_for(lambda m: m["type"] == "execution_success" and m["data"]["prompt_id"] == pid)
    assert await target.comfy.history(pid) == {}
    await ws.wait_done(pid)
    assert await target.comfy.history(pid)
    await ws.close()
