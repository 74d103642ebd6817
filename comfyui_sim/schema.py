"""Node type descriptions in the two shapes ComfyUI's ``/object_info`` uses.

ComfyUI has "legacy" nodes (``INPUT_TYPES`` dicts) and "V3" nodes (``io.Schema``). They serialise
differently: V3 adds ``output_tooltips``/``deprecated``/``experimental``/``api_node``, its combos
are ``["COMBO", {"options": [...]}]`` (and so escape the ``value_not_in_list`` check), and its
hidden inputs are one-element lists. A client that parses object_info must cope with both, so the
simulator reproduces both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

InputSpec = tuple[Any, dict[str, Any]]
"""``(type, options)``; type is a string such as ``"INT"`` or a list of combo choices."""

HIDDEN_PROMPT = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


@dataclass
class NodeDef:
    """One node class: its published schema plus the coroutine that runs it."""

    name: str
    run: Callable[..., Awaitable[Any]]
    required: dict[str, InputSpec] = field(default_factory=dict)
    optional: dict[str, InputSpec] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    output_names: tuple[str, ...] | None = None
    output_node: bool = False
    display_name: str | None = None
    category: str = "sd"
    description: str = ""
    python_module: str = "nodes"
    output_tooltips: tuple[str, ...] | None = None
    v3: bool = False
    experimental: bool = False
    always_changed: bool = False
    """Never cached (the real node's IS_CHANGED returns a fresh value every time)."""
    validate: Callable[[dict[str, Any]], str | bool] | None = None
    """Like VALIDATE_INPUTS: gets the literal inputs it names, returns True or a message."""
    validate_inputs: tuple[str, ...] = ()
    change_key: Callable[[dict[str, Any]], str] | None = None
    """Like IS_CHANGED: extra text mixed into the cache signature (e.g. a file hash)."""

    def input_types(self) -> dict[str, dict[str, InputSpec]]:
        """The dict ``validate_inputs`` walks (V3 combos already in their ``COMBO`` form)."""
        out: dict[str, dict[str, InputSpec]] = {"required": dict(self.required)}
        if self.optional:
            out["optional"] = dict(self.optional)
        return out

    def info(self) -> dict[str, Any]:
        """The ``/object_info/{class}`` value."""
        inputs: dict[str, Any] = {"required": {k: list(v) for k, v in self.required.items()}}
        if self.optional:
            inputs["optional"] = {k: list(v) for k, v in self.optional.items()}
        if self.hidden:
            inputs["hidden"] = {k: [v] for k, v in self.hidden.items()} if self.v3 else dict(self.hidden)
        info: dict[str, Any] = {
            "input": inputs,
            "input_order": {key: list(value) for key, value in inputs.items()},
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.output_names or self.outputs),
            "name": self.name,
            "display_name": self.display_name or self.name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }
        if self.v3:
            info["output_tooltips"] = list(self.output_tooltips or [None] * len(self.outputs))
            info["deprecated"] = False
            info["experimental"] = self.experimental
            info["api_node"] = False
        elif self.output_tooltips is not None:
            info["output_tooltips"] = list(self.output_tooltips)
        return info


def combo_v3(options: list[str], **extra: Any) -> InputSpec:
    """A V3 combo: published as ``COMBO`` with its options, not validated against them."""
    return ("COMBO", {"multiselect": False, "options": options, **extra})


def integer(default: int, lo: int | None = None, hi: int | None = None, **extra: Any) -> InputSpec:
    opts: dict[str, Any] = {"default": default}
    if lo is not None:
        opts["min"] = lo
    if hi is not None:
        opts["max"] = hi
    return ("INT", opts | extra)


def floating(default: float, lo: float, hi: float, **extra: Any) -> InputSpec:
    return ("FLOAT", {"default": default, "min": lo, "max": hi} | extra)


def string(default: str, **extra: Any) -> InputSpec:
    return ("STRING", {"default": default, **extra})


def socket(kind: str, **extra: Any) -> InputSpec:
    return (kind, dict(extra))
