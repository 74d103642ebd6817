"""The gateway's two long-lived channels: one to the generator, one to storage.

Each channel carries a gRPC service config: ``round_robin`` across whatever the
target resolves to, and a retryPolicy (on UNAVAILABLE) on the calls that start
no work: reads and checks, and storage calls whose writes are idempotent.
``Generate`` has no channel policy: a status code alone cannot tell a refusal
from a job already queued, so its one retry policy lives in
:mod:`gateway.output`, which reads the reason the generator gives.

The two calls that carry media, ``Generate`` and ``PutMedia``, are built with the
serializers of :mod:`gateway.wire`, so chunks are relayed as bytes rather than
as messages. ``Generate`` has a channel of its own: round robin then spreads the
jobs themselves over the generator replicas, whatever other calls (one
``ValidateWorkflows`` per run) go to the generator in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import wire
from gateway.settings import GatewaySettings
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc, storage_pb2, storage_pb2_grpc

GENERATOR_SERVICE = "mediagen.v1.GeneratorService"
STORAGE_SERVICE = "mediagen.v1.StorageService"

Generate = aio.UnaryStreamMultiCallable[
    generator_pb2.GenerateRequest, wire.Chunk | generator_pb2.GenerateEvent
]
PutMedia = aio.StreamUnaryMultiCallable[bytes | storage_pb2.PutMediaRequest, storage_pb2.MediaRecord]


def _retry_policy(*codes: str) -> dict[str, Any]:
    return {
        "maxAttempts": 4,
        "initialBackoff": "0.1s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": list(codes),
    }


def service_config(service: str, methods: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Round robin over every resolved address, with per-method retry policies."""
    return {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {"name": [{"service": service, "method": method}], "retryPolicy": _retry_policy(*codes)}
            for method, codes in methods.items()
        ],
    }


GENERATOR_CONFIG = service_config(
    GENERATOR_SERVICE,
    {
        "ValidateWorkflows": ("UNAVAILABLE",),
        "ListWorkflows": ("UNAVAILABLE",),
        "GetBackendStatus": ("UNAVAILABLE",),
    },
)
STORAGE_CONFIG = service_config(
    STORAGE_SERVICE,
    {
        "CreateRun": ("UNAVAILABLE",),
        "PutMedia": ("UNAVAILABLE",),
        "GetRun": ("UNAVAILABLE",),
        "GetMedia": ("UNAVAILABLE",),
    },
)


@dataclass(kw_only=True)
class Peers:
    generator_channel: aio.Channel
    storage_channel: aio.Channel
    generator: generator_pb2_grpc.GeneratorServiceAsyncStub
    storage: storage_pb2_grpc.StorageServiceAsyncStub
    generate: Generate
    put_media: PutMedia
    jobs_channel: aio.Channel | None = None

    async def check_generator(self) -> None:
        await _check_health(self.generator_channel, GENERATOR_SERVICE)

    async def check_storage(self) -> None:
        await _check_health(self.storage_channel, STORAGE_SERVICE)

    async def close(self) -> None:
        await self.generator_channel.close()
        await self.storage_channel.close()
        if self.jobs_channel is not None:
            await self.jobs_channel.close()


def open_peers(settings: GatewaySettings) -> Peers:
    def channel(target: str, token: Any, config: dict[str, Any]) -> aio.Channel:
        return open_channel(
            target,
            token=token.get_secret_value() if token else None,
            ca_file=settings.peer_ca_file,
            cert_file=settings.peer_cert_file,
            key_file=settings.peer_key_file,
            use_tls=settings.peer_tls,
            max_message_bytes=settings.max_message_bytes,
            service_config=config,
        )

    gen = channel(settings.generator_target, settings.generator_token, GENERATOR_CONFIG)
    jobs = channel(settings.generator_target, settings.generator_token, GENERATOR_CONFIG)
    sto = channel(settings.storage_target, settings.storage_token, STORAGE_CONFIG)
    return Peers(
        generator_channel=gen,
        storage_channel=sto,
        generator=generator_pb2_grpc.GeneratorServiceStub(gen),  # type: ignore[arg-type]
        storage=storage_pb2_grpc.StorageServiceStub(sto),  # type: ignore[arg-type]
        generate=jobs.unary_stream(
            f"/{GENERATOR_SERVICE}/Generate",
            request_serializer=generator_pb2.GenerateRequest.SerializeToString,
            response_deserializer=wire.decode_event,
        ),
        put_media=sto.stream_unary(
            f"/{STORAGE_SERVICE}/PutMedia",
            request_serializer=wire.encode_request,
            response_deserializer=storage_pb2.MediaRecord.FromString,
        ),
        jobs_channel=jobs,
    )


async def _check_health(channel: aio.Channel, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2.0)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        raise ConnectionError(f"{service} is {name}")
