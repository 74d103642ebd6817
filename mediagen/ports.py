"""Free loopback ports, for a process that must be told its port before it starts (a managed
ComfyUI, the parts of a local stack)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_if_free(port: int, host: str = "127.0.0.1") -> int | None:
    """``port`` when nothing listens on it now, else None (a well-known port someone has taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return None
        return port
