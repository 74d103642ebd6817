"""What every service's NATS connection shares (the gateway's runs, the generator's journal).

**TLS.** NATS carries run requests (prompts, caller names) and the journal of prompts in flight;
with mutual TLS between the services it is encrypted too, and a server that verifies clients
lets in only holders of a certificate from the same CA. The settings are the same under each
service's prefix (``MEDIAGEN_GATEWAY_NATS_CA_FILE``, ``MEDIAGEN_GENERATOR_NATS_CA_FILE``, ...).

**Why it is not connected.** A client that reconnects for ever also keeps trying inside its
first connect, so a refused certificate or an unreachable server never comes back as an
exception: :class:`ConnectionTrouble` keeps the last error the client reported, to log it
once per attempt and to tell callers why.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from mediagen.scaffold.tls import client_ssl_context


class NatsTlsSettings(BaseModel):
    nats_ca_file: Path | None = Field(
        default=None,
        description="CA of the NATS server's certificate; set (or a client certificate) for TLS to NATS",
    )
    nats_cert_file: Path | None = Field(
        default=None, description="client certificate presented to NATS (with nats_key_file)"
    )
    nats_key_file: Path | None = None

    @model_validator(mode="after")
    def _nats_pair(self) -> NatsTlsSettings:
        if (self.nats_cert_file is None) != (self.nats_key_file is None):
            raise ValueError("nats_cert_file and nats_key_file must be set together")
        return self

    def nats_tls(self) -> ssl.SSLContext | None:
        """The context for ``nats.connect(tls=...)``; None (plaintext) when nothing is set."""
        if self.nats_ca_file is None and self.nats_cert_file is None:
            return None
        return client_ssl_context(self.nats_ca_file, self.nats_cert_file, self.nats_key_file)


class ConnectionTrouble:
    """The last error a NATS client reported (``error_cb``); empty until one comes."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.last = ""

    async def note(self, error: Exception) -> None:
        self.last = f"{type(error).__name__}: {error}"[:200]
        self._log.warning("NATS: %s", self.last)

    async def connected(self) -> None:
        """Connected (again): an earlier error no longer says anything (``reconnected_cb``)."""
        self.last = ""
