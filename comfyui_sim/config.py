"""Simulator settings and fault knobs.

Tests need to bend the simulator in ways a real ComfyUI only bends by accident (slow nodes,
dropped sockets, truncated downloads, a crashing process). All of those live in one mutable
:class:`Faults` object so that the in-process API, the CLI flags and the ``/sim/faults`` JSON
endpoint all edit the same thing with the same field names.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim_scaffold.faults import FaultKnobs


@dataclass
class Faults(FaultKnobs):
    """Knobs and injected faults. Every field is JSON-friendly and can be set over HTTP.

    Node selectors (``fail_nodes``, ``hang_nodes``, ``crash_on_node``, ``drop_ws_on_node``) match a
    node id (``"3"``) or a class name (``"KSampler"``).
    """

    node_delay_s: dict[str, float] = field(default_factory=dict)
    """Extra seconds spent in a node, keyed by class name (or node id)."""
    step_delay_s: float = 0.02
    """Seconds per progress step of KSampler (ProbeSleepProgress uses its own input)."""
    fail_nodes: dict[str, str] = field(default_factory=dict)
    """Selector -> exception message: the node raises at run time (real ``execution_error``)."""
    hang_nodes: list[str] = field(default_factory=list)
    """Selectors of nodes that never finish unless interrupted."""
    uninterruptible_s: dict[str, float] = field(default_factory=dict)
    """Selector -> seconds the node runs without looking at the interrupt flag (like a real node
    that reports no progress); it notices an interrupt only after them."""
    drop_ws_after_events: int | None = None
    """Close every WebSocket once this many more events have been sent (counted from now)."""
    drop_ws_on_node: list[str] = field(default_factory=list)
    """Close every WebSocket when a matching node starts."""
    crash_on_node: list[str] = field(default_factory=list)
    """``os._exit(3)`` the whole process when a matching node starts (subprocess use only)."""
    view_bytes_per_s: float | None = None
    """Throttle ``/view`` downloads to this many bytes per second."""
    view_truncate_after: int | None = None
    """``/view`` announces the full Content-Length, then closes after this many bytes."""
    view_corrupt: bool = False
    """``/view`` flips bytes of the body (same length, wrong content)."""
    silent_prompts: bool = False
    """Send no per-prompt WebSocket events at all (status still flows): watchdog tests."""
    history_delay_s: float = 0.0
    """Pause between ``execution_success`` and the history write (widens the real race)."""
    history_injected_files: list[dict[str, Any]] = field(default_factory=list)
    """File entries (``filename``, ``subfolder``, ``type``) every history entry lists under an extra
    output node ``"0"``, ahead of the real outputs, and that node's ``executed`` event announces
    before ``execution_success``: a backend naming files the job never made (``..`` or absolute
    paths, other folders, files that do not exist), on both channels clients learn outputs from."""
    cached_nodes_silent: bool = False
    """Send no ``executed`` for nodes taken from the cache, as ComfyUI did before its 2024
    execution rewrite (0.3.x sends one per cached output node); the history still lists them."""
    view_length_offset: int = 0
    """``/view`` announces the file's size plus this as Content-Length, sends the file, and closes
    the connection: positive promises bytes that never come, negative cuts the body short."""
    view_endless: bool = False
    """``/view`` answers without a Content-Length and repeats the file's bytes until the client
    leaves (at ``view_bytes_per_s`` when that is set)."""
    ws_foreign_events: bool = False
    """Every event sent for a prompt is sent again for another prompt: the first one waiting in
    the queue, or a made-up id when none waits."""


def node_matches(selectors: Collection[str], node_id: str, class_type: str) -> str | None:
    """Return the matching selector (node id first), or None."""
    for key in (node_id, class_type):
        if key in selectors:
            return key
    return None


@dataclass
class SimulatorConfig:
    """How to start a simulator. ``port=0`` picks a free port (read it back from ``handle.url``)."""

    host: str = "127.0.0.1"
    port: int = 8188
    data_dir: Path | None = None
    """Holds ``input/``, ``output/`` and ``temp/``; a temporary directory when None."""
    faults: Faults = field(default_factory=Faults)
    max_upload_size: int = 100 * 1024 * 1024
    history_size: int = 10_000
