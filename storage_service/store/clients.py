"""The two MinIO clients the service holds for its whole life.

The working client gets short connect timeouts and connection retries only:
minio-py's defaults (a 5-minute connect timeout, retries of writes) would turn
an unreachable MinIO into a hang instead of UNAVAILABLE within seconds. The
presigning client is never used for requests; it only signs URLs for the
endpoint callers reach, with the region given so signing needs no lookup.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import urllib3
from minio import Minio

from storage_service.settings import StorageSettings


def working_client(settings: StorageSettings) -> tuple[Minio, urllib3.PoolManager]:
    """The client and its connection pool (parts are sent on the pool directly)."""
    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=settings.minio_connect_timeout, read=settings.minio_read_timeout),
        maxsize=settings.io_threads,
        retries=urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0, backoff_factor=0.1),
    )
    client = Minio(
        settings.minio_endpoint,
        settings.minio_access_key.get_secret_value(),
        settings.minio_secret_key.get_secret_value(),
        secure=settings.minio_secure,
        region=settings.minio_region,
        http_client=pool,
    )
    return client, pool


def presigning_client(settings: StorageSettings) -> Minio:
    endpoint, secure = settings.minio_endpoint, settings.minio_secure
    if settings.public_endpoint:
        parts = urlsplit(settings.public_endpoint)
        if parts.scheme in ("http", "https"):
            endpoint, secure = parts.netloc, parts.scheme == "https"
        else:
            endpoint = settings.public_endpoint
    return Minio(
        endpoint,
        settings.minio_access_key.get_secret_value(),
        settings.minio_secret_key.get_secret_value(),
        secure=secure,
        region=settings.minio_region,
    )
