"""`make stack` listens on the well-known ports when they are free, and elsewhere when not."""

from __future__ import annotations

import socket

import pytest

from mediagen.demo import WELL_KNOWN_PORTS, well_known_ports
from mediagen.ports import free_port, port_if_free


def test_a_free_port_is_kept_and_a_taken_one_is_not() -> None:
    port = free_port()
    assert port_if_free(port) == port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert port_if_free(port) is None


def test_well_known_ports_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WELL_KNOWN_PORTS:
        monkeypatch.delenv(f"MEDIAGEN_{name.upper()}_PORT", raising=False)
    assert well_known_ports() == {"gateway": 50051, "generator": 50052, "storage": 50053}
    monkeypatch.setenv("MEDIAGEN_GATEWAY_PORT", "6000")
    assert well_known_ports()["gateway"] == 6000
