"""Streaming decoders against the simulator's real answers, cut at every kind of boundary."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from generator_service.providers.b64stream import (
    B64JsonScanner,
    EventData,
    EventEnd,
    EventName,
    ImageBytes,
    ImageEnd,
    ImageStart,
    MalformedBody,
    sse_events,
)
from images_api_sim import ImagesSimHandle
from tests.providers.conftest import IMAGES_KEY


def _cuts(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        step = rng.choice([1, 2, 3, 5, 7, 64, 4096])
        pieces.append(data[i : i + step])
        i += step
    return pieces


def _scan(pieces: list[bytes]) -> tuple[list[bytes], B64JsonScanner]:
    scanner = B64JsonScanner()
    images: list[bytearray] = []
    for piece in pieces:
        for part in scanner.feed(piece):
            if isinstance(part, ImageStart):
                images.append(bytearray())
            elif isinstance(part, ImageBytes):
                images[-1] += part.data
            elif isinstance(part, ImageEnd):
                assert part.index == len(images) - 1
    return [bytes(i) for i in images], scanner


async def _post(sim: ImagesSimHandle, body: dict[str, object]) -> bytes:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            f"{sim.url}/v1/images/generations", json=body, headers={"Authorization": f"Bearer {IMAGES_KEY}"}
        )
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_scanner_matches_a_whole_json_decode(images_sim: ImagesSimHandle, seed: int) -> None:
    raw = await _post(images_sim, {"model": "gpt-image-1", "prompt": f"p{seed}", "n": 2, "size": "1024x1024"})
    expected = [base64.b64decode(item["b64_json"]) for item in json.loads(raw)["data"]]
    images, scanner = _scan(_cuts(raw, seed))
    assert images == expected
    document = scanner.document()
    assert [item["b64_json"] for item in document["data"]] == ["", ""]
    assert document["usage"]["total_tokens"] > 0


def test_scanner_handles_escaped_slashes_and_other_strings() -> None:
    payload = bytes(range(256)) * 3
    text = base64.b64encode(payload).decode().replace("/", "\\/")
    raw = ('{"note": "b64_json \\" is a key", "data": [{"b64_json" :  "' + text + '", "x": "y"}]}').encode()
    images, scanner = _scan(_cuts(raw, 9))
    assert images == [payload]
    assert scanner.document()["note"] == 'b64_json " is a key'


def test_scanner_refuses_broken_base64_and_broken_json() -> None:
    with pytest.raises(MalformedBody):
        B64JsonScanner().feed(b'{"data": [{"b64_json": "abc!"}]}')
    scanner = B64JsonScanner()
    scanner.feed(b'{"data": [{"b64_json": "QUJD')
    with pytest.raises(MalformedBody):
        scanner.document()


async def _pieces(raw: bytes, seed: int) -> AsyncIterator[bytes]:
    for piece in _cuts(raw, seed):
        yield piece


@pytest.mark.parametrize("seed", [4, 5])
async def test_event_stream_is_split_into_events(images_sim: ImagesSimHandle, seed: int) -> None:
    raw = await _post(
        images_sim, {"model": "gpt-image-1", "prompt": "s", "stream": True, "partial_images": 2}
    )
    events: list[tuple[str, bytes]] = []
    name, data = "", bytearray()
    async for piece in sse_events(_pieces(raw, seed)):
        if isinstance(piece, EventName):
            name = piece.name
        elif isinstance(piece, EventData):
            data += piece.data
        elif isinstance(piece, EventEnd):
            events.append((name, bytes(data)))
            name, data = "", bytearray()
    assert [n for n, _ in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [json.loads(d)["type"] for _, d in events] == [n for n, _ in events]


def test_scanner_hands_bytes_on_before_the_document_ends() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    raw = b'{"created": 1, "data": [{"b64_json": "' + base64.b64encode(payload) + b'"}], "usage": {}}'
    scanner = B64JsonScanner()
    half = len(raw) // 2
    early = sum(len(p.data) for p in scanner.feed(raw[:half]) if isinstance(p, ImageBytes))
    assert len(payload) * 0.45 < early < len(payload)
    late = sum(len(p.data) for p in scanner.feed(raw[half:]) if isinstance(p, ImageBytes))
    assert early + late == len(payload)
