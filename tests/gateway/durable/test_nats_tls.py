"""NATS over mutual TLS: the gateway's runs and the generator's journal connect with a client
certificate; a client without one is not let in, and says why instead of hanging.

A nats-server of its own with ``--tlsverify`` and a throwaway CA made here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import nats
import pytest

from generator_service.nats_journal import NatsJournal
from mediagen.scaffold import RunningServer
from mediagen.scaffold.tls import client_ssl_context
from mediagen.stack.nats import LocalNats, NatsEndpoint, NatsServerTls
from mediagen.v1 import gateway_pb2
from tests.gateway.conftest import start_gateway, stop_gateway
from tests.gateway.durable.conftest import run_settings, wait_connected
from tests.gateway.durable.support import submit_request, wait_state
from tests.gateway.runs import output
from tests.storage.conftest import StorageServer
from tests.support.certs import Pki, make_test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_test_pki(tmp_path_factory.mktemp("nats-pki"))


@pytest.fixture(scope="module")
def tls_nats(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[NatsEndpoint]:
    server = LocalNats(
        tmp_path_factory.mktemp("nats-tls"),
        tls=NatsServerTls(pki.server_cert, pki.server_key, client_ca_file=pki.ca_cert),
    )
    yield server.start()
    server.stop()


async def test_a_durable_run_goes_through_nats_over_mutual_tls(
    generator: RunningServer, storage: StorageServer, tls_nats: NatsEndpoint, pki: Pki, nats_prefix: str
) -> None:
    gateway = await start_gateway(
        generator_target=generator.address,
        storage_target=storage.address,
        **run_settings(tls_nats, nats_prefix),
        nats_ca_file=pki.ca_cert,
        nats_cert_file=pki.client_cert,
        nats_key_file=pki.client_key,
    )
    try:
        await wait_connected(gateway)
        status = await gateway.stub.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
        done = await wait_state(gateway.stub, status.run_id, gateway_pb2.RUN_STATE_SUCCEEDED, within=60.0)
        assert len(done.media) == 1
    finally:
        await stop_gateway(gateway)


async def test_a_gateway_without_a_client_certificate_is_not_let_in(
    generator: RunningServer, storage: StorageServer, tls_nats: NatsEndpoint, pki: Pki, nats_prefix: str
) -> None:
    gateway = await start_gateway(
        generator_target=generator.address,
        storage_target=storage.address,
        **run_settings(tls_nats, nats_prefix),
        nats_ca_file=pki.ca_cert,  # TLS, but no certificate to show
    )
    try:
        for _ in range(100):  # until an attempt to connect has failed, and says so
            with pytest.raises(grpc.RpcError) as refused:
                await gateway.stub.SubmitRun(submit_request(output("solid_image", width=8, height=8)))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            if "last error" in (refused.value.details() or ""):
                break
            await asyncio.sleep(0.1)
        assert "last error" in (refused.value.details() or ""), refused.value.details()
    finally:
        await stop_gateway(gateway)


async def test_the_generator_journal_connects_over_mutual_tls(tls_nats: NatsEndpoint, pki: Pki) -> None:
    journal = NatsJournal(
        tls_nats.url,
        "TLSJOURNAL",
        lease_seconds=3.0,
        tls=client_ssl_context(pki.ca_cert, pki.client_cert, pki.client_key),
    )
    await asyncio.wait_for(journal.start(), 20)
    try:
        await journal.record("http://comfy", "prompt-1")  # written to its bucket over TLS
        await journal.remove("prompt-1")
    finally:
        await journal.close()


async def test_a_plaintext_client_is_refused(tls_nats: NatsEndpoint) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - nats-py raises the TLS failure as it comes
        await nats.connect(tls_nats.url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)


def test_client_certificate_settings_come_in_pairs(tmp_path: Path) -> None:
    from gateway.settings import GatewaySettings

    with pytest.raises(ValueError, match="nats_cert_file and nats_key_file"):
        GatewaySettings.model_validate({"nats_cert_file": tmp_path / "c.pem"})
