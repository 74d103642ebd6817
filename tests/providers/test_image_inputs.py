"""Image inputs are bound by one rule for every template kind, and it says the same words.

Each bad set of ``workflow.inputs`` below goes to a ComfyUI template and to a provider template,
through the generator's ``Generate`` and ``ValidateWorkflows`` and through the gateway (which asks
``ValidateWorkflows`` before a run exists): all must answer exactly the listed violations, each
problem named once at the input that is wrong, the gateway's under ``outputs[0].``.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from minio import Minio

from comfyui_sim.server import SimulatorHandle
from images_api_sim import ImagesSimHandle
from mediagen.scaffold.errors import status_details, status_of_rpc_error
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2
from predictions_sim import PredictionsSimHandle
from tests.gateway import runs
from tests.gateway.conftest import start_gateway, stop_gateway, storage
from tests.generator.support import run, template_request
from tests.providers.conftest import backends, generator_with
from tests.storage.conftest import StorageServer

__all__ = ["storage"]

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
NOT_AN_IMAGE = "is not an image file this service recognises"
REQUIRED = ("workflow.inputs[image]", "this image input is required")
TEMPLATES = ("sd15_img2img", "gpt_image_edit")
"""A ComfyUI and a provider template, each with one required image parameter ``image``."""


def image(parameter: str = "image", data: bytes = PNG_HEAD) -> generator_pb2.InputMedia:
    return generator_pb2.InputMedia(parameter=parameter, filename="in.png", data=data)


@dataclass(frozen=True)
class Case:
    name: str
    inputs: tuple[generator_pb2.InputMedia, ...]
    violations: list[tuple[str, str]]


CASES = [
    Case("no input for a required image", (), [REQUIRED]),
    Case("empty input", (image(data=b""),), [("workflow.inputs[0].data", "is empty")]),
    Case("input that is not an image", (image(data=b"hello"),), [("workflow.inputs[0].data", NOT_AN_IMAGE)]),
    Case(
        "image bound twice",
        (image(), image()),
        [("workflow.inputs[1].parameter", "'image' is bound twice")],
    ),
    Case(
        "bad input, then the same parameter again",
        (image(data=b""), image()),
        [
            ("workflow.inputs[0].data", "is empty"),
            ("workflow.inputs[1].parameter", "'image' is bound twice"),
        ],
    ),
    Case(
        "good input, then a bad one for the same parameter",
        (image(), image(data=b"GIF")),
        [("workflow.inputs[1].parameter", "'image' is bound twice")],
    ),
    Case(
        "unknown parameter only",
        (image("mask"),),
        [("workflow.inputs[0].parameter", "'mask' is not an image parameter"), REQUIRED],
    ),
    Case(
        "a parameter that is not an image",
        (image("prompt"), image()),
        [("workflow.inputs[0].parameter", "'prompt' is not an image parameter")],
    ),
]


def job(template: str, case: Case) -> generator_pb2.GenerateRequest:
    request = template_request(template, prompt="a cat")
    request.workflow.inputs.extend(case.inputs)
    return request


async def test_every_image_input_rule_says_the_same_for_every_template_kind(
    simulator: SimulatorHandle,
    images_sim: ImagesSimHandle,
    predictions_sim: PredictionsSimHandle,
    monkeypatch: pytest.MonkeyPatch,
    storage: StorageServer,
    minio_client: Minio,
    bucket: str,
) -> None:
    declared = backends(images_sim.url, predictions_sim.url)
    wrong: list[str] = []
    async with generator_with(monkeypatch, declared, comfyui_urls=simulator.url) as (server, stub):
        gateway = await start_gateway(generator_target=server.address, storage_target=storage.address)
        try:
            jobs = [job(template, case) for case in CASES for template in TEMPLATES]
            reply = await stub.ValidateWorkflows(generator_pb2.ValidateWorkflowsRequest(jobs=jobs))
            validated: dict[int, list[tuple[str, str]]] = {}
            for v in reply.violations:
                validated.setdefault(v.job_index, []).append((v.field, v.description))
            for index, request in enumerate(jobs):
                case = CASES[index // len(TEMPLATES)]
                template = request.workflow.template
                if validated.get(index, []) != case.violations:
                    wrong.append(f"{case.name} on {template}: ValidateWorkflows said {validated.get(index)}")
                result = await run(stub, request)
                said = (
                    (result.error.code, [(v.field, v.description) for v in result.error.violations])
                    if result.error is not None
                    else None
                )
                if said != (grpc.StatusCode.INVALID_ARGUMENT, case.violations):
                    wrong.append(f"{case.name} on {template}: Generate said {said}")
                relayed = await via_gateway(gateway.stub, request)
                expected = (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    [(f"outputs[0].{f}", d) for f, d in case.violations],
                )
                if relayed != expected:
                    wrong.append(f"{case.name} on {template}: the gateway said {relayed}")
        finally:
            await stop_gateway(gateway)
    assert wrong == [], "\n".join(wrong)
    assert list(minio_client.list_objects(bucket, recursive=True)) == []
    assert simulator.state()["prompts_run"] == 0
    assert images_sim.log == []


async def via_gateway(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub, job: generator_pb2.GenerateRequest
) -> tuple[grpc.StatusCode, list[tuple[str, str]]] | None:
    """What the gateway answers for the job as its one output, before any run exists."""
    req = runs.request(gateway_pb2.OutputSpec(workflow=job.workflow), run_id="never-created")
    try:
        await runs.run(stub, req)
    except grpc.aio.AioRpcError as err:
        details = status_details(status_of_rpc_error(err))
        return details.code, [(v.field, v.description) for v in details.violations]
    return None
