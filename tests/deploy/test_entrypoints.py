"""Each pod of the dev overlay, started outside a container, becomes ready as its probes define it.

Every container runs its image's ENTRYPOINT (read from the Dockerfile) plus the
manifest's args, with the image's ENV and the manifest's env (Secrets resolved
from the rendered objects). Only what a laptop cannot be is rewritten: each
container port to a free loopback port, the in-cluster Service names to
127.0.0.1, volume mounts to temporary folders, the MinIO tenant to the test
session's real MinIO and the NATS cluster to the session's real nats-server.
Then each container is waited for with its own probes
(gRPC health for the services, HTTP for the simulator): the gateway only turns
SERVING once both peers it found through the Services' addresses are SERVING.
Then one run goes through the gateway with the client token from the rendered
Secret, so the tokens the manifests hand each service are shown to match.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc import aio

from mediagen.ports import free_port
from mediagen.stack.minio import MinioEndpoint
from mediagen.stack.nats import NatsEndpoint
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving, http_answers
from mediagen.v1 import gateway_pb2_grpc
from tests.conftest import empty_and_remove_bucket
from tests.deploy.manifests import (
    ROOT,
    Obj,
    container_env,
    dockerfile_stages,
    named,
    of_kind,
    pod_spec,
    sidecars,
    target_of,
)
from tests.gateway.runs import output, request, run

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
# The services start in the order a rollout would leave them: peers before the gateway.
ORDER = ("storage", "generator", "gateway")


@dataclass
class Local:
    """How this machine stands in for the cluster."""

    ports: dict[int, int]  # containerPort -> free loopback port
    hosts: set[str]  # in-cluster names that all mean "this machine" here
    mounts: dict[str, Path]  # mountPath -> a temporary folder
    minio: MinioEndpoint
    bucket: str
    nats: NatsEndpoint

    def address(self, value: str) -> str:
        def local(match: re.Match[str]) -> str:
            host, port = match.group(1), int(match.group(2))
            if host in self.hosts and port in self.ports:
                return f"{LOOPBACK}:{self.ports[port]}"
            return match.group(0)

        return re.sub(r"([A-Za-z0-9.-]+):(\d+)", local, value)

    def rewrite(self, value: str) -> str:
        if value.isdigit() and int(value) in self.ports:
            return str(self.ports[int(value)])
        if value == "0.0.0.0":
            return LOOPBACK
        for mount in sorted(self.mounts, key=len, reverse=True):
            if value == mount or value.startswith(mount + "/"):
                return str(self.mounts[mount]) + value[len(mount) :]
        return self.address(value)

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        local = {key: self.rewrite(value) for key, value in env.items()}
        if "MEDIAGEN_STORAGE_MINIO_ENDPOINT" in env:  # the tenant lives outside the namespace
            local |= {
                "MEDIAGEN_STORAGE_MINIO_ENDPOINT": self.minio.endpoint,
                "MEDIAGEN_STORAGE_MINIO_SECURE": "true" if self.minio.secure else "false",
                "MEDIAGEN_STORAGE_MINIO_ACCESS_KEY": self.minio.access_key,
                "MEDIAGEN_STORAGE_MINIO_SECRET_KEY": self.minio.secret_key,
                "MEDIAGEN_STORAGE_BUCKET": self.bucket,
            }
        for service in ("GENERATOR", "GATEWAY"):  # so is the NATS cluster: one local server here
            if f"MEDIAGEN_{service}_NATS_URL" in env:
                local |= {
                    f"MEDIAGEN_{service}_NATS_URL": self.nats.url,
                    f"MEDIAGEN_{service}_NATS_REPLICAS": "1",
                }
        return local


def cluster_names(objects: list[Obj]) -> set[str]:
    names = {"localhost", LOOPBACK, "0.0.0.0"}
    for service in of_kind(objects, "Service"):
        name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
        names |= {
            name,
            f"{name}.{namespace}",
            f"{name}.{namespace}.svc",
            f"{name}.{namespace}.svc.cluster.local",
        }
    return names


def container_ports(objects: list[Obj]) -> set[int]:
    return {
        port["containerPort"]
        for deployment in of_kind(objects, "Deployment")
        for container in pod_spec(deployment)["containers"] + sidecars(deployment)
        for port in container.get("ports", [])
    }


def service_ports_reach_containers(objects: list[Obj]) -> None:
    """Every Service port leads to a named container port of the pods it selects."""
    for service in of_kind(objects, "Service"):
        selector = service["spec"]["selector"]
        pods = [
            d
            for d in of_kind(objects, "Deployment")
            if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        assert pods, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            names = {
                (p.get("name"), p["containerPort"])
                for c in pod_spec(pods[0])["containers"]
                for p in c.get("ports", [])
            }
            assert (port["targetPort"], port["port"]) in names, service["metadata"]["name"]


def probe_check(local: Local, probe: Obj) -> Callable[[], bool]:
    if "grpc" in probe:
        address = f"{LOOPBACK}:{local.ports[probe['grpc']['port']]}"
        service = probe["grpc"].get("service", "")
        return lambda: grpc_serving(address, service)
    url = f"http://{LOOPBACK}:{local.ports[probe['httpGet']['port']]}{probe['httpGet']['path']}"
    return lambda: http_answers(url)


def argv_of(container: Obj, local: Local) -> list[str]:
    stage = dockerfile_stages(ROOT / "Dockerfile")[target_of(container)]
    argv = list(container.get("command") or stage.entrypoint) + list(container.get("args", []))
    assert argv[0] == "python", f"{container['name']}: the image runs {argv[0]}, not python"
    return [sys.executable, *(local.rewrite(word) for word in argv[1:])]


def parent_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("MEDIAGEN_")}


@dataclass
class Running:
    name: str
    container: Obj
    sidecar: bool
    process: ManagedProcess


def start(objects: list[Obj], local: Local, name: str, work_dir: Path) -> Iterator[Running]:
    """Starts one pod's containers, sidecars first, each sidecar waited for by its startup probe."""
    deployment = named(objects, "Deployment", name)
    volumes = {volume["name"] for volume in pod_spec(deployment).get("volumes", [])}
    stages = dockerfile_stages(ROOT / "Dockerfile")
    pod = [(c, True) for c in sidecars(deployment)] + [(c, False) for c in pod_spec(deployment)["containers"]]
    for container, sidecar in pod:
        local.mounts = {}
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{name}: no volume {mount['name']}"
            local.mounts[mount["mountPath"]] = work_dir / name / mount["name"]
            local.mounts[mount["mountPath"]].mkdir(parents=True, exist_ok=True)
        env = stages[target_of(container)].env | container_env(objects, container)
        label = f"{name}/{container['name']}"
        process = ManagedProcess(
            label,
            argv_of(container, local),
            parent_environment() | local.environment(env),
            work_dir / "logs" / f"{name}-{container['name']}.log",
        )
        yield Running(label, container, sidecar, process)
        if sidecar:
            process.wait_until(probe_check(local, container["startupProbe"]), START_TIMEOUT, "started")


