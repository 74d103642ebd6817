"""Each fault knob does what it says, in-process and over /sim/faults."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.contract.client import basic_graph, sleep_graph
from tests.simulator.conftest import Running
from tests.simulator.graphs import text_to_image


async def test_fail_node_by_class_gives_a_real_execution_error(running: Running) -> None:
    running.sim.faults.fail_nodes["KSampler"] = "CUDA out of memory (injected)"
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(text_to_image(1), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    error = next(m for m in ws.texts if m["type"] == "execution_error")["data"]
    assert (error["node_id"], error["node_type"], error["exception_type"]) == (
        "5",
        "KSampler",
        "RuntimeError",
    )
    assert error["exception_message"] == "CUDA out of memory (injected)\n"
    assert set(error) >= {"traceback", "current_inputs", "current_outputs", "executed"}
    await ws.close()


async def test_hung_node_only_ends_by_interrupt(running: Running) -> None:
    running.sim.faults.hang_nodes.append("2")
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(basic_graph("x/hang"), ws.client_id))["prompt_id"]
    await asyncio.sleep(0.3)
    assert running.sim.state()["running"] == [pid]
    await running.comfy.request("POST", "/interrupt", json={"prompt_id": pid})
    await ws.wait_done(pid)
    assert (await running.comfy.history(pid))["status"]["messages"][-1][0] == "execution_interrupted"
    assert running.sim.state()["interrupts"] == 1
    await ws.close()


async def test_node_delay_and_step_delay_slow_the_run(running: Running) -> None:
    running.sim.faults.node_delay_s["EmptyImage"] = 0.3
    running.sim.faults.step_delay_s = 0.05
    ws = await running.comfy.connect()
    started = time.monotonic()
    pid = (await running.comfy.submit(text_to_image(3), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    assert time.monotonic() - started >= 0.2  # 4 steps x 0.05 s
    pid = (await running.comfy.submit(basic_graph("x/delay"), ws.client_id))["prompt_id"]
    started = time.monotonic()
    await ws.wait_done(pid)
    assert time.monotonic() - started >= 0.3
    await ws.close()


async def test_drop_ws_after_n_events_closes_every_socket(running: Running) -> None:
    ws = await running.comfy.connect()
    await running.comfy.request("POST", "/sim/faults", json={"drop_ws_after_events": 3})
    pid = (await running.comfy.submit(basic_graph("x/drop"), ws.client_id))["prompt_id"]
    await asyncio.wait_for(ws.closed.wait(), 5)
    assert len(ws.texts) == 1 + 3
    assert (await running.comfy.poll_history(pid))["status"]["status_str"] == "success"
    assert running.sim.faults.drop_ws_after_events is None


async def test_drop_ws_when_a_node_starts(running: Running) -> None:
    running.sim.faults.drop_ws_on_node.append("SaveImage")
    ws = await running.comfy.connect()
    await running.comfy.submit(basic_graph("x/dropnode"), ws.client_id)
    await asyncio.wait_for(ws.closed.wait(), 5)
    assert [m["data"].get("node") for m in ws.texts if m["type"] == "executing"] == ["1", "2"]


async def test_silent_mode_sends_no_prompt_events_but_history_is_written(running: Running) -> None:
    running.sim.faults.silent_prompts = True
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(sleep_graph(3, 0.01), ws.client_id))["prompt_id"]
    await running.comfy.poll_history(pid)
    await asyncio.sleep(0.1)
    assert {m["type"] for m in ws.texts} == {"status"}
    await ws.close()


async def _saved(running: Running) -> dict[str, str]:
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(text_to_image(4, width=256, height=256), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    await ws.close()
    return (await running.comfy.history(pid))["outputs"]["7"]["images"][0]  # type: ignore[no-any-return]


async def test_view_faults_slow_truncate_and_corrupt(running: Running) -> None:
    ref = await _saved(running)
    _, good, _ = await running.comfy.request("GET", "/view", params=ref)
    running.sim.faults.view_bytes_per_s = len(good) / 0.4
    started = time.monotonic()
    _, slow, _ = await running.comfy.request("GET", "/view", params=ref)
    assert slow == good
    assert time.monotonic() - started >= 0.3
    running.sim.faults.view_bytes_per_s = None
    running.sim.faults.view_corrupt = True
    _, bad, response = await running.comfy.request("GET", "/view", params=ref)
    assert len(bad) == len(good) == int(response.headers["Content-Length"])
    assert bad != good
    running.sim.faults.view_corrupt = False
    running.sim.faults.view_truncate_after = 100
    with pytest.raises(aiohttp.ClientPayloadError):
        await running.comfy.request("GET", "/view", params=ref)
    assert running.sim.state()["files_served"] == 4


async def test_http_control_endpoints_edit_the_same_faults_and_report_state(running: Running) -> None:
    status, body, _ = await running.comfy.request("POST", "/sim/faults", json={"step_delay_s": 0.5})
    assert status == 200
    assert body["step_delay_s"] == 0.5 == running.sim.faults.step_delay_s
    status, body, _ = await running.comfy.request("POST", "/sim/faults", json={"no_such_knob": 1})
    assert status == 400
    status, body, _ = await running.comfy.request("POST", "/sim/faults", json={"reset": True})
    assert body["step_delay_s"] == 0.02
    state = await running.comfy.get("/sim/state")
    assert {"running", "pending", "interrupts", "files_served", "ws_clients", "faults"} <= set(state)


async def test_origin_not_matching_a_loopback_host_is_forbidden(running: Running) -> None:
    status, _, _ = await running.comfy.request("GET", "/queue", headers={"Origin": "http://evil.example"})
    assert status == 403
    host = running.sim.url.split("//")[1]
    status, _, _ = await running.comfy.request("GET", "/queue", headers={"Origin": f"http://{host}"})
    assert status == 200


async def test_free_memory_drops_the_node_cache(running: Running) -> None:
    ws = await running.comfy.connect()
    pid = (await running.comfy.submit(basic_graph("x/free"), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    await running.comfy.request("POST", "/free", json={"free_memory": True})
    pid = (await running.comfy.submit(basic_graph("x/free"), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    pid = (await running.comfy.submit(basic_graph("x/free"), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    cached = [m["data"]["nodes"] for m in ws.texts if m["type"] == "execution_cached"]
    assert cached == [[], [], ["1", "2"]]
    assert running.sim.state()["frees"] == 1
    await ws.close()
