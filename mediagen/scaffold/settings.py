"""Settings every service shares, read from environment variables.

Each service subclasses :class:`ServerSettings` with its own prefix
(``MEDIAGEN_STORAGE_``, ``MEDIAGEN_GENERATOR_``, ``MEDIAGEN_GATEWAY_``) so one
environment can configure the three side by side. Settings are validated at
start-up: a bad value stops the service with a message that names the
variable, rather than failing on the first request.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediagen.scaffold.callers import CallerRegistry, parse_names, parse_tokens
from mediagen.scaffold.memory import DEFAULT_MMAP_THRESHOLD

MiB = 1024 * 1024


class ServerSettings(BaseSettings):
    """Listening, security and observability settings of one gRPC service."""

    model_config = SettingsConfigDict(env_prefix="MEDIAGEN_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Prometheus HTTP port; unset disables it"
    )
    metrics_host: str = "127.0.0.1"
    auth_token: SecretStr | None = Field(
        default=None, description="bearer token every call must carry; unset disables auth"
    )
    auth_tokens_file: Path | None = Field(
        default=None,
        description="named callers' tokens, one `name:token` or `name:token:admin` a line; re-read on change",
    )
    admin_callers: str = Field(
        default="", description="comma-separated caller names that see every run (certificate callers too)"
    )
    named_callers: str = Field(
        default="", description="comma-separated certificate callers counted by name in metrics"
    )
    open_reflection: bool = Field(default=True, description="reflection answers callers without credentials")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = Field(
        default=None, description="CA that client certificates must chain to (mutual TLS)"
    )
    max_message_bytes: int = Field(default=8 * MiB, ge=64 * 1024)
    grace_seconds: float = Field(default=10.0, ge=0)
    max_connection_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="clients are asked to reconnect after this long, so `dns:///` targets see new replicas",
    )
    max_connection_age_grace_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="how long calls already running on an aged connection may go on before it closes",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        return self

    @model_validator(mode="after")
    def _callers(self) -> ServerSettings:
        parse_names(self.admin_callers)
        parse_names(self.named_callers)
        if self.auth_tokens_file is not None:
            try:
                parse_tokens(self.auth_tokens_file.read_text())
            except OSError as exc:
                raise ValueError(f"auth_tokens_file: cannot read it: {exc.strerror}") from None
        return self

    def caller_registry(self) -> CallerRegistry:
        """Who may call this service, and under which name (see :mod:`mediagen.scaffold.callers`)."""
        return CallerRegistry(
            self.auth_token.get_secret_value() if self.auth_token else None,
            self.auth_tokens_file,
            mutual_tls=self.tls_client_ca_file is not None,
            admin_callers=parse_names(self.admin_callers),
            named_callers=parse_names(self.named_callers),
        )

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def mmap_threshold(self) -> int:
        """glibc's mmap threshold for the process (see :mod:`mediagen.scaffold.memory`)."""
        return DEFAULT_MMAP_THRESHOLD


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def unknown_variables(cls: type[BaseSettings], environ: Mapping[str, str]) -> list[str]:
    """Variables under ``cls``'s prefix that name no setting: a typo, or a setting that moved.

    Ignoring them would leave a service running without, say, the client certificate its
    operator meant it to present, so they are refused like a bad value.
    """
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    known = {name.upper() for name in cls.model_fields}
    return sorted(
        key
        for key in environ
        if key.upper().startswith(prefix) and key.upper().removeprefix(prefix) not in known
    )


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Read settings from the environment or exit with one line per bad or unknown variable."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    lines = [f"  {name}: not a setting of this service" for name in unknown_variables(cls, os.environ)]
    settings = None
    try:
        settings = cls()
    except ValidationError as exc:
        for err in exc.errors():
            name = "".join(str(part) for part in err["loc"][:1]).upper()
            where = f"{prefix}{name}" if name else "(settings)"
            lines.append(f"  {where}: {err['msg']}")
    if settings is None or lines:
        print("\n".join([f"invalid configuration for {cls.__name__}:", *lines]), file=sys.stderr)
        raise SystemExit(2)
    return settings
