"""Certificates rotated in place: missing, foreign, expired and replaced ones.

A service and a client re-read their certificate files when those change; new
connections use the new files, calls already running finish on the old ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from mediagen.scaffold import RunningServer, ServerSettings, start_server, watched
from mediagen.scaffold.channels import open_channel
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.scaffold.probe_service import ProbeServicer, probe_spec
from tests.support.certs import ThrowawayCa


@pytest.fixture(autouse=True)
def look_at_files_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watched, "CHECK_INTERVAL", 0.0)


async def events(channel: aio.Channel) -> AsyncIterator[generator_pb2.GenerateEvent]:
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    async for event in stub.Generate(generator_pb2.GenerateRequest(), timeout=20):
        yield event


async def one_event(channel: aio.Channel) -> generator_pb2.GenerateEvent:
    async for event in events(channel):
        return event
    raise AssertionError("no event")


async def refused(channel: aio.Channel) -> grpc.StatusCode:
    with pytest.raises(aio.AioRpcError) as caught:
        await one_event(channel)
    return caught.value.code()


async def mtls_server(
    ca: ThrowawayCa, servicer: ProbeServicer | None = None
) -> tuple[RunningServer, str, Path, Path]:
    cert, key = ca.issue("localhost", server=True)
    settings = ServerSettings(tls_cert_file=cert, tls_key_file=key, tls_client_ca_file=ca.cert_file)
    running = await start_server(probe_spec(servicer), settings)
    return running, f"localhost:{running.port}", cert, key


async def test_missing_foreign_and_expired_client_certificates_are_refused(tmp_path: Path) -> None:
    ca, foreign = ThrowawayCa(tmp_path / "ca"), ThrowawayCa(tmp_path / "foreign", "another CA")
    running, target, _, _ = await mtls_server(ca)
    try:
        cert, key = ca.issue("alice")
        async with open_channel(target, ca_file=ca.cert_file, cert_file=cert, key_file=key) as good:
            assert (await one_event(good)).progress.value == 1
        async with open_channel(target, ca_file=ca.cert_file) as missing:
            assert await refused(missing) == grpc.StatusCode.UNAVAILABLE
        cert, key = foreign.issue("mallory")
        async with open_channel(target, ca_file=ca.cert_file, cert_file=cert, key_file=key) as stranger:
            assert await refused(stranger) == grpc.StatusCode.UNAVAILABLE
        cert, key = ca.issue("late", valid_for=-dt.timedelta(hours=1))
        async with open_channel(target, ca_file=ca.cert_file, cert_file=cert, key_file=key) as expired:
            assert await refused(expired) == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0)


async def test_client_picks_up_its_renewed_certificate_without_a_new_channel(tmp_path: Path) -> None:
    ca = ThrowawayCa(tmp_path / "ca")
    running, target, _, _ = await mtls_server(ca)
    try:
        files = ca.issue("worker", valid_for=-dt.timedelta(hours=1))
        async with open_channel(target, ca_file=ca.cert_file, cert_file=files[0], key_file=files[1]) as ch:
            assert await refused(ch) == grpc.StatusCode.UNAVAILABLE
            ca.issue("worker", into=files)
            assert (await one_event(ch)).progress.value == 1
    finally:
        await running.stop(0)


async def test_a_running_call_survives_the_rotation_of_both_sides(tmp_path: Path) -> None:
    """Server and client certificates are replaced while a stream runs: it finishes, new calls work."""
    ca = ThrowawayCa(tmp_path / "ca")
    running, target, server_cert, server_key = await mtls_server(ca, ProbeServicer(events=6, interval=0.2))
    try:
        files = ca.issue("worker")
        async with open_channel(target, ca_file=ca.cert_file, cert_file=files[0], key_file=files[1]) as ch:
            seen: list[int] = []
            first = asyncio.Event()

            async def long_call() -> None:
                async for event in events(ch):
                    seen.append(event.progress.value)
                    first.set()

            streaming = asyncio.create_task(long_call())
            await first.wait()
            ca.issue("localhost", server=True, into=(server_cert, server_key))
            ca.issue("worker", into=files)
            assert (await one_event(ch)).progress.value == 1  # a new connection, new files
            await streaming
            assert seen == [1, 2, 3, 4, 5, 6]
    finally:
        await running.stop(0)


async def test_server_serves_its_new_certificate_to_new_connections(tmp_path: Path) -> None:
    """The server's certificate moves to a new CA: clients trusting only the new CA get in."""
    old_ca, new_ca = ThrowawayCa(tmp_path / "old"), ThrowawayCa(tmp_path / "new", "new CA")
    cert, key = old_ca.issue("localhost", server=True)
    running = await start_server(probe_spec(), ServerSettings(tls_cert_file=cert, tls_key_file=key))
    target = f"localhost:{running.port}"
    try:
        async with open_channel(target, ca_file=new_ca.cert_file) as before:
            assert await refused(before) == grpc.StatusCode.UNAVAILABLE
        new_ca.issue("localhost", server=True, into=(cert, key))
        async with open_channel(target, ca_file=new_ca.cert_file) as after:
            assert (await one_event(after)).progress.value == 1
    finally:
        await running.stop(0)
