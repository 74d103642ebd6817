"""Every service, started as a process the way it is deployed, answers grpcurl as the README shows.

Reflection lists the service, health answers without credentials, a call
without the bearer token is refused, and a call with it goes through. A
second group starts each service in-process with TLS from a test CA.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.app import build_spec as build_gateway
from gateway.settings import GatewaySettings
from generator_service.app import build_spec as build_generator
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import RunningServer, ServiceSpec, start_server
from mediagen.stack.local import LocalStack, StackConfig
from mediagen.stack.minio import MinioEndpoint
from storage_service.app import build_spec as build_storage
from storage_service.settings import StorageSettings
from tests.support.certs import Pki, make_test_pki
from tests.support.grpcurl import grpcurl

TOKEN = "smoke-token-5b0c"


@dataclass(frozen=True)
class Service:
    name: str
    full_name: str
    # A cheap call, its JSON body, and what it answers once authenticated.
    method: str
    body: str
    authenticated_answer: str


SERVICES = [
    Service("gateway", "mediagen.v1.GatewayService", "ListWorkflows", "{}", '"templates"'),
    Service("generator", "mediagen.v1.GeneratorService", "GetBackendStatus", "{}", '"backends"'),
    Service("storage", "mediagen.v1.StorageService", "GetRun", '{"run_id":"no-such-run"}', "NotFound"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, minio_endpoint: MinioEndpoint) -> Iterator[LocalStack]:
    token = {"AUTH_TOKEN": TOKEN}
    config = StackConfig(
        work_dir=tmp_path_factory.mktemp("smoke-stack"),
        minio=minio_endpoint,
        bucket="smoke-services",
        storage_env={f"MEDIAGEN_STORAGE_{k}": v for k, v in token.items()},
        generator_env={f"MEDIAGEN_GENERATOR_{k}": v for k, v in token.items()},
        gateway_env={
            "MEDIAGEN_GATEWAY_AUTH_TOKEN": TOKEN,
            "MEDIAGEN_GATEWAY_GENERATOR_TOKEN": TOKEN,
            "MEDIAGEN_GATEWAY_STORAGE_TOKEN": TOKEN,
        },
    )
    with LocalStack(config) as started:
        yield started


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
async def test_reflection_lists_and_describes_the_service(stack: LocalStack, service: Service) -> None:
    address = stack.addresses[service.name]
    code, out, err = await grpcurl("-plaintext", address, "list")
    assert code == 0, err
    assert {service.full_name, "grpc.health.v1.Health"} <= set(out.split())
    code, out, err = await grpcurl("-plaintext", address, "describe", service.full_name)
    assert code == 0, err
    assert f"rpc {service.method} (" in out


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
async def test_health_is_serving_without_a_token(stack: LocalStack, service: Service) -> None:
    code, out, err = await grpcurl("-plaintext", stack.addresses[service.name], "grpc.health.v1.Health/Check")
    assert code == 0, err
    assert '"status": "SERVING"' in out


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
async def test_calls_need_the_bearer_token(stack: LocalStack, service: Service) -> None:
    address, method = stack.addresses[service.name], f"{service.full_name}/{service.method}"
    code, _, err = await grpcurl("-plaintext", "-d", service.body, address, method)
    assert code != 0
    assert "Unauthenticated" in err
    code, out, err = await grpcurl(
        "-plaintext", "-H", f"authorization: Bearer {TOKEN}", "-d", service.body, address, method
    )
    assert service.authenticated_answer in out + err


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def _tls(pki: Pki) -> dict[str, Any]:
    return {"tls_cert_file": pki.server_cert, "tls_key_file": pki.server_key}


TLS_SPECS: dict[str, Callable[[LocalStack, Pki], tuple[Any, Any]]] = {
    "gateway": lambda s, p: (
        build_gateway,
        GatewaySettings(
            generator_target=s.addresses["generator"],
            storage_target=s.addresses["storage"],
            generator_token=TOKEN,
            storage_token=TOKEN,
            **_tls(p),
        ),
    ),
    "generator": lambda s, p: (build_generator, GeneratorSettings(comfyui_urls=s.comfyui_url, **_tls(p))),
    "storage": lambda s, p: (
        build_storage,
        StorageSettings(
            minio_endpoint=s.minio.endpoint if s.minio else "",
            minio_access_key=s.minio.access_key if s.minio else "",
            minio_secret_key=s.minio.secret_key if s.minio else "",
            bucket="smoke-tls",
            **_tls(p),
        ),
    ),
}


@pytest.fixture(params=SERVICES, ids=lambda s: s.name)
async def tls_server(
    request: pytest.FixtureRequest, stack: LocalStack, pki: Pki
) -> AsyncIterator[tuple[Service, RunningServer]]:
    service: Service = request.param
    build, settings = TLS_SPECS[service.name](stack, pki)
    spec: ServiceSpec = await build(settings)
    running = await start_server(spec, settings)
    yield service, running
    await running.stop(0)


async def test_tls_with_a_test_ca(
    tls_server: tuple[Service, RunningServer], pki: Pki, tmp_path: Path
) -> None:
    service, running = tls_server
    code, out, err = await grpcurl("-cacert", str(pki.ca_cert), running.address, "list")
    assert code == 0, err
    assert service.full_name in out.split()
    code, out, err = await grpcurl(
        "-cacert", str(pki.ca_cert), running.address, "grpc.health.v1.Health/Check"
    )
    assert code == 0, err
    assert '"status": "SERVING"' in out
    code, _, err = await grpcurl("-plaintext", running.address, "list")
    assert code != 0
