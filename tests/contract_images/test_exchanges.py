"""Every Images API exchange the generator's images backend relies on, pinned.

Requests: ``POST /v1/images/generations`` (JSON), ``POST /v1/images/edits`` (multipart with an
``image`` file), both optionally streamed; ``GET /v1/models`` as the health probe. Answers: the
``data`` items (``b64_json``, or ``url`` for models that give URLs), ``n`` items, the settings and
``usage`` around them, the event stream's names and payloads, and the error envelope with the
statuses the backend maps (400 invalid/unknown parameter, 400 content policy, 401, 429 with
``retry-after``, 5xx).
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from tests.contract_images.conftest import Target

ERROR_KEYS = {"message", "type", "param", "code"}


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _events(raw: bytes) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), "")
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        events.append((name, json.loads(data)))
    return events


async def test_models_probe_answers_a_list(target: Target) -> None:
    response = await target.http.get(f"{target.url}/v1/models", headers=target.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert all({"id", "object"} <= set(item) for item in body["data"])


async def test_generation_answers_b64_json_items_with_settings_and_usage(target: Target) -> None:
    response = await target.generate(prompt="a small blue square", n=2, size="1024x1024", output_format="png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["created"], int)
    assert len(body["data"]) == 2
    for item in body["data"]:
        image = _image(base64.b64decode(item["b64_json"]))
        assert image.format == "PNG"
        assert image.size == (1024, 1024)
    assert body["output_format"] == "png"
    assert body["size"] == "1024x1024"
    assert {"input_tokens", "output_tokens", "total_tokens"} <= set(body["usage"])


@pytest.mark.parametrize(("fmt", "pil"), [("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_output_format_sets_the_encoding(target: Target, fmt: str, pil: str) -> None:
    response = await target.generate(prompt="a green circle", size="1536x1024", output_format=fmt)
    assert response.status_code == 200, response.text
    image = _image(base64.b64decode(response.json()["data"][0]["b64_json"]))
    assert image.format == pil
    assert image.size == (1536, 1024)


async def test_streamed_generation_sends_partials_then_completed(target: Target) -> None:
    response = await target.generate(prompt="a red triangle", stream=True, partial_images=2)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.content)
    names = [name for name, _ in events]
    assert names[-1] == "image_generation.completed"
    assert set(names[:-1]) <= {"image_generation.partial_image"}
    for name, data in events:
        assert data["type"] == name
        assert _image(base64.b64decode(str(data["b64_json"]))).format == "PNG"
    partial_indexes = [data["partial_image_index"] for name, data in events if name.endswith("partial_image")]
    assert partial_indexes == list(range(len(partial_indexes)))
    assert "usage" in events[-1][1]


async def test_edit_takes_a_multipart_image_and_answers_like_a_generation(target: Target) -> None:
    source = _png((256, 256), (10, 120, 200))
    response = await target.edit(source, prompt="add a yellow sun", size="1024x1024", n="1")
    assert response.status_code == 200, response.text
    assert _image(base64.b64decode(response.json()["data"][0]["b64_json"])).size == (1024, 1024)


async def test_streamed_edit_uses_image_edit_events(target: Target) -> None:
    source = _png((128, 128), (200, 10, 10))
    response = await target.edit(source, prompt="make it green", stream="true", partial_images="1")
    assert response.status_code == 200, response.text
    names = [name for name, _ in _events(response.content)]
    assert names[-1] == "image_edit.completed"
    assert set(names[:-1]) <= {"image_edit.partial_image"}


async def test_url_items_download_without_a_key(target: Target) -> None:
    if target.sim is None:
        pytest.skip("URL outputs come from dall-e models, not billed here")
    response = await target.http.post(
        f"{target.url}/v1/images/generations",
        headers=target.auth,
        json={"model": "dall-e-2", "prompt": "a tree", "size": "256x256", "response_format": "url"},
    )
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    download = await target.http.get(item["url"])
    assert download.status_code == 200
    assert int(download.headers["content-length"]) == len(download.content)
    assert _image(download.content).size == (256, 256)


async def test_unknown_parameter_is_400_naming_it(target: Target) -> None:
    response = await target.generate(prompt="x", colour="blue")
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["param"] == "colour"
    assert error["code"] == "unknown_parameter"


async def test_invalid_size_is_400_naming_it(target: Target) -> None:
    response = await target.generate(prompt="x", size="999x999")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "size"
    assert error["type"] == "invalid_request_error"


async def test_missing_or_wrong_key_is_401(target: Target) -> None:
    missing = await target.http.post(
        f"{target.url}/v1/images/generations", json={"model": target.model, "prompt": "x"}
    )
    assert missing.status_code == 401
    assert set(missing.json()["error"]) == ERROR_KEYS
    wrong = await target.http.post(
        f"{target.url}/v1/images/generations",
        json={"model": target.model, "prompt": "x"},
        headers={"Authorization": "Bearer sk-not-a-key"},
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"


async def test_content_policy_refusal_is_400_moderation_blocked(target: Target) -> None:
    target.faults.refuse_words = ["forbidden"]
    response = await target.generate(prompt="something forbidden")
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == "moderation_blocked"


async def test_rate_limit_is_429_with_retry_after(target: Target) -> None:
    target.faults.rate_limit_burst = 1
    target.faults.retry_after_s = 2.5
    response = await target.generate(prompt="x")
    assert response.status_code == 429
    assert float(response.headers["retry-after"]) == 2.5
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert (await target.generate(prompt="x")).status_code == 200


async def test_rate_limit_ratio_refuses_that_share(target: Target) -> None:
    target.faults.rate_limit_ratio = 0.5
    statuses = [(await target.generate(prompt="x", size="1024x1024")).status_code for _ in range(4)]
    assert sorted(statuses) == [200, 200, 429, 429]


async def test_server_error_is_500_with_the_envelope(target: Target) -> None:
    target.faults.server_errors = 1
    response = await target.generate(prompt="x")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


def _png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()
