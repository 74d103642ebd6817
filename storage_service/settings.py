"""Storage service settings, read from ``MEDIAGEN_STORAGE_*`` variables.

MinIO credentials are secrets and never logged. ``public_endpoint`` is where
callers reach MinIO when it differs from the address the service uses
(a container network name inside, a load balancer outside): presigned URLs
are signed for it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mediagen.scaffold import ServerSettings

MiB = 1024 * 1024
GiB = 1024 * MiB
S3_MAX_PRESIGN = timedelta(days=7)


def _plain_seconds(value: object) -> object:
    """Durations from the environment may be plain seconds ("3600") as well as ISO 8601 ("PT1H")."""
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        return float(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_plain_seconds)]


class StorageSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAGEN_STORAGE_", extra="ignore")

    minio_endpoint: str = Field(default="127.0.0.1:9000", description="host:port of MinIO")
    minio_access_key: SecretStr
    minio_secret_key: SecretStr
    minio_secure: bool = False
    minio_region: str = "us-east-1"
    minio_connect_timeout: float = Field(default=3.0, gt=0)
    minio_read_timeout: float = Field(default=60.0, gt=0)
    bucket: str = Field(default="mediagen", min_length=3, max_length=63)
    max_media_bytes: int = Field(default=4 * GiB, gt=0)
    part_size: int = Field(default=8 * MiB, ge=5 * MiB, le=512 * MiB)
    parts_in_flight: int = Field(default=2, ge=1, le=8)
    io_threads: int = Field(default=32, ge=4, le=256, description="threads for blocking MinIO calls")
    presign_default_ttl: Duration = timedelta(hours=1)
    presign_max_ttl: Duration = timedelta(days=1)
    lease_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="lease renewal and clean-up sweep period; a replica silent for 3 periods counts as dead",
    )
    public_endpoint: str | None = Field(
        default=None, description="host:port or http(s)://host:port that callers use for presigned URLs"
    )

    @model_validator(mode="after")
    def _ttls(self) -> StorageSettings:
        if not timedelta(seconds=1) <= self.presign_max_ttl <= S3_MAX_PRESIGN:
            raise ValueError("presign_max_ttl must be between 1 second and 7 days")
        if not timedelta(seconds=1) <= self.presign_default_ttl <= self.presign_max_ttl:
            raise ValueError("presign_default_ttl must be between 1 second and presign_max_ttl")
        return self

    @property
    def mmap_threshold(self) -> int:
        """Below the part size, so every part buffer is its own mapping, unmapped once sent."""
        return min(4 * MiB, self.part_size // 2)
