"""A finished prompt's outcome as its WebSocket pushes tell it, so that no ``/history`` is read.

For the client that queued a prompt, ComfyUI (0.3.x) sends ``execution_start``,
``execution_cached``, one ``executed`` per output node that ran or was taken from the cache (its UI
output: the files it wrote), and ``execution_success``, all before ``executing{node: null}``. Heard
in full on one unbroken socket, they name the same files as the history entry, so the follower
builds a history-shaped entry from them and the job downloads without asking ``/history``.

The pushes are trusted only as far as they can be checked; anything less and the follower reads
``/history`` as before:

- the socket stayed up under the prompt's clientId and the prompt was never polled for;
- the start, the cache report and the success were all heard;
- every cached node that no other node consumes (an output node) sent its ``executed``: ComfyUI
  before its 2024 execution rewrite sent none for cached nodes, while the history lists them;
- at least one file is delivered and every delivered file is the job's own: named by the prefix
  its saver got (``<folder>/<prompt_id>-<node>``, see ``workflows.apply_job_prefix``). The prompt
  id in the name is what proves the push is about this prompt and not a copy of another's.

File names go through the history's own check (:func:`~generator_service.comfy.outputs.parse_history`),
so a push naming ``..``, an absolute path, another folder or an over-long name fails the job with
DATA_LOSS before anything is downloaded, exactly like such a history entry.
"""

from __future__ import annotations

import posixpath
from typing import Any

from generator_service.comfy import events as ev
from generator_service.comfy.events import Event
from generator_service.comfy.outputs import OutputFile, parse_history

_REPORTS = ("execution_start", "execution_cached", "execution_success")
"""The prompt-level events a complete picture has, in the order ComfyUI sends them."""


class PushedOutcome:
    """Collects one prompt's pushes; :meth:`entry` says whether they tell the whole outcome."""

    def __init__(self, prompt_id: str, graph: dict[str, Any], *, include_previews: bool) -> None:
        self._prompt_id, self._graph, self._include_previews = prompt_id, graph, include_previews
        self._reports: dict[str, dict[str, Any]] = {}
        self._outputs: dict[str, Any] = {}
        self._executed: set[str] = set()
        self.gap = False
        """Something may have been missed: the socket dropped or changed, or the prompt was polled."""

    def note(self, event: Event) -> None:
        kind, data = event.kind, event.data
        if kind in (ev.WS_DOWN, ev.WS_UP):
            self.gap = True
        elif kind in _REPORTS:
            self._reports[kind] = data
        elif kind == "executed":
            node, output = str(data.get("node")), data.get("output")
            self._executed.add(node)
            if isinstance(output, dict):
                self._outputs[node] = output
            elif output is not None:
                self.gap = True  # a shape this reader does not know: let the history say

    def entry(self) -> dict[str, Any] | None:
        """A history-shaped entry built from the pushes, or None when ``/history`` must be read."""
        if self.gap or len(self._reports) != len(_REPORTS):
            return None
        entry: dict[str, Any] = {
            "prompt": [0, self._prompt_id, self._graph, {}, []],
            "outputs": dict(self._outputs),
            "status": {
                "status_str": "success",
                "completed": True,
                "messages": [[kind, self._reports[kind]] for kind in _REPORTS],
            },
        }
        listed = parse_history(entry, self._include_previews)
        if listed.refused:
            return entry  # fails the job as an unsafe history does, before any download
        if self._silent_cached_outputs() or not listed.files:
            return None
        if not all(self._own(file) for file in listed.files):
            return None
        return entry

    def _silent_cached_outputs(self) -> bool:
        cached = self._reports["execution_cached"].get("nodes")
        if not isinstance(cached, list):
            return True
        consumed = {
            str(value[0])
            for node in self._graph.values()
            if isinstance(node, dict) and isinstance(node.get("inputs"), dict)
            for value in node["inputs"].values()
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
        }
        return any(str(node) not in consumed and str(node) not in self._executed for node in cached)

    def _own(self, file: OutputFile) -> bool:
        """True when the file is one the job's saver wrote under the job's prefix."""
        node = self._graph.get(file.node_id)
        inputs = node.get("inputs") if isinstance(node, dict) else None
        prefix = inputs.get("filename_prefix") if isinstance(inputs, dict) else None
        if file.folder_type != "output" or not isinstance(prefix, str) or self._prompt_id not in prefix:
            return False
        normal = posixpath.normpath(prefix)
        return file.subfolder == posixpath.dirname(normal) and file.filename.startswith(
            posixpath.basename(normal) + "_"
        )
