"""Simulator settings and the live fault knobs.

Faults are plain fields so tests can flip them on a running simulator (in process, or through
``POST /sim/faults`` when it runs as its own process).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    rate_limit_ratio: float = 0.0
    """Share of requests refused with 429 (deterministic: every k-th request, not random)."""
    rate_limit_burst: int = 0
    """The next N requests are refused with 429, then requests pass again."""
    retry_after_s: float = 1.0
    """The ``retry-after`` header sent with every 429."""
    server_errors: int = 0
    """The next N requests answer 500 with the provider's error envelope."""
    refuse_words: list[str] = field(default_factory=lambda: ["forbidden"])
    """A prompt containing one of these words is refused by the content policy (400)."""
    hang: bool = False
    """Requests are read and then never answered (the caller's deadline must end them)."""
    render_delay_s: float = 0.0
    """Time an image takes before its response (or its completed event) starts."""
    partial_delay_s: float = 0.0
    """Time between two streamed partial images."""
    body_bytes_per_s: float | None = None
    """Throttle for response bodies (a slow stream)."""
    truncate_after: int | None = None
    """Close the connection after this many body bytes."""

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise KeyError(f"unknown fault {key!r}")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImagesSimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "sk-sim"
    """The bearer key requests must carry; empty accepts any request."""
    max_image_bytes: int = 50 * 1024 * 1024
    """Largest input image accepted by ``/edits`` (the provider's limit)."""
    faults: Faults = field(default_factory=Faults)
