"""Raw ComfyUI graphs as a hostile caller writes them: JSON text that is broken, deep, cyclic,
ill-typed, huge, or fine.

Each strategy yields the JSON *text* (``raw_graph_json`` is a string), built without
``json.dumps`` where the shape itself is the attack (10,000 levels of nesting would overflow the
encoder before the server ever saw it).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from bench.fuzz.values import hostile_float, hostile_int, hostile_text

SMALL = 8  # pixels: a valid graph must run in milliseconds on the simulator


def small_image_graph(color: int = 0, width: int = SMALL, height: int = SMALL) -> dict[str, Any]:
    """A graph the simulator runs at once: one tiny solid image, saved."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "fuzz"}},
    }


def _dumps(graph: Any) -> str:
    return json.dumps(graph, allow_nan=True)


def valid_graph() -> st.SearchStrategy[str]:
    return st.builds(
        lambda color, w, h: _dumps(small_image_graph(color, w, h)),
        st.integers(0, 0xFFFFFF),
        st.integers(1, SMALL),
        st.integers(1, SMALL),
    )


def deep_graph() -> st.SearchStrategy[str]:
    """Nesting from a few levels to far past any recursion limit, in several positions."""

    def build(depth: int, where: str, opener: str) -> str:
        closer = "]" if opener == "[" else "}"
        inner = (opener if opener == "[" else '{"a":') * depth + "1" + closer * depth
        if where == "top":
            return inner
        if where == "input":
            return '{"1":{"class_type":"EmptyImage","inputs":{"width":' + inner + "}}}"
        return '{"1":{"class_type":' + inner + ',"inputs":{}}}'

    return st.builds(
        build,
        st.one_of(st.integers(1, 64), st.sampled_from((500, 999, 1000, 5000, 10_000, 100_000))),
        st.sampled_from(("top", "input", "class_type")),
        st.sampled_from(("[", "{")),
    )


def cyclic_graph() -> st.SearchStrategy[str]:
    """Nodes linked in a ring (or to themselves), with or without a saver hanging off it."""

    def build(size: int, with_saver: bool, class_type: str) -> str:
        graph: dict[str, Any] = {}
        for i in range(1, size + 1):
            nxt = str(i % size + 1)
            graph[str(i)] = {"class_type": class_type, "inputs": {"image": [nxt, 0], "images": [nxt, 0]}}
        if with_saver:
            graph["999"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
        return _dumps(graph)

    return st.builds(
        build,
        st.integers(1, 50),
        st.booleans(),
        st.sampled_from(("ImageInvert", "SaveImage", "PreviewImage", "NoSuchNode")),
    )


def _wrong_value() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        hostile_int(),
        hostile_float(),
        hostile_text(4096),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.sampled_from((["1", 0], ["1"], ["1", 0, 0], [1, 0], ["1", "0"], ["1", 1.5], ["999", 0])),
        st.sampled_from((["1", -1], ["1", 2**70], ["2", 2**31], [None, 0], ["1", True])),
    )


def wrongly_typed_graph() -> st.SearchStrategy[str]:
    """The right outline with one part of the wrong type or out of range."""
    node = st.fixed_dictionaries(
        {
            "class_type": st.one_of(
                st.sampled_from(("EmptyImage", "SaveImage", "LoadImage", "")), _wrong_value()
            )
        },
        optional={
            "inputs": st.one_of(
                st.dictionaries(
                    st.sampled_from(
                        ("width", "height", "images", "image", "color", "batch_size", "filename_prefix")
                    ),
                    _wrong_value(),
                    max_size=5,
                ),
                _wrong_value(),
            )
        },
    )
    graph = st.one_of(
        st.dictionaries(st.one_of(st.sampled_from(("1", "2", "")), hostile_text(256)), node, max_size=4),
        _wrong_value(),
        st.lists(node, max_size=3),
    )
    return graph.map(_dumps)


def huge_graph() -> st.SearchStrategy[str]:
    """Many nodes, or one node with an enormous value, up to a few MiB of JSON."""

    def many(count: int) -> str:
        nodes = {
            str(i): {
                "class_type": "EmptyImage",
                "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            }
            for i in range(count)
        }
        return _dumps(nodes)

    def long_value(text: str) -> str:
        return _dumps({"1": {"class_type": "EmptyImage", "inputs": {"width": text}}, text[:1000]: {}})

    return st.one_of(
        st.builds(many, st.sampled_from((1000, 20_000, 60_000))),
        st.builds(long_value, hostile_text(3 * 1024 * 1024)),
    )


def broken_json() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            (
                "",
                "{",
                "null",
                "[]",
                "{}",
                "NaN",
                "Infinity",
                '{"1": NaN}',
                '{"1": {"class_type": "EmptyImage", "inputs": {"width": NaN, "height": -Infinity}}}',
                '{"1": {"class_type": "EmptyImage", "inputs": {"width": 1e999}}}',
                '{"1": {"class_type": "EmptyImage", "inputs": {"width": ' + "9" * 5000 + "}}}",
                '{"1": {"class_type": "EmptyImage", "inputs": {}}, "1": {"class_type": "SaveImage"}}',
                "\ufeff{}",
                '{"\\ud800": {}}',
                '{"1": {"class_type": "\\u0000", "inputs": {}}}',
            )
        ),
        hostile_text(64 * 1024),
    )


def raw_graph_json() -> st.SearchStrategy[str]:
    return st.one_of(
        valid_graph(), deep_graph(), cyclic_graph(), wrongly_typed_graph(), huge_graph(), broken_json()
    )
