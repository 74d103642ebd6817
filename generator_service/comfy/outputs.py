"""Read a ComfyUI history entry: how the prompt ended and which files it produced.

Output keys differ per node type (``images``, ``audio``, ``latents``, ``3d`` ...; video is listed
under ``images`` with ``animated``), so every list value of every output node is walked and each
dict with a ``filename`` is taken. Only names without path parts and of the known folder types
are accepted: the generator must never be steered into requesting a file the job did not make.
The others are kept apart in ``refused``, so the job fails instead of quietly delivering less
than the backend says it made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("mediagen.generator.outputs")


@dataclass(frozen=True)
class OutputFile:
    node_id: str
    filename: str
    subfolder: str
    folder_type: str
    animated: bool = False


@dataclass
class Outcome:
    """``status`` is ``success``, ``error`` or ``interrupted``; ``error`` holds execution_error data."""

    status: str
    files: list[OutputFile] = field(default_factory=list)
    cached: bool = False
    error: dict[str, Any] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    """Names of listed files that are not fetched: path parts, or a folder other than output/temp."""


def parse_history(entry: dict[str, Any], include_previews: bool) -> Outcome:
    messages = entry.get("status", {}).get("messages", [])
    by_kind = {m[0]: m[1] for m in messages if isinstance(m, list) and len(m) == 2 and isinstance(m[1], dict)}
    if "execution_error" in by_kind:
        outcome = Outcome("error", error=by_kind["execution_error"])
    elif "execution_interrupted" in by_kind:
        outcome = Outcome("interrupted", error=by_kind["execution_interrupted"])
    elif entry.get("status", {}).get("status_str", "success") == "success":
        outcome = Outcome("success")
    else:
        outcome = Outcome("error")
    outcome.cached = _fully_cached(entry, by_kind.get("execution_cached", {}))
    outputs = entry.get("outputs", {})
    outcome.files = _files(outputs if isinstance(outputs, dict) else {}, include_previews, outcome.refused)
    return outcome


def _fully_cached(entry: dict[str, Any], cached: dict[str, Any]) -> bool:
    prompt = entry.get("prompt", [])
    graph = prompt[2] if isinstance(prompt, list) and len(prompt) > 2 and isinstance(prompt[2], dict) else {}
    nodes = {str(n) for n in cached.get("nodes", [])}
    return bool(graph) and set(graph) <= nodes


def _files(outputs: dict[str, Any], include_previews: bool, refused: list[str]) -> list[OutputFile]:
    found: list[OutputFile] = []
    for node_id, ui in sorted(outputs.items(), key=lambda kv: _node_order(kv[0])):
        if not isinstance(ui, dict):
            continue
        flags = ui.get("animated")
        animated = isinstance(flags, list) and any(bool(flag) for flag in flags)
        for value in ui.values():
            for item in value if isinstance(value, list) else []:
                if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
                    continue
                file = _file(str(node_id), item, animated)
                if file is None:
                    refused.append(item["filename"])
                elif file.folder_type == "output" or include_previews:
                    found.append(file)
    return found


def _file(node_id: str, item: dict[str, Any], animated: bool) -> OutputFile | None:
    """The file an entry names, or None when it may not be fetched."""
    name, subfolder = item["filename"], str(item.get("subfolder") or "")
    folder_type = str(item.get("type") or "output")
    if not is_safe_name(name) or not is_safe_subfolder(subfolder) or folder_type not in ("output", "temp"):
        log.warning(
            "refusing output %r (subfolder %r, type %r) of node %s",
            name[:200],
            subfolder[:200],
            folder_type[:40],
            node_id[:40],
        )
        return None
    return OutputFile(node_id, name, subfolder, folder_type, animated)


NAME_MAX = 255
PATH_MAX = 4096
"""Longest file name and path a file system holds: a longer one names no file ComfyUI wrote."""


def is_safe_name(name: str) -> bool:
    return (
        bool(name)
        and len(name.encode("utf-8", "surrogatepass")) <= NAME_MAX
        and "/" not in name
        and "\\" not in name
        and ".." not in name
        and "\x00" not in name
    )


def is_safe_subfolder(subfolder: str) -> bool:
    parts = subfolder.replace("\\", "/").split("/")
    return (
        len(subfolder.encode("utf-8", "surrogatepass")) <= PATH_MAX
        and not subfolder.startswith(("/", "\\"))
        and ".." not in parts
        and "\x00" not in subfolder
    )


def _node_order(node_id: str) -> tuple[int, str]:
    numeric = node_id.isascii() and node_id.isdigit()  # isdigit() alone admits "²", which int() refuses
    return (int(node_id), "") if numeric else (1 << 62, node_id)
