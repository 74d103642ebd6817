"""TLS and mutual TLS from certificate files, with a test CA."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc import aio

from mediagen.scaffold import ServerSettings
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.scaffold.probe_service import serving_probe, tls_settings
from tests.support.certs import make_test_pki

REQUEST = generator_pb2.GenerateRequest()


async def first_event(channel: aio.Channel) -> generator_pb2.GenerateEvent:
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    async for event in stub.Generate(REQUEST, timeout=5):
        return event
    raise AssertionError("no event")


async def test_tls_server_answers_a_client_that_trusts_its_ca(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    async with serving_probe(tls_settings(pki)) as target:
        async with open_channel(target, ca_file=pki.ca_cert) as channel:
            assert (await first_event(channel)).progress.value == 1
        async with aio.insecure_channel(target) as plain:
            with pytest.raises(aio.AioRpcError) as caught:
                await first_event(plain)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    async with serving_probe(tls_settings(pki, mutual=True)) as target:
        async with open_channel(
            target, ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key
        ) as channel:
            assert (await first_event(channel)).progress.value == 1
        async with open_channel(target, ca_file=pki.ca_cert) as anonymous:
            with pytest.raises(aio.AioRpcError) as caught:
                await first_event(anonymous)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_settings_refuse_half_a_tls_pair(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set together"):
        ServerSettings(tls_cert_file=tmp_path / "cert.pem")
