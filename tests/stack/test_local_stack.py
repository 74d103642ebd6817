"""A local stack shaped like a scaled deployment: API-only gateway, worker gateways, two backends."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import grpc
import pytest

from mediagen.stack.local import LocalStack, StackConfig
from mediagen.stack.minio import MinioEndpoint
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2, storage_pb2
from tests.conftest import empty_and_remove_bucket

pytestmark = pytest.mark.e2e


def submit(stub: gateway_pb2_grpc.GatewayServiceStub, color: int) -> str:
    workflow = generator_pb2.WorkflowSpec(template="solid_image")
    workflow.parameters["width"].int_value = 8
    workflow.parameters["color"].int_value = color
    request = gateway_pb2.SubmitRunRequest(outputs=[gateway_pb2.OutputSpec(workflow=workflow)])
    return str(stub.SubmitRun(request, timeout=30).run_id)


def wait_succeeded(stub: gateway_pb2_grpc.GatewayServiceStub, run_id: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        status = stub.GetRun(storage_pb2.GetRunRequest(run_id=run_id), timeout=30).status
        if status.state == gateway_pb2.RUN_STATE_SUCCEEDED:
            return
        assert status.state in (gateway_pb2.RUN_STATE_QUEUED, gateway_pb2.RUN_STATE_RUNNING), status
        assert time.monotonic() < deadline, f"run {run_id} still {status.state}"
        time.sleep(0.2)


def test_worker_gateways_execute_runs_and_a_killed_one_can_be_respawned(
    tmp_path: Path, minio_endpoint: MinioEndpoint
) -> None:
    bucket = f"e2e-{uuid.uuid4().hex[:16]}"
    config = StackConfig(
        work_dir=tmp_path,
        minio=minio_endpoint,
        bucket=bucket,
        comfyui_url="",
        comfyui_command="",
        simulators=2,
        gateway_env={"MEDIAGEN_GATEWAY_ROLE": "api"},
        gateway_workers=1,
    )
    with LocalStack(config) as stack:
        assert len(stack.comfyui_urls) == 2
        assert {"comfyui-sim", "comfyui-sim-2", "worker-1", "nats"} <= set(stack.pids())
        with grpc.insecure_channel(stack.gateway_address) as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            wait_succeeded(stub, submit(stub, 0x102030))

            stack.processes["worker-1"].kill()
            queued = submit(stub, 0x405060)  # the API gateway still accepts; nobody executes it
            time.sleep(1.0)
            status = stub.GetRun(storage_pb2.GetRunRequest(run_id=queued), timeout=30).status
            assert status.state == gateway_pb2.RUN_STATE_QUEUED
            stack.respawn("worker-1")
            wait_succeeded(stub, queued)
    empty_and_remove_bucket(minio_endpoint.client(), bucket)
