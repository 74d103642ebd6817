"""Scenario 12: graphs that pass validation and fail while running (execution_error)."""

from __future__ import annotations

from tests.contract.compare import first_difference, load, prompt_types, step, ws_texts
from tests.contract.conftest import Target

T = load("12_runtime_error")


def captured_error(nth: int) -> dict:
    return [m for m in ws_texts(T) if m["type"] == "execution_error"][nth]["data"]


async def test_prefix_escaping_output_dir_fails_at_run_time_keeping_earlier_outputs(target: Target) -> None:
    ws = await target.comfy.connect()
    graph = step(T, "POST /prompt (save outside")["request"]["json"]["prompt"]
    pid = (await target.comfy.submit(graph, ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    captured_pid = step(T, "POST /prompt (save outside")["body"]["json"]["prompt_id"]
    assert prompt_types(ws.texts, pid) == prompt_types(ws_texts(T), captured_pid)
    error = next(m for m in ws.texts if m["type"] == "execution_error")["data"]
    expected = captured_error(0)
    assert first_difference(expected, error, skip=("timestamp",)) is None
    assert (error["node_id"], error["node_type"], error["exception_type"]) == ("3", "SaveImage", "Exception")
    assert sorted(error["executed"]) == sorted(expected["executed"])
    assert error["exception_message"].startswith("**** ERROR: Saving image outside the output folder")
    entry = await target.comfy.history(pid)
    assert (entry["status"]["status_str"], entry["status"]["completed"]) == ("error", False)
    assert list(entry["outputs"]) == ["4"]
    status, _, _ = await target.comfy.request("GET", "/view", params=entry["outputs"]["4"]["images"][0])
    assert status == 200
    await ws.close()


async def test_loadimage_of_a_non_image_upload_fails_at_run_time(target: Target) -> None:
    ws = await target.comfy.connect()
    upload = step(T, "upload a text file")
    data = {"image": (b"this is not an image", "notimage.png"), "overwrite": "true"}
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("image", data["image"][0], filename="notimage.png", content_type="image/png")
    form.add_field("overwrite", "true")
    status, body, _ = await target.comfy.request("POST", "/upload/image", data=form)
    assert (status, body) == (upload["status"], upload["body"]["json"])
    graph = step(T, "POST /prompt (LoadImage")["request"]["json"]["prompt"]
    pid = (await target.comfy.submit(graph, ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    error = next(m for m in ws.texts if m["type"] == "execution_error")["data"]
    assert first_difference(captured_error(1), error, skip=("timestamp",)) is None
    assert (error["node_id"], error["exception_type"], error["executed"]) == (
        "1",
        "PIL.UnidentifiedImageError",
        [],
    )
    assert "cannot identify image file" in error["exception_message"]
    assert (await target.comfy.history(pid))["outputs"] == {}
    await ws.close()
