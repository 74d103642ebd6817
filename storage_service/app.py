"""The storage service assembled: one MinIO client, one store, one servicer.

``build_spec`` is shared by ``python -m storage_service`` and by tests that run
the service in-process. MinIO being down at start-up is not fatal: the
service starts NOT_SERVING and turns SERVING when the bucket answers (it is
created then if missing). Every process has an instance lease and a reaper
(see :mod:`storage_service.store.instances`): uploads left by a replica that
died are aborted within a few lease periods, by any replica still running.
"""

from __future__ import annotations

import logging

from mediagen.scaffold import ServiceError, ServiceSpec
from mediagen.scaffold.health import HealthMonitor
from mediagen.v1 import storage_pb2, storage_pb2_grpc
from storage_service.servicer import StorageServicer
from storage_service.settings import StorageSettings
from storage_service.store import ObjectStore
from storage_service.store.clients import presigning_client, working_client
from storage_service.store.instances import InstanceLease
from storage_service.store.periodic import Periodic
from storage_service.store.reaper import OrphanReaper
from storage_service.store.sweeper import UploadSweeper

log = logging.getLogger("mediagen.storage")
SERVICE_NAME = storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name


async def build_spec(settings: StorageSettings) -> ServiceSpec:
    client, http = working_client(settings)
    store = ObjectStore(client, presigning_client(settings), settings.bucket, settings.io_threads, http)
    lease = InstanceLease(store, settings.lease_seconds)
    store.marks = lease
    reaper = OrphanReaper(store, lease)
    sweeper = UploadSweeper(store, settings.abandoned_upload_age)
    try:
        await store.ensure_bucket()
        await reaper.sweep()
        await sweeper.sweep()
    except ServiceError as exc:
        log.warning("MinIO is not ready at start-up, serving NOT_SERVING until it is: %s", exc.message)
    renewing = Periodic(lease.renew_if_held, settings.lease_seconds, "renewing the instance lease")
    reaping = Periodic(reaper.sweep, settings.lease_seconds, "reaping dead replicas' uploads")

    async def check_minio() -> None:
        await store.ensure_bucket()
        await sweeper.sweep_when_due()

    def watch(monitor: HealthMonitor) -> None:
        async def report(why: str) -> None:
            await monitor.mark_down("minio", why)

        store.on_outage(report)

    return ServiceSpec(
        name="storage",
        servicers=[
            (
                SERVICE_NAME,
                storage_pb2_grpc.add_StorageServiceServicer_to_server,
                StorageServicer(store, settings, reaper),
            )
        ],
        dependency_checks={"minio": check_minio},
        on_shutdown=[reaping.stop, renewing.stop, store.close],
        on_health=watch,
    )
