"""The whole chain on mutual TLS: caller → gateway → generator and storage.

Each of the three services requires a client certificate from the test CA; the
gateway presents its own to both peers. A run stores its media, and a gateway
without a client certificate for its peers cannot reach them.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc import aio
from minio import Minio

from comfyui_sim import SimulatorHandle
from gateway.app import build_spec
from gateway.settings import GatewaySettings
from generator_service.app import build_spec as build_generator
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import RunningServer, start_server
from mediagen.scaffold.channels import open_channel
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2_grpc, storage_pb2
from tests.gateway.runs import output, request, run
from tests.storage.conftest import start_storage, stop_storage, storage_settings
from tests.support.certs import ThrowawayCa


@dataclass
class Chain:
    ca: ThrowawayCa
    generator: RunningServer
    storage: RunningServer
    tls: dict[str, object]


def server_tls(ca: ThrowawayCa, name: str) -> dict[str, object]:
    cert, key = ca.issue(
        "localhost", server=True, into=(ca.folder / f"{name}-server.pem", ca.folder / f"{name}-server.key")
    )
    # The gateway is the trusted (admin) caller of its peers: it creates runs on its callers' behalf.
    return {
        "tls_cert_file": cert,
        "tls_key_file": key,
        "tls_client_ca_file": ca.cert_file,
        "admin_callers": "gateway",
    }


@pytest.fixture
async def chain(
    tmp_path: Path,
    simulator: SimulatorHandle,
    minio_endpoint: MinioEndpoint,
    bucket: str,
    minio_client: Minio,
) -> AsyncIterator[Chain]:
    ca = ThrowawayCa(tmp_path / "pki")
    gen_settings = GeneratorSettings.model_validate(
        {"comfyui_urls": simulator.url, "port": 0, "log_format": "text", **server_tls(ca, "generator")}
    )
    generator = await start_server(await build_generator(gen_settings), gen_settings)
    storage = await start_storage(
        storage_settings(minio_endpoint, bucket, **server_tls(ca, "storage")), minio_client
    )
    try:
        yield Chain(ca, generator, storage.running, server_tls(ca, "gateway"))
    finally:
        await stop_storage(storage)
        await generator.stop(0)


async def start_gateway(chain: Chain, **values: object) -> RunningServer:
    settings = GatewaySettings.model_validate(
        {
            "port": 0,
            "log_format": "text",
            "nats_url": "",
            "generator_target": f"localhost:{chain.generator.port}",
            "storage_target": f"localhost:{chain.storage.port}",
            "peer_ca_file": chain.ca.cert_file,
            **chain.tls,
            **values,
        }
    )
    return await start_server(await build_spec(settings), settings)


def _as_alice(chain: Chain, port: int) -> aio.Channel:
    """A channel to the gateway at ``port`` with a client certificate of the chain's CA, named alice."""
    cert, key = chain.ca.issue("alice")
    return open_channel(f"localhost:{port}", ca_file=chain.ca.cert_file, cert_file=cert, key_file=key)


async def test_a_run_crosses_three_mutual_tls_hops(chain: Chain) -> None:
    cert, key = chain.ca.issue("gateway")
    gateway = await start_gateway(chain, peer_cert_file=cert, peer_key_file=key)
    try:
        async with _as_alice(chain, gateway.port) as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            result = await run(stub, request(output("solid_image", width=8, height=8)))  # type: ignore[arg-type]
            assert result.completed.media_stored == 1
            stored = await stub.GetRun(storage_pb2.GetRunRequest(run_id=result.run_id), timeout=10)
            assert [m.media_id for m in stored.media] == [result.records[0].media_id]
            assert stored.run.caller == "alice"  # the certificate's name, passed on by the gateway
    finally:
        await gateway.stop(0)


async def test_a_gateway_without_a_peer_certificate_reaches_no_peer(chain: Chain) -> None:
    gateway = await start_gateway(chain)
    try:
        async with _as_alice(chain, gateway.port) as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            with pytest.raises(aio.AioRpcError) as caught:
                await run(stub, request(output("solid_image")))  # type: ignore[arg-type]
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await gateway.stop(0)


async def command(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env={**os.environ, "COLUMNS": "300", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_cli_and_health_probe_speak_mutual_tls(chain: Chain) -> None:
    cert, key = chain.ca.issue("gateway")
    gateway = await start_gateway(chain, peer_cert_file=cert, peer_key_file=key)
    user_cert, user_key = chain.ca.issue("alice")
    target = f"localhost:{gateway.port}"
    files = {"MEDIAGEN_CA_FILE": str(chain.ca.cert_file)}
    try:
        code, out = await command(
            "-m", "mediagen.cli", "--gateway", target, "workflows",
            env={**files, "MEDIAGEN_CERT_FILE": str(user_cert), "MEDIAGEN_KEY_FILE": str(user_key)},
        )  # fmt: skip
        assert (code, "solid_image" in out) == (0, True), out
        code, out = await command(
            "-m", "mediagen.cli", "--gateway", target,
            "--cert-file", str(user_cert), "--key-file", str(user_key), "workflows",
            env=files,
        )  # fmt: skip
        assert (code, "solid_image" in out) == (0, True), out
        code, out = await command("-m", "mediagen.cli", "--gateway", target, "workflows", env=files)
        assert (code != 0, "UNAVAILABLE" in out) == (True, True), out
        code, out = await command(
            "-m", "mediagen.stack.healthcheck", target,
            env={**files, "MEDIAGEN_CERT_FILE": str(user_cert), "MEDIAGEN_KEY_FILE": str(user_key)},
        )  # fmt: skip
        assert (code, "SERVING" in out) == (0, True), out
    finally:
        await gateway.stop(0)
