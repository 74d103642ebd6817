"""The local stack (``make demo`` / ``make stack``) with a ComfyUI the generator manages.

A command that cannot start stops the stack's start with the generator's report of it; a
running one leaves nothing behind: no temporary folder, no output or uploaded file once streamed.
A failed output reports the time it ran before ComfyUI died.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from grpc import aio

from mediagen.stack.local import LocalStack, StackConfig
from mediagen.stack.minio import MinioEndpoint
from mediagen.stack.process import ProcessExited
from mediagen.v1 import gateway_pb2_grpc, generator_pb2, generator_pb2_grpc
from tests.e2e.stack import run_demo
from tests.gateway.runs import output, request, run
from tests.generator.support import wait_until

pytestmark = pytest.mark.e2e
SIM = f"{sys.executable} -m comfyui_sim --host {{host}} --port {{port}} --data-dir {{data_dir}}"


def _config(work_dir: Path, minio: MinioEndpoint, command: str) -> StackConfig:
    return StackConfig(work_dir=work_dir, minio=minio, comfyui_url="", comfyui_command=command)


def test_a_comfyui_command_that_cannot_start_is_reported_by_the_stack(
    tmp_path: Path, minio_endpoint: MinioEndpoint
) -> None:
    stack = LocalStack(_config(tmp_path, minio_endpoint, "cd /opt/ComfyUI"))
    with pytest.raises(ProcessExited) as failed:
        stack.start()
    report = str(failed.value)
    assert "generator exited with 2" in report
    assert "exit code 127 before answering" in report
    assert "cannot run 'cd'" in report


async def test_a_managed_stack_leaves_no_files_and_times_its_failures(
    tmp_path: Path, minio_endpoint: MinioEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the processes' temporary directory
    work = tmp_path / "work"
    with LocalStack(_config(work, minio_endpoint, SIM)) as stack:
        async with aio.insecure_channel(stack.addresses["generator"]) as channel:
            generator = generator_pb2_grpc.GeneratorServiceStub(channel)
            status = await generator.GetBackendStatus(generator_pb2.GetBackendStatusRequest())
            comfyui = status.backends[0].url
        async with httpx.AsyncClient(base_url=comfyui, timeout=5) as http:
            faults = {"node_delay_s": {"EmptyImage": 1.5}, "crash_on_node": ["ImageInvert"]}
            (await http.post("/sim/faults", json=faults)).raise_for_status()
        async with aio.insecure_channel(stack.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            events = await run(
                stub, request(output("solid_image", width=16, height=16), output("inverted_image", width=8))
            )
        stored, crashed = events.completed.outputs
        assert stored.error.code == 0
        assert len(stored.media_ids) == 1
        assert crashed.error.code == grpc.StatusCode.UNAVAILABLE.value[0], crashed.error
        assert crashed.timings.execution.ToNanoseconds() >= 1.5e9, crashed.timings
        assert crashed.timings.total.ToNanoseconds() >= crashed.timings.execution.ToNanoseconds()
        data = work / "comfyui-managed" / "0"
        assert data.is_dir(), "the managed ComfyUI's data lives in the stack's work dir"
        await wait_until(lambda: not [p for p in (data / "output").rglob("*") if p.is_file()], within=5)
    assert not list(temp.glob("mediagen-comfyui-*"))


def _demo(tmp_path: Path, command: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``python -m mediagen.demo`` (what ``make demo`` runs) on a managed ComfyUI, its own temp dir."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    return run_demo(tmp_path, timeout=120, MEDIAGEN_COMFYUI_COMMAND=command, TMPDIR=str(temp)), temp


def test_make_demo_on_a_managed_comfyui_leaves_no_temporary_folder(tmp_path: Path) -> None:
    result, temp = _demo(tmp_path, SIM)
    assert result.returncode == 0, result.stdout + result.stderr
    media = re.findall(r"s3://mediagen/runs/\w+/media/\S+", result.stdout)
    assert len(media) == 5, result.stdout  # three from ComfyUI, one per remote kind
    assert not list(temp.iterdir()), "the demo left these in the temp dir"


def test_make_demo_prints_why_the_comfyui_command_did_not_start(tmp_path: Path) -> None:
    result, temp = _demo(tmp_path, f"{sys.executable} main.py --port {{port}}")
    assert result.returncode == 1
    assert "the stack did not start" in result.stdout
    assert "ComfyUI process exited with exit code 2 before answering" in result.stdout
    assert "can't open file" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(temp.iterdir())
