"""TLS and mutual TLS credentials from certificate files.

Certificates come from files (mounted secrets in a container), never from the
environment themselves, and are read once at start-up so a bad path fails fast.
"""

from __future__ import annotations

from pathlib import Path

import grpc


def server_credentials(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> grpc.ServerCredentials:
    """Server TLS; with ``client_ca_file`` every client must present a certificate it signed."""
    ca = client_ca_file.read_bytes() if client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key_file.read_bytes(), cert_file.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def channel_credentials(
    ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
) -> grpc.ChannelCredentials:
    """Client TLS trusting ``ca_file`` (system roots when unset), with an optional client cert."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes() if ca_file else None,
        private_key=key_file.read_bytes() if key_file else None,
        certificate_chain=cert_file.read_bytes() if cert_file else None,
    )
