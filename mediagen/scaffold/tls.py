"""TLS and mutual TLS credentials from certificate files, re-read when the files change.

Certificates come from files (mounted secrets in a container), never from the
environment themselves. They are read once at start-up, so a bad path fails fast,
and again whenever a file's modification time changes: cert-manager and the
kubelet rotate a mounted secret in place, and a service must pick the new
certificate up without a restart and without dropping the calls it is serving.

A server hands gRPC a certificate-config fetcher (``dynamic_ssl_server_credentials``)
that gRPC asks at every new handshake; connections already open keep the
certificate they were made with. A client has no such hook, so
:class:`FileCredentials` tells its channel (:mod:`mediagen.scaffold.channels`) when the
files changed, and the channel opens new connections with new credentials.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import grpc

from mediagen.scaffold.watched import WatchedFiles

log = logging.getLogger("mediagen.tls")


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path else None


def client_ssl_context(
    ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A TLS client context for a connection made with one (NATS): the server is checked against
    ``ca_file`` (the system's CAs when None), and ``cert_file``/``key_file`` are presented as
    the client certificate when given.

    Read when the connection is first made and kept for its reconnections: a rotated
    certificate is taken up at the next start (the gRPC credentials above follow their files).
    """
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


def server_credentials(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> grpc.ServerCredentials:
    """Server TLS; with ``client_ca_file`` every client must present a certificate it signed.

    The three files are read again at the next handshake after any of them changed.
    """
    watched = WatchedFiles(cert_file, key_file, client_ca_file)

    def config() -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(key_file.read_bytes(), cert_file.read_bytes())], root_certificates=_read(client_ca_file)
        )

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        if not watched.changed():
            return None
        try:
            fresh = config()
        except OSError as exc:  # half-written rotation: keep serving the last good pair
            log.warning("cannot re-read server certificate: %s", exc)
            return None
        log.info("server certificate files changed; new connections use them")
        return fresh

    # The stubs say the fetcher returns a config; gRPC documents None as "unchanged".
    return grpc.dynamic_ssl_server_credentials(
        config(),
        fetch,  # type: ignore[arg-type]
        require_client_authentication=client_ca_file is not None,
    )


def channel_credentials(
    ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
) -> grpc.ChannelCredentials:
    """Client TLS trusting ``ca_file`` (system roots when unset), with an optional client cert."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file),
        private_key=_read(key_file),
        certificate_chain=_read(cert_file),
    )


class FileCredentials:
    """Client credentials from files, and whether those files changed since they were read."""

    def __init__(
        self, ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
    ) -> None:
        self._files = (ca_file, cert_file, key_file)
        self._watched = WatchedFiles(*self._files)
        self.current = channel_credentials(*self._files)

    def refreshed(self) -> grpc.ChannelCredentials | None:
        """New credentials when the files changed since the last read, else None."""
        if not self._watched.changed():
            return None
        try:
            self.current = channel_credentials(*self._files)
        except OSError as exc:
            log.warning("cannot re-read client certificate: %s", exc)
            return None
        log.info("client certificate files changed; new connections use them")
        return self.current
