"""Fault knobs: the mutable object tests bend a simulator with, and the knobs HTTP providers share.

Knobs are plain dataclass fields so that the in-process handle, the ``--faults-json`` flag and the
``POST /sim/faults`` body all edit the same thing under the same names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultKnobs:
    """Partial updates, reset and a JSON view for a dataclass of fault knobs."""

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; an unknown name raises ``KeyError`` (a typo must not pass)."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise KeyError(key)
            setattr(self, key, value)

    def reset(self) -> None:
        """Back to the defaults."""
        defaults = type(self)()
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(defaults, f.name))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ProviderFaults(FaultKnobs):
    """The front-door faults of a hosted API: rate limits, server errors, refusals, bodies.

    Which requests the rate limit counts (every API request, or only job creations) is the
    simulator's, as it is the provider's.
    """

    rate_limit_ratio: float = 0.0
    """Share of counted requests refused with 429 (deterministic: every k-th one, not random)."""
    rate_limit_burst: int = 0
    """The next N counted requests are refused with 429, then requests pass again."""
    retry_after_s: float = 1.0
    """The ``retry-after`` header sent with every 429."""
    server_errors: int = 0
    """The next N API requests answer 500 with the provider's error body."""
    refuse_words: list[str] = field(default_factory=lambda: ["forbidden"])
    """A prompt containing one of these words is refused by the provider's content policy."""
    hang: bool = False
    """Work is accepted and then never finishes (the caller's deadline or cancel must end it)."""
    body_bytes_per_s: float | None = None
    """Throttle for media bodies (a slow download or stream)."""
    truncate_after: int | None = None
    """Close the connection after this many body bytes."""

    def rate_limited(self, count: int) -> bool:
        """Whether the ``count``-th counted request (from 1) is refused; spends one burst."""
        ratio = self.rate_limit_ratio
        limited = self.rate_limit_burst > 0 or int(count * ratio) > int((count - 1) * ratio)
        if self.rate_limit_burst > 0:
            self.rate_limit_burst -= 1
        return limited

    def server_error(self) -> bool:
        """Whether this request answers 500; spends one of ``server_errors``."""
        if self.server_errors > 0:
            self.server_errors -= 1
            return True
        return False

    def refuses(self, prompt: str) -> bool:
        """Whether the content policy refuses ``prompt`` (case-insensitive word match)."""
        lowered = prompt.lower()
        return any(word and word.lower() in lowered for word in self.refuse_words)
