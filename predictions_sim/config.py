"""Simulator settings and the live fault knobs (also settable through ``POST /sim/faults``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim_scaffold.faults import ProviderFaults


@dataclass
class Faults(ProviderFaults):
    """The shared provider knobs and the life of a prediction.

    Only prediction creations count for the rate limit; ``server_errors`` hit any API request;
    a refused prompt ends ``failed`` with the safety checker's message; ``hang`` keeps a prediction
    ``processing`` until cancelled; the body faults act on output downloads.
    """

    fail_next: int = 0
    """The next N predictions end ``failed`` with a model error."""
    queue_delay_s: float = 0.0
    """Time a prediction stays ``starting``."""
    step_delay_s: float = 0.01
    """Time per inference step while ``processing``."""


@dataclass
class PredictionsSimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    api_token: str = "r8_sim"
    """The bearer token requests must carry; empty accepts any request."""
    faults: Faults = field(default_factory=Faults)
