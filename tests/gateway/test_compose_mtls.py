"""The compose override's mutual TLS works: certificates from ``tools/dev_certs.py``, settings from
the variables ``docker-compose.mtls.yml`` sets, health checks with the arguments it gives.

The three services run here, not in containers: each reads the override's variables from the
environment (its mount point, ``/etc/mediagen/tls``, mapped onto the folder the tool wrote),
and only what a test must change (ports, addresses, MinIO) is given directly. A run then
crosses the three mutual-TLS hops, named by the caller's certificate; a caller without a
certificate is refused; each service's health check, as the override writes it, says SERVING.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml
from cryptography import x509
from grpc import aio
from minio import Minio

from comfyui_sim import SimulatorHandle
from gateway.app import build_spec as build_gateway
from gateway.settings import GatewaySettings
from generator_service.app import build_spec as build_generator
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import RunningServer, start_server
from mediagen.scaffold.channels import open_channel
from mediagen.stack import healthcheck
from mediagen.stack.minio import MinioEndpoint
from mediagen.stack.nats import LocalNats, NatsEndpoint, NatsServerTls
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, storage_pb2
from storage_service.settings import StorageSettings
from tests.deploy.manifests import COMPOSE_MTLS, ROOT, compose_services
from tests.gateway.conftest import Gateway
from tests.gateway.durable.conftest import wait_connected
from tests.gateway.durable.support import submit_request, wait_state
from tests.gateway.runs import output, request, run
from tests.storage.conftest import start_storage, stop_storage, storage_settings

MOUNT = "/etc/mediagen/tls"


@dataclass
class Stack:
    certs: Path
    services: dict[str, RunningServer]
    commands: dict[str, list[str]]


def override_environment(service: str, certs: Path) -> dict[str, str]:
    """The variables the override sets on ``service``, its mount mapped onto ``certs/<service>``
    and compose's ``${VAR:-default}`` read as its default."""
    environment = compose_services(COMPOSE_MTLS)[service]["environment"]
    own = compose_services()[service]["environment"]
    changed = yaml.safe_load(COMPOSE_MTLS.read_text())["services"][service]["environment"]
    values = {}
    for name in changed:
        value = str(environment[name]).replace(MOUNT, str(certs / service))
        if value.startswith("${") and ":-" in value:
            value = value.split(":-", 1)[1].rstrip("}")
        values[name] = value
    assert set(values) - set(own), "the override sets nothing new"
    return values


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    folder = tmp_path / "certs"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "dev_certs.py"),
            str(folder),
            "--client",
            "ops",
            "--client",
            "alice",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return folder