@dataclass
class Deployed:
    ready: list[str]  # containers found ready, in order
    gateway: str  # the gateway's local address
    client_token: str  # what the gateway's callers present, from the rendered Secret
    bucket: str


@pytest.fixture(scope="module")
def deployed(
    rendered,
    tmp_path_factory: pytest.TempPathFactory,
    minio_endpoint: MinioEndpoint,
    nats_endpoint: NatsEndpoint,
) -> Iterator[Deployed]:
    """Every container of the dev overlay, started and ready, writing to a bucket of its own."""
    objects = rendered["dev"]
    service_ports_reach_containers(objects)
    work_dir = tmp_path_factory.mktemp("deployed")
    bucket = f"deploy-{uuid.uuid4().hex[:16]}"
    local = Local(
        ports={port: free_port(LOOPBACK) for port in container_ports(objects)},
        hosts=cluster_names(objects),
        mounts={},
        minio=minio_endpoint,
        bucket=bucket,
        nats=nats_endpoint,
    )
    (gateway,) = pod_spec(named(objects, "Deployment", "gateway"))["containers"]
    running: list[Running] = []
    try:
        for name in ORDER:
            running.extend(start(objects, local, name, work_dir))
        ready = [part.name for part in running if part.sidecar]
        for part in running:
            if not part.sidecar:
                check = probe_check(local, part.container["readinessProbe"])
                part.process.wait_until(check, START_TIMEOUT, "ready")
                ready.append(part.name)
        yield Deployed(
            ready,
            f"{LOOPBACK}:{local.ports[gateway['ports'][0]['containerPort']]}",
            container_env(objects, gateway)["MEDIAGEN_GATEWAY_AUTH_TOKEN"],
            bucket,
        )
    finally:
        for part in reversed(running):
            part.process.stop()
        client = minio_endpoint.client()
        if client.bucket_exists(bucket):
            empty_and_remove_bucket(client, bucket)


def test_every_container_of_the_dev_overlay_starts_and_becomes_ready(deployed):
    assert deployed.ready == [
        "generator/comfyui",
        "storage/storage",
        "generator/generator",
        "gateway/gateway",
    ]


async def test_a_run_through_the_deployed_gateway_is_stored(deployed, minio_endpoint: MinioEndpoint):
    """The tokens, peers and bucket the manifests wire together carry a whole run."""
    async with aio.insecure_channel(deployed.gateway) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await run(stub, request(output("solid_image", width=8, height=8)))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        authorized = (("authorization", f"Bearer {deployed.client_token}"),)
        events = [
            event
            async for event in stub.Generate(
                request(output("solid_image", width=32, height=16)), metadata=authorized, timeout=60
            )
        ]
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[-1] == "run_completed", kinds
    assert events[-1].run_completed.media_stored == 1
    (stored,) = [event.media_stored.record for event in events if event.WhichOneof("event") == "media_stored"]
    assert stored.bucket == deployed.bucket
    stat = minio_endpoint.client().stat_object(deployed.bucket, stored.key)
    assert stat.size == stored.descriptor.size_bytes > 0
