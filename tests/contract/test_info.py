"""Scenario 01: the informational endpoints answer like the captured server."""

from __future__ import annotations

from tests.contract.compare import first_difference, load, step
from tests.contract.conftest import Target

T = load("01_system_info")


async def test_system_stats_has_the_captured_key_structure(target: Target) -> None:
    body = await target.comfy.get("/system_stats")
    assert first_difference(step(T, "GET /system_stats")["body"]["json"], body) is None


async def test_idle_queue_prompt_and_features_match_captured_values(target: Target) -> None:
    for path in ("/queue", "/prompt", "/features", "/api/queue"):
        expected = step(T, f"GET {path}")["body"]["json"]
        assert await target.comfy.get(path) == expected, path


async def test_object_info_of_emptyimage_and_saveimage_equals_the_real_schema(target: Target) -> None:
    for name in ("EmptyImage", "SaveImage"):
        expected = step(T, f"GET /object_info/{name}")["body"]["json"]
        assert await target.comfy.get(f"/object_info/{name}") == expected


async def test_object_info_of_unknown_class_is_empty_object(target: Target) -> None:
    assert await target.comfy.get("/object_info/NoSuchNode") == {}


async def test_full_object_info_lists_every_class_with_the_per_class_shape(target: Target) -> None:
    """The simulator deliberately lists ~40 classes, not the real server's ~500."""
    body = await target.comfy.get("/object_info")
    assert {"EmptyImage", "SaveImage", "KSampler", "SaveVideo"} <= set(body)
    shape = step(T, "GET /object_info/EmptyImage")["body"]["json"]["EmptyImage"]
    for name, info in body.items():
        assert set(shape) <= set(info), name
        assert info["name"] == name
