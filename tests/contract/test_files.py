"""Scenarios 23-24: uploads and the /view path validation."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.contract.client import basic_graph
from tests.contract.compare import load
from tests.contract.conftest import Target

T23 = load("23_upload_image")
T24 = load("24_view_path_validation")
PNG_A = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


def form(name: str, data: bytes, **fields: str) -> dict[str, Any]:
    """A raw multipart body (aiohttp's FormData would percent-encode a ``../`` filename)."""
    boundary = "comfyui-sim-test-boundary"
    field = fields.pop("field", "image")
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return {"data": body, "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"}}


async def test_upload_variants_answer_like_the_capture(target: Target) -> None:
    steps = [s for s in T23["steps"] if s.get("request", {}).get("path", "").endswith("/upload/image")]
    # random: a real server keeps its input folder, and a repeated name would change the answers
    name = f"probe_{os.urandom(3).hex()}.png"
    other = PNG_A + b"xy"
    cases = [
        ("/upload/image", PNG_A, {}),
        ("/upload/image", PNG_A, {}),
        ("/upload/image", other, {}),
        ("/upload/image", other, {"overwrite": "true"}),
        ("/upload/image", PNG_A, {"subfolder": "gen/sub"}),
        ("/upload/image", PNG_A, {"type": "temp"}),
        ("/upload/image", PNG_A, {"subfolder": "../.."}),
        ("/upload/image", PNG_A, {"name": "../evil.png"}),
        ("/upload/image", PNG_A, {"field": "file"}),
        ("/api/upload/image", PNG_A, {"subfolder": "gen/api"}),
    ]
    for (path, data, fields), captured in zip(cases, steps, strict=True):
        fname = fields.pop("name", name)
        status, body, _ = await target.comfy.request("POST", path, **form(fname, data, **fields))
        assert status == captured["status"], captured["step"]
        if status == 200:
            expected = dict(captured["body"]["json"])
            expected["name"] = expected["name"].replace("probe_dacc42", name[:-4])
            assert body == expected, captured["step"]
    ws = await target.comfy.connect()
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": f"gen/sub/{name}"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "probe/fromupload"},
        },
        "4": {"class_type": "LoadImage", "inputs": {"image": f"{name} [temp]"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "probe/fromtemp"}},
    }
    pid = (await target.comfy.submit(graph, ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    entry = await target.comfy.history(pid)
    assert entry["status"]["status_str"] == "success"
    assert sorted(entry["outputs"]) == ["3", "5"]
    status, body, _ = await target.comfy.request(
        "GET", "/view", params={"filename": name, "subfolder": "gen/sub", "type": "input"}
    )
    assert (status, body) == (200, PNG_A)
    await ws.close()


async def test_upload_with_unknown_type_is_a_server_error(target: Target) -> None:
    status, _, _ = await target.comfy.request("POST", "/upload/image", **form("x.png", PNG_A, type="bogus"))
    assert status == 500


@pytest.mark.parametrize("index", range(len([s for s in T24["steps"] if "request" in s])))
async def test_view_validation_order_and_headers_match_capture(target: Target, index: int) -> None:
    ws = await target.comfy.connect()
    pid = (await target.comfy.submit(basic_graph("probe/basic"), ws.client_id))["prompt_id"]
    await ws.wait_done(pid)
    ref = (await target.comfy.history(pid))["outputs"]["2"]["images"][0]
    await ws.close()
    captured = [s for s in T24["steps"] if "request" in s][index]
    request = captured["request"]
    params = {
        k: str(v).replace("basic_00001_.png", ref["filename"]) for k, v in request.get("params", {}).items()
    }
    path = request["path"]
    status, body, response = await target.comfy.request(
        "GET", path, params=params or None, headers=request.get("headers")
    )
    assert status == captured["status"], captured["step"]
    expected_headers = {k for k in captured["headers"] if k not in ("etag", "last-modified") or status != 200}
    assert expected_headers <= {k.lower() for k in response.headers}, captured["step"]
    if status in (200, 206):
        assert response.headers["Content-Type"] == captured["headers"]["content-type"]
        assert body[:8] == bytes.fromhex(captured["body"]["first16_hex"])[:8]
        if status == 206:
            assert len(body) == captured["body"]["bytes_len"]
