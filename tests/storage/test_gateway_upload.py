"""The gateway's PutMedia upload when MinIO dies under it: always UNAVAILABLE, never INTERNAL.

A gRPC client whose send fails because the server just ended the call records
INTERNAL "Internal error from Core", which could overwrite the status storage
sent. Storage announces its failure first and waits for the gateway to stop
sending (see :mod:`storage_service.intake` and :mod:`gateway.upload`); this
runs the gateway's own upload code against the real storage service and a
real MinIO, SIGKILLed at a different point of the upload each round.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import grpc

from gateway.peers import open_peers
from gateway.settings import GatewaySettings
from gateway.upload import MediaUpload
from mediagen.scaffold.errors import ServiceError
from mediagen.stack.minio import LocalMinio
from mediagen.v1 import storage_pb2
from storage_service.settings import MiB
from tests.storage.client import new_run
from tests.storage.conftest import start_storage, stop_storage, storage_settings
from tests.storage.test_outage import eventually, health_of, own_minio, restart_on_same_address

__all__ = ["own_minio"]
ROUNDS = 10
SIZE = 24 * MiB
CHUNK = MiB


async def upload_until_minio_dies(
    upload: MediaUpload,
    data: bytes,
    kill_after: int,
    kill: asyncio.Future[None],
    killed: asyncio.Future[None],
) -> storage_pb2.MediaRecord:
    """Send every chunk, racing the kill; finish only once MinIO is surely dead.

    Where the kill lands among the chunks varies per round; the finish always comes
    after it, so a fast machine cannot complete the upload before MinIO dies and
    every round must end UNAVAILABLE.
    """
    for sent, at in enumerate(range(0, len(data), CHUNK)):
        if sent == kill_after:
            kill.set_result(None)
        await upload.send(data[at : at + CHUNK])
    await killed
    return await upload.finish(len(data), hashlib.sha256(data).hexdigest())


async def kill_minio(local: LocalMinio, when: asyncio.Future[None], delay: float) -> None:
    await when
    await asyncio.sleep(delay)
    assert local.process is not None
    local.process.kill()


async def test_minio_killed_mid_upload_is_always_unavailable(own_minio: LocalMinio):
    assert own_minio.endpoint is not None
    client = own_minio.endpoint.client()
    server = await start_storage(storage_settings(own_minio.endpoint, "gateway-upload"), client)
    peers = open_peers(GatewaySettings(storage_target=server.address))
    data = os.urandom(SIZE)
    codes: list[str] = []
    try:
        for round_ in range(ROUNDS):
            run_id = await new_run(server.stub)
            header = storage_pb2.MediaHeader(run_id=run_id, original_filename="x.bin")
            upload = MediaUpload(peers.put_media, header, 8, 60.0)
            kill: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            killing = asyncio.ensure_future(kill_minio(own_minio, kill, delay=0.01 * round_))
            try:
                await upload_until_minio_dies(
                    upload, data, kill_after=1 + 2 * round_, kill=kill, killed=killing
                )
                codes.append("OK")
            except ServiceError as exc:
                codes.append(exc.code.name)
            finally:
                await upload.abort()
                await killing
            restart_on_same_address(own_minio)
            assert await eventually(lambda: _serving(server)), "storage did not turn SERVING again"
    finally:
        await peers.close()
        await stop_storage(server)
    assert codes == ["UNAVAILABLE"] * ROUNDS


async def _serving(server) -> bool:
    from grpc_health.v1 import health_pb2

    try:
        return await health_of(server.channel) == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
