"""Scenarios 10_* and 11: rejected graphs and bodies, with the real status codes and error shapes."""

from __future__ import annotations

import pytest

from tests.contract.client import Recorder
from tests.contract.compare import TRANSCRIPTS, first_difference, load, sorted_node_errors, step
from tests.contract.conftest import Target

INVALID = sorted(p.stem for p in TRANSCRIPTS.glob("10_invalid_*.json"))
ACCEPTED = {"10_invalid_numeric_string_input", "10_invalid_one_good_one_bad_output"}


@pytest.mark.parametrize("name", sorted(set(INVALID) - ACCEPTED))
async def test_invalid_graph_is_rejected_with_the_captured_error_body(target: Target, name: str) -> None:
    """Same status and body (values too); tracebacks are compared as lists only.

    The errors of one node are compared in a fixed order: the real server's order varies from
    one process to the next (see ``sorted_node_errors``).
    """
    t = load(name)
    ws = await target.comfy.connect()
    captured = step(t, "POST /prompt")
    payload = dict(captured["request"]["json"], client_id=ws.client_id)
    status, body, _ = await target.comfy.request("POST", "/prompt", json=payload)
    assert status == captured["status"] == 400
    expected, body = sorted_node_errors(captured["body"]["json"]), sorted_node_errors(body)
    difference = first_difference(expected, body, values=True, skip=(".traceback",))
    assert difference is None, difference
    await ws.close()
    assert not [m for m in ws.texts if m["type"] != "status"], "a rejected prompt sends no events"


async def _accepted(target: Target, name: str) -> tuple[dict, dict, Recorder]:
    t = load(name)
    ws = await target.comfy.connect()
    captured = step(t, "POST /prompt")
    payload = dict(captured["request"]["json"], client_id=ws.client_id)
    status, body, _ = await target.comfy.request("POST", "/prompt", json=payload)
    assert status == 200
    assert (
        first_difference(captured["body"]["json"], body, skip=(".traceback", "prompt_id", "number")) is None
    )
    await ws.wait_done(body["prompt_id"])
    return t, await target.comfy.history(body["prompt_id"]), ws


async def test_numeric_strings_and_floats_are_coerced_into_the_stored_prompt(target: Target) -> None:
    t, entry, ws = await _accepted(target, "10_invalid_numeric_string_input")
    expected = step(t, "GET /history")["body"]["json"]
    stored = next(iter(expected.values()))["prompt"][2]
    assert (
        entry["prompt"][2]["1"]["inputs"]
        == stored["1"]["inputs"]
        == {"width": 64, "height": 64, "batch_size": 1, "color": 0}
    )
    assert entry["status"]["status_str"] == "success"
    await ws.close()


async def test_one_bad_output_is_dropped_with_node_errors_on_a_200(target: Target) -> None:
    t, entry, ws = await _accepted(target, "10_invalid_one_good_one_bad_output")
    captured = step(t, "POST /prompt")["body"]["json"]["node_errors"]
    status, body, _ = await target.comfy.request(
        "POST", "/prompt", json=step(t, "POST /prompt")["request"]["json"]
    )
    assert status == 200
    difference = first_difference(
        sorted_node_errors({"node_errors": captured}),
        sorted_node_errors({"node_errors": body["node_errors"]}),
        values=True,
        skip=(".traceback",),
    )
    assert difference is None, difference
    assert list(entry["outputs"]) == ["2"]
    assert entry["prompt"][4] == ["2"]
    await ws.close()


@pytest.mark.parametrize("index", range(4))
async def test_malformed_request_bodies_get_the_captured_status_and_body(target: Target, index: int) -> None:
    t = load("11_invalid_request_bodies")
    captured = [s for s in t["steps"] if "request" in s][index]
    request = captured["request"]
    kwargs = (
        {"json": request["json"]}
        if "json" in request
        else {"data": request["content"], "headers": request["headers"]}
    )
    status, body, _ = await target.comfy.request("POST", "/prompt", **kwargs)
    assert status == captured["status"]
    expected = captured["body"].get("json", captured["body"].get("text"))
    assert body == expected
