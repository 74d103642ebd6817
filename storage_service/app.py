"""The storage service assembled: one MinIO client, one store, one servicer.

``build_spec`` is shared by ``python -m storage_service`` and by tests that run
the service in-process. Before serving, the S3 server must refuse a second
``If-None-Match: *`` create of one key: "nothing stored twice" rests on it,
so a server that ignores the header stops the service at start-up with a
message saying so. MinIO being down at start-up is not fatal: the service
starts NOT_SERVING, and the health check makes the same test before it turns
SERVING (the bucket is created then if missing).

Unfinished uploads have one clean-up path, :mod:`storage_service.store.cleanup`,
swept every lease period here together with the lease renewal.
"""

from __future__ import annotations

import logging

from mediagen.scaffold import ServiceError, ServiceSpec
from mediagen.scaffold.codecs import with_codecs
from mediagen.scaffold.health import HealthMonitor
from mediagen.v1 import storage_pb2, storage_pb2_grpc
from storage_service.intake import decode_request
from storage_service.servicer import StorageServicer
from storage_service.settings import StorageSettings
from storage_service.store import ObjectStore
from storage_service.store.cleanup import UploadCleanup
from storage_service.store.clients import presigning_client, working_client
from storage_service.store.ledger import UploadLedger
from storage_service.store.objects import ConditionalWritesUnsupported
from storage_service.store.periodic import Periodic
from storage_service.store.uploads import S3Uploads

log = logging.getLogger("mediagen.storage")
SERVICE_NAME = storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name
CLEANUP_WAIT_AT_SHUTDOWN = 30.0


class BucketReadiness:
    """The bucket exists and conditional writes are honoured; checked until both are true once."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._conditional_writes_checked = False

    async def check(self) -> None:
        await self._store.ensure_bucket()
        if not self._conditional_writes_checked:
            await self._store.check_conditional_writes()
            self._conditional_writes_checked = True


async def build_spec(settings: StorageSettings) -> ServiceSpec:
    client, http = working_client(settings)
    store = ObjectStore(client, presigning_client(settings), settings.bucket, settings.io_threads, http)
    uploads = S3Uploads(store)
    cleanup = UploadCleanup(store, uploads, UploadLedger(store, settings.lease_seconds))
    readiness = BucketReadiness(store)
    try:
        await readiness.check()
        await cleanup.sweep()
    except ServiceError as exc:
        log.warning("MinIO is not ready at start-up, serving NOT_SERVING until it is: %s", exc.message)
    except ConditionalWritesUnsupported as exc:
        await store.close()
        raise SystemExit(f"storage cannot start: {exc}") from None

    async def upkeep() -> None:
        await cleanup.ledger.renew_if_held()
        await cleanup.sweep()

    sweeping = Periodic(upkeep, settings.lease_seconds, "renewing the lease and releasing owed uploads")

    def watch(monitor: HealthMonitor) -> None:
        async def report(why: str) -> None:
            await monitor.mark_down("minio", why)

        store.on_outage(report)

    async def close_cleanup() -> None:
        await cleanup.close(CLEANUP_WAIT_AT_SHUTDOWN)

    return ServiceSpec(
        name="storage",
        servicers=[
            (
                SERVICE_NAME,
                with_codecs(
                    storage_pb2_grpc.add_StorageServiceServicer_to_server,
                    "PutMedia",
                    request_deserializer=decode_request,
                ),
                StorageServicer(store, settings, uploads, cleanup),
            )
        ],
        dependency_checks={"minio": readiness.check},
        on_shutdown=[sweeping.stop, close_cleanup, store.close],
        on_health=watch,
    )
