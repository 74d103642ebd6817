"""What a MinIO failure means to the caller.

A missing object is an ordinary answer (None or NOT_FOUND upstream), a failed
``If-None-Match: *`` precondition means another writer got there first
(:class:`ObjectExists`), and everything else (refused connections, timeouts,
5xx, a vanished bucket, rejected credentials) means the service cannot do its
job right now: UNAVAILABLE, with MinIO reported down to the health service.
"""

from __future__ import annotations

import grpc
import urllib3
from minio.error import MinioException, S3Error

from mediagen.scaffold import ServiceError

MISSING_CODES = {"NoSuchKey", "NoSuchUpload"}


class ObjectExists(Exception):
    """A conditional write found the key already taken."""


class ObjectMissing(Exception):
    """The key (or upload) does not exist."""


def classify(exc: BaseException) -> BaseException | None:
    """The exception to raise instead of ``exc``; None when ``exc`` is not a MinIO failure."""
    if isinstance(exc, S3Error):
        if exc.code == "PreconditionFailed":
            return ObjectExists(exc.code)
        if exc.code in MISSING_CODES:
            return ObjectMissing(exc.code)
        return unavailable(f"MinIO refused the request: {exc.code}")
    if isinstance(exc, MinioException | urllib3.exceptions.HTTPError | OSError):
        return unavailable(f"MinIO is unreachable: {type(exc).__name__}")
    return None


def unavailable(why: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, why, reason="STORAGE_UNAVAILABLE")


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, ServiceError) and exc.code == grpc.StatusCode.UNAVAILABLE
