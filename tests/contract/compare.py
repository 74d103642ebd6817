"""Structural comparison of captured ComfyUI exchanges with live answers.

``first_difference`` walks two JSON values together and returns the path of the first place they
disagree (``None`` when they agree): dict key sets always, JSON types always, and values only
when asked (``values=True``) or at paths listed in ``exact``. Lists are compared item by item up
to the shorter length unless ``lengths=True``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "comfyui" / "transcripts"


def load(name: str) -> dict[str, Any]:
    """A transcript by file stem, e.g. ``"02_basic_image_run"``."""
    return json.loads((TRANSCRIPTS / f"{name}.json").read_text())


def step(transcript: dict[str, Any], prefix: str, nth: int = 0) -> dict[str, Any]:
    found = [s for s in transcript["steps"] if s["step"].startswith(prefix) and "request" in s]
    return found[nth]


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def first_difference(
    expected: Any,
    actual: Any,
    path: str = "$",
    *,
    values: bool = False,
    lengths: bool = False,
    exact: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
) -> str | None:
    """Path and reason of the first mismatch, or None. ``skip``/``exact`` match path suffixes."""
    if any(path.endswith(s) for s in skip):
        return None
    if kind(expected) != kind(actual):
        return f"{path}: type {kind(expected)} != {kind(actual)}"
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            return f"{path}: keys {sorted(set(expected) ^ set(actual))} differ"
        for key in expected:
            found = first_difference(
                expected[key],
                actual[key],
                f"{path}.{key}",
                values=values,
                lengths=lengths,
                exact=exact,
                skip=skip,
            )
            if found:
                return found
        return None
    if isinstance(expected, list):
        if (lengths or values or any(path.endswith(e) for e in exact)) and len(expected) != len(actual):
            return f"{path}: length {len(expected)} != {len(actual)}"
        for index, (a, b) in enumerate(zip(expected, actual, strict=False)):
            found = first_difference(
                a, b, f"{path}[{index}]", values=values, lengths=lengths, exact=exact, skip=skip
            )
            if found:
                return found
        return None
    if (values or any(path.endswith(e) for e in exact)) and expected != actual:
        return f"{path}: {expected!r} != {actual!r}"
    return None


def sorted_node_errors(body: Any) -> Any:
    """A copy of a ``/prompt`` error body with each node's ``errors`` in a fixed order.

    The real server walks a node's inputs as a ``set`` (``validate_inputs`` in execution.py), so
    the order of several errors on one node follows Python's per-process string hashing: the
    capture listed width before height, a later real server height before width. Only the set
    of errors is part of the contract.
    """
    if not isinstance(body, dict) or not isinstance(body.get("node_errors"), dict):
        return body
    nodes = {
        node_id: {
            **entry,
            "errors": sorted(entry["errors"], key=lambda e: (e["type"], str(e.get("details")))),
        }
        for node_id, entry in body["node_errors"].items()
    }
    return {**body, "node_errors": nodes}


def ws_texts(transcript: dict[str, Any], conn: str | None = None) -> list[dict[str, Any]]:
    return [
        m["msg"]
        for m in transcript["ws_messages"]
        if m["kind"] == "text" and (conn is None or m.get("conn") == conn)
    ]


def prompt_types(messages: list[dict[str, Any]], prompt_id: str) -> list[str]:
    """Types of the text events that belong to one prompt, in order (status excluded)."""
    return [
        m["type"]
        for m in messages
        if isinstance(m.get("data"), dict) and m["data"].get("prompt_id") == prompt_id
    ]


def executing_nodes(messages: list[dict[str, Any]], prompt_id: str) -> list[str | None]:
    return [
        m["data"]["node"]
        for m in messages
        if m["type"] == "executing" and m["data"].get("prompt_id") == prompt_id
    ]


SAVED_NAME = re.compile(r"^(?P<base>.+)_(?P<counter>\d{5})_\.(?P<ext>[a-z0-9]+)$")


def same_file_pattern(expected: str, actual: str) -> bool:
    """``x_00001_.png`` vs ``x_00003_.png``: same base and extension (counters depend on history)."""
    a, b = SAVED_NAME.match(expected), SAVED_NAME.match(actual)
    if a is None or b is None:
        return expected == actual
    return (a["base"].split("_temp_")[0], a["ext"]) == (b["base"].split("_temp_")[0], b["ext"])
