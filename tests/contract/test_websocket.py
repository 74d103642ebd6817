"""Scenarios 28-29: two sockets sharing a clientId, and a flood of binary previews."""

from __future__ import annotations

import asyncio
import uuid

from tests.contract.client import sleep_graph
from tests.contract.compare import load
from tests.contract.conftest import Target


async def test_closing_the_older_socket_silences_the_newer_one(target: Target) -> None:
    """The real pitfall, reproduced on purpose: B loses every event once A closes."""
    await target.require_probe_node()
    t = load("28_ws_same_clientid_overlap")
    client = uuid.uuid4().hex
    a = await target.comfy.connect(client)
    b = await target.comfy.connect(client)
    pid = (await target.comfy.submit(sleep_graph(10, 0.05, color=10614970), client))["prompt_id"]
    await b.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") == "2")
    await a.close()
    entry = await target.comfy.poll_history(pid)
    await asyncio.sleep(0.2)
    assert entry["status"]["status_str"] == "success"
    assert [m["type"] for m in a.texts] == ["status"]
    assert not [m for m in b.texts if m["type"] == "executing" and m["data"].get("node") is None]
    assert "B got executing{node:null}: False" in t["notes"]
    await b.close()


async def test_many_binary_previews_all_arrive_and_leave_no_history_outputs(target: Target) -> None:
    """29 with a smaller batch; the simulator does not reproduce the multi-second HTTP starvation."""
    t = load("29_http_starved_during_preview_flood")
    assert "200/200 previews" in " ".join(t["notes"])
    ws = await target.comfy.connect()
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 256, "height": 256, "batch_size": 40, "color": 10355019},
        },
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
    pid = (await target.comfy.submit(graph, ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    assert len(ws.binaries) == 40
    assert all(frame[:8].hex() == "0000000100000002" for frame in ws.binaries)
    progress = [m["data"]["value"] for m in ws.texts if m["type"] == "progress"]
    assert progress == list(range(40))
    entry = await target.comfy.history(pid)
    assert (entry["status"]["status_str"], entry["outputs"]) == ("success", {})
    await ws.close()
