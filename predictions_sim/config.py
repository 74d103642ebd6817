"""Simulator settings and the live fault knobs (also settable through ``POST /sim/faults``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    rate_limit_ratio: float = 0.0
    """Share of prediction creations refused with 429 (every k-th one, deterministically)."""
    rate_limit_burst: int = 0
    """The next N prediction creations are refused with 429."""
    retry_after_s: float = 1.0
    server_errors: int = 0
    """The next N API requests answer 500."""
    refuse_words: list[str] = field(default_factory=lambda: ["forbidden"])
    """A prompt with one of these words ends ``failed`` with the safety checker's message."""
    fail_next: int = 0
    """The next N predictions end ``failed`` with a model error."""
    hang: bool = False
    """Predictions stay ``processing`` until cancelled."""
    queue_delay_s: float = 0.0
    """Time a prediction stays ``starting``."""
    step_delay_s: float = 0.01
    """Time per inference step while ``processing``."""
    body_bytes_per_s: float | None = None
    """Throttle for output downloads."""
    truncate_after: int | None = None
    """Close an output download after this many bytes."""

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise KeyError(f"unknown fault {key!r}")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PredictionsSimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    api_token: str = "r8_sim"
    """The bearer token requests must carry; empty accepts any request."""
    faults: Faults = field(default_factory=Faults)
