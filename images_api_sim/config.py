"""Simulator settings and the live fault knobs.

Faults are plain fields so tests can flip them on a running simulator (in process, or through
``POST /sim/faults`` when it runs as its own process).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim_scaffold.faults import ProviderFaults


@dataclass
class Faults(ProviderFaults):
    """The shared provider knobs (every API request counts for the rate limit) and the timing of
    renders; ``hang`` leaves a request unanswered, ``refuse_words`` answer 400."""

    render_delay_s: float = 0.0
    """Time an image takes before its response (or its completed event) starts."""
    partial_delay_s: float = 0.0
    """Time between two streamed partial images."""


@dataclass
class ImagesSimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "sk-sim"
    """The bearer key requests must carry; empty accepts any request."""
    max_image_bytes: int = 50 * 1024 * 1024
    """Largest input image accepted by ``/edits`` (the provider's limit)."""
    faults: Faults = field(default_factory=Faults)