@pytest.fixture
def environment(certs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for service in ("gateway", "generator", "storage"):
        for name, value in override_environment(service, certs).items():
            monkeypatch.setenv(name, value)


def nats_tls_as_the_override_starts_it(certs: Path) -> NatsServerTls:
    """The TLS flags the override gives nats-server, its mount mapped onto ``certs/nats``."""
    command = [
        str(arg).replace(MOUNT, str(certs / "nats"))
        for arg in compose_services(COMPOSE_MTLS)["nats"]["command"]
    ]
    assert "--tlsverify" in command  # clients must show a certificate

    def value(flag: str) -> Path:
        return Path(command[command.index(flag) + 1])

    return NatsServerTls(value("--tlscert"), value("--tlskey"), client_ca_file=value("--tlscacert"))


@pytest.fixture
def tls_nats(certs: Path, tmp_path: Path) -> Iterator[NatsEndpoint]:
    server = LocalNats(tmp_path / "nats", tls=nats_tls_as_the_override_starts_it(certs))
    yield server.start()
    server.stop()


@pytest.fixture
async def stack(
    certs: Path,
    environment: None,
    simulator: SimulatorHandle,
    minio_endpoint: MinioEndpoint,
    bucket: str,
    minio_client: Minio,
    tls_nats: NatsEndpoint,
) -> AsyncIterator[Stack]:
    # The NATS client certificate settings come from the override's variables (environment).
    generator_settings = GeneratorSettings(
        comfyui_urls=simulator.url, port=0, log_format="text", nats_url=tls_nats.url
    )
    generator = await start_server(await build_generator(generator_settings), generator_settings)
    storage = await start_storage(storage_settings(minio_endpoint, bucket), minio_client)
    assert isinstance(storage.settings, StorageSettings)
    assert storage.settings.tls_client_ca_file is not None  # read from the override's variables
    gateway_settings = GatewaySettings(
        port=0,
        log_format="text",
        nats_url=tls_nats.url,
        generator_target=f"localhost:{generator.port}",
        storage_target=f"localhost:{storage.running.port}",
    )
    gateway = await start_server(await build_gateway(gateway_settings), gateway_settings)
    services = {"gateway": gateway, "generator": generator, "storage": storage.running}
    commands = {}
    for name, running in services.items():
        test = compose_services(COMPOSE_MTLS)[name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "mediagen.stack.healthcheck"]
        args = [arg.replace(MOUNT, str(certs / name)) for arg in test[4:]]
        args[0] = f"localhost:{running.port}"
        commands[name] = args
    try:
        yield Stack(certs, services, commands)
    finally:
        await gateway.stop(0)
        await stop_storage(storage)
        await generator.stop(0)


def client(stack: Stack, name: str | None) -> aio.Channel:
    ca = stack.certs / "ca.crt"
    address = f"localhost:{stack.services['gateway'].port}"
    if name is None:
        return open_channel(address, ca_file=ca)
    folder = stack.certs / "clients" / name
    return open_channel(address, ca_file=ca, cert_file=folder / "tls.crt", key_file=folder / "tls.key")


async def test_a_run_crosses_every_hop_on_mutual_tls_named_by_the_caller_s_certificate(stack: Stack) -> None:
    async with client(stack, "alice") as alice_channel, client(stack, "ops") as ops_channel:
        alice = gateway_pb2_grpc.GatewayServiceStub(alice_channel)
        result = await run(alice, request(output("solid_image", width=8, height=8)))  # type: ignore[arg-type]
        assert result.completed.media_stored == 1
        ops = gateway_pb2_grpc.GatewayServiceStub(ops_channel)
        stored = await ops.GetRun(storage_pb2.GetRunRequest(run_id=result.run_id), timeout=10)
        assert stored.run.caller == "alice"  # named by the certificate; ops, an admin, sees it


async def test_a_durable_run_goes_through_nats_on_mutual_tls(stack: Stack) -> None:
    async with client(stack, "alice") as channel:
        alice = gateway_pb2_grpc.GatewayServiceStub(channel)
        await wait_connected(Gateway(stack.services["gateway"], alice, channel, None))  # type: ignore[arg-type]
        status = await alice.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
        done = await wait_state(alice, status.run_id, gateway_pb2.RUN_STATE_SUCCEEDED, within=60.0)
    assert len(done.media) == 1


async def test_a_caller_without_a_certificate_is_refused(stack: Stack) -> None:
    async with client(stack, None) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(aio.AioRpcError) as caught:
            await stub.GetRun(storage_pb2.GetRunRequest(run_id="any"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_override_s_health_checks_speak_mutual_tls(stack: Stack) -> None:
    for name, args in stack.commands.items():
        code = await asyncio.to_thread(healthcheck.main, ["healthcheck", *args])
        assert code == 0, name
        plain = await asyncio.to_thread(healthcheck.main, ["healthcheck", args[0]])
        assert plain == 1, name  # the same check in plaintext fails: TLS is really on


def test_each_certificate_names_its_service_as_compose_dials_it(certs: Path) -> None:
    services = compose_services(COMPOSE_MTLS)
    gateway_env = services["gateway"]["environment"]
    for peer in ("generator", "storage"):
        host = (
            str(gateway_env[f"MEDIAGEN_GATEWAY_{peer.upper()}_TARGET"])
            .removeprefix("dns:///")
            .rsplit(":", 1)[0]
        )
        cert = x509.load_pem_x509_certificate((certs / peer / "tls.crt").read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert host in names.get_values_for_type(x509.DNSName), peer
    for name in ("gateway", "generator", "storage"):
        volumes = services[name]["volumes"]
        assert any(
            volume.get("target") == MOUNT and volume["source"].endswith(f"certs/{name}") for volume in volumes
        )
