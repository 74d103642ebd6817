"""Named callers: several tokens at once, rotated through a file, and certificate names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from mediagen.scaffold import RunningServer, ServerSettings, ServiceSpec, start_server, watched
from mediagen.scaffold.callers import current_caller
from mediagen.scaffold.channels import open_channel
from mediagen.scaffold.logging import current_log_ids
from mediagen.scaffold.settings import load_settings
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.scaffold.probe_service import SERVICE, ProbeServicer
from tests.support.certs import ThrowawayCa


class WhoAmI(ProbeServicer):
    """ListWorkflows answers with one template named after the caller, ``!`` marking an admin."""

    async def ListWorkflows(self, request: Any, context: Any) -> generator_pb2.ListWorkflowsResponse:
        caller = current_caller()
        assert current_log_ids()["caller"] == caller.name  # every log line of the call names it
        name = caller.name + ("!" if caller.admin else "")
        return generator_pb2.ListWorkflowsResponse(templates=[generator_pb2.WorkflowTemplate(name=name)])


def spec() -> ServiceSpec:
    return ServiceSpec(
        "whoami", [(SERVICE, generator_pb2_grpc.add_GeneratorServiceServicer_to_server, WhoAmI())]
    )


@pytest.fixture(autouse=True)
def look_at_files_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watched, "CHECK_INTERVAL", 0.0)


async def whoami(target: str, **channel: Any) -> str:
    async with open_channel(target, **channel) as ch:
        stub = generator_pb2_grpc.GeneratorServiceStub(ch)
        reply = await stub.ListWorkflows(generator_pb2.ListWorkflowsRequest(), timeout=5)
    return str(reply.templates[0].name)


async def refused(target: str, **channel: Any) -> grpc.StatusCode:
    with pytest.raises(aio.AioRpcError) as caught:
        await whoami(target, **channel)
    return caught.value.code()


def write_tokens(path: Path, text: str) -> None:
    staged = path.with_suffix(".new")
    staged.write_text(text)
    staged.replace(path)


async def test_each_token_names_its_caller_and_the_single_token_is_the_default_admin(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    write_tokens(tokens, "# callers\nalice:a-secret\n\nops:o-secret:admin\n")
    settings = ServerSettings(auth_token="shared", auth_tokens_file=tokens, named_callers="alice")
    running = await start_server(spec(), settings)
    try:
        assert await whoami(running.address, token="a-secret") == "alice"
        assert await whoami(running.address, token="o-secret") == "ops!"
        assert await whoami(running.address, token="shared") == "default!"
        assert await refused(running.address, token="nope") == grpc.StatusCode.UNAUTHENTICATED
        assert await refused(running.address) == grpc.StatusCode.UNAUTHENTICATED
        sample = REGISTRY.get_sample_value(
            "mediagen_rpc_calls_by_caller_total", {"service": "whoami", "caller": "alice", "code": "OK"}
        )
        assert sample is not None
        assert sample >= 1
    finally:
        await running.stop(0)


async def test_a_token_rotation_accepts_both_tokens_during_the_overlap(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    write_tokens(tokens, "alice:old-token\n")
    running = await start_server(spec(), ServerSettings(auth_tokens_file=tokens))
    target = running.address
    try:
        assert await refused(target, token="new-token") == grpc.StatusCode.UNAUTHENTICATED
        write_tokens(tokens, "alice:old-token\nalice:new-token\n")
        assert await whoami(target, token="old-token") == "alice"
        assert await whoami(target, token="new-token") == "alice"
        write_tokens(tokens, "alice:new-token\n")
        assert await refused(target, token="old-token") == grpc.StatusCode.UNAUTHENTICATED
        assert await whoami(target, token="new-token") == "alice"
        write_tokens(tokens, "alice has no colon\n")  # a broken file keeps the last good tokens
        assert await whoami(target, token="new-token") == "alice"
    finally:
        await running.stop(0)


async def test_client_certificate_common_name_names_the_caller(tmp_path: Path) -> None:
    ca = ThrowawayCa(tmp_path)
    cert, key = ca.issue("localhost", server=True)
    settings = ServerSettings(
        tls_cert_file=cert,
        tls_key_file=key,
        tls_client_ca_file=ca.cert_file,
        admin_callers="gateway",
        log_format="json",
    )
    running = await start_server(spec(), settings)
    target = f"localhost:{running.port}"
    try:
        for name, expected in (("alice", "alice"), ("gateway", "gateway!")):
            cert_file, key_file = ca.issue(name)
            got = await whoami(target, ca_file=ca.cert_file, cert_file=cert_file, key_file=key_file)
            assert got == expected
        sample = REGISTRY.get_sample_value(
            "mediagen_rpc_calls_by_caller_total", {"service": "whoami", "caller": "other", "code": "OK"}
        )
        assert sample is not None  # alice is not a configured name: counted as "other"
    finally:
        await running.stop(0)


def test_a_bad_tokens_file_stops_the_service_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:secret\nbob\n")
    monkeypatch.setenv("MEDIAGEN_AUTH_TOKENS_FILE", str(tokens))
    with pytest.raises(SystemExit):
        load_settings(ServerSettings)
    err = capsys.readouterr().err
    assert "line 2" in err
    assert "secret" not in err


async def test_closed_reflection_wants_credentials(tmp_path: Path) -> None:
    running: RunningServer = await start_server(spec(), ServerSettings(auth_token="t", open_reflection=False))
    try:
        async with aio.insecure_channel(running.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            with pytest.raises(aio.AioRpcError) as caught:
                async for _ in call:
                    pass
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await running.stop(0)
