"""A MinIO that can be SIGKILLed mid-upload and restarted as the same server.

The stack's own MinIO helper picks a fresh port and fresh credentials at each
start. After a crash we need the same address, credentials and data
directory, so that the storage service (which keeps its settings) can reach
it again and so that what the crash left on disk can be inspected.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from mediagen.ports import free_port
from mediagen.stack.minio import LocalMinio, MinioEndpoint


class PinnedMinio(LocalMinio):
    new_session = True
    endpoint: MinioEndpoint

    def __init__(self, data_dir: Path, host: str = "127.0.0.1") -> None:
        super().__init__(data_dir, host=host)
        self.port, self.console = free_port(host), free_port(host)
        user, password = "bench-" + secrets.token_hex(4), secrets.token_urlsafe(24)
        self.endpoint = MinioEndpoint(f"{host}:{self.port}", user, password)

    def address(self) -> tuple[MinioEndpoint, int]:
        """The same endpoint, credentials and console port at every start."""
        return self.endpoint, self.console
