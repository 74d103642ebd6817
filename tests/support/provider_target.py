"""What a provider contract test talks to: a simulator in process, or the real provider.

Each contract suite runs every test against its simulator, and again against the real API when
the variables naming it are set (skipped, with the reason, otherwise). Tests that need fault
knobs ask for ``faults``, which skips on a real provider.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import pytest

from sim_scaffold.faults import FaultKnobs
from sim_scaffold.serving import SimHandle

FaultsT = TypeVar("FaultsT", bound=FaultKnobs)


@dataclass
class ProviderTarget(Generic[FaultsT]):
    url: str
    key: str
    sim: SimHandle[Any, FaultsT] | None
    http: httpx.AsyncClient

    @property
    def faults(self) -> FaultsT:
        if self.sim is None:
            pytest.skip("needs simulator fault knobs; not available on a real provider")
        return self.sim.faults

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def real_provider(url_variable: str, key_variable: str) -> tuple[str, str]:
    """The real provider's base URL and key from the environment; skips the test without them."""
    url, key = os.environ.get(url_variable, ""), os.environ.get(key_variable, "")
    if not url or not key:
        pytest.skip(f"set {url_variable} and {key_variable} to run against a real provider")
    return url.rstrip("/"), key
