"""The fuzz checks catch what they are there to catch: a checker that flags nothing proves nothing."""

from __future__ import annotations

import asyncio
import io
import uuid

import grpc

from bench.fuzz.cases import Case
from bench.fuzz.checks import MAX_MESSAGE, Session, _status_problems
from bench.fuzz.graphs import small_image_graph
from bench.fuzz.target import Status
from mediagen.v1 import storage_pb2


def test_a_status_is_judged_by_code_and_size() -> None:
    assert _status_problems("status", Status(grpc.StatusCode.INVALID_ARGUMENT, "bad run_id", 120)) == []
    kinds = [
        p.split(":", 1)[0]
        for status in (
            Status(grpc.StatusCode.INTERNAL, "internal error", 0),
            Status(grpc.StatusCode.UNKNOWN, "", 0),
            Status(grpc.StatusCode.INVALID_ARGUMENT, "é" * MAX_MESSAGE, 0),
            Status(grpc.StatusCode.INVALID_ARGUMENT, "x", 9000),
            Status(grpc.StatusCode.RESOURCE_EXHAUSTED, "received metadata size exceeds hard limit", 0),
        )
        for p in _status_problems("status", status)
    ]
    assert kinds == ["INTERNAL", "UNKNOWN", "long message", "large details", "oversized status"]


async def test_an_ok_answer_to_a_rule_breaking_request_is_a_problem(fuzz_session: Session) -> None:
    case = Case(
        "storage", "CreateRun", "create", storage_pb2.CreateRunRequest(run_id="ok-id"), must_refuse=True
    )
    problems = await fuzz_session.run_case(case)
    assert [p.split(":", 1)[0] for p in problems] == ["accepted"]


async def test_an_object_no_call_wrote_is_found(fuzz_session: Session) -> None:
    target = fuzz_session.target
    assert await fuzz_session.end_batch() == []
    await asyncio.to_thread(
        target.minio.put_object, target.bucket, "runs/never-created/run.json", io.BytesIO(b"{}"), 2
    )
    problems = await fuzz_session.end_batch(settle=0.5)
    assert any(p.startswith("stored for refused: runs/never-created/run.json") for p in problems)


async def test_a_prompt_run_twice_is_found(fuzz_session: Session) -> None:
    target = fuzz_session.target
    assert target.http is not None
    await fuzz_session.begin()
    prompt_id = str(uuid.uuid4())
    for _ in range(2):
        body = {"prompt": small_image_graph(), "prompt_id": prompt_id, "client_id": "fuzz-self-test"}
        response = await target.http.post("/prompt", json=body)
        assert response.status_code == 200, response.text
        await target.sim_idle()
    problems = await fuzz_session.end_batch(settle=5)
    assert any(p.startswith("ran twice") and prompt_id in p for p in problems)
