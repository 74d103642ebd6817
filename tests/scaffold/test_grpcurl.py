"""grpcurl works on a scaffolded server as the README shows: list, describe, health, token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mediagen.scaffold import RunningServer, ServerSettings, start_server
from tests.scaffold.probe_service import SERVICE, probe_spec
from tests.support.grpcurl import grpcurl

TOKEN = "grpcurl-test-token"


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await start_server(probe_spec(), ServerSettings(auth_token=TOKEN))
    yield running
    await running.stop(0)


async def test_list_and_describe_through_reflection(server: RunningServer) -> None:
    code, out, err = await grpcurl("-plaintext", server.address, "list")
    assert code == 0, err
    assert SERVICE in out.split()
    code, out, err = await grpcurl("-plaintext", server.address, "describe", SERVICE)
    assert code == 0, err
    assert (
        "rpc Generate ( .mediagen.v1.GenerateRequest ) returns ( stream .mediagen.v1.GenerateEvent )" in out
    )


async def test_health_check_answers_without_a_token(server: RunningServer) -> None:
    code, out, err = await grpcurl("-plaintext", server.address, "grpc.health.v1.Health/Check")
    assert code == 0, err
    assert '"status": "SERVING"' in out


async def test_a_call_needs_the_bearer_token(server: RunningServer) -> None:
    method = f"{SERVICE}/Generate"
    code, _, err = await grpcurl("-plaintext", server.address, method)
    assert code != 0
    assert "Unauthenticated" in err
    code, out, err = await grpcurl(
        "-plaintext", "-H", f"authorization: Bearer {TOKEN}", server.address, method
    )
    assert code == 0, err
    assert '"progress"' in out
