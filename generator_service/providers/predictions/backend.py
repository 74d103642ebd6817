"""A backend that generates through a predictions API of the Replicate kind.

A job creates one prediction (``POST /v1/models/{owner}/{name}/predictions``, or
``POST /v1/predictions`` with a ``version`` when the template pins ``owner/name:version``) with
``Prefer: wait=n``: a fast model answers finished in that one exchange. Otherwise the job polls
``GET /v1/predictions/{id}`` with a growing interval; ``starting`` is reported as queued and the
tqdm lines of ``logs`` as step progress. Outputs are URLs (one, or a list), downloaded as streams
without the key. ``failed`` becomes ABORTED with the provider's error (FAILED_PRECONDITION when its
safety checker refused), a prediction cancelled by someone else ABORTED.

Cancelling the job or passing its deadline cancels the prediction
(``POST /v1/predictions/{id}/cancel``), as ComfyUI's prompt is cancelled. The creating exchange
runs as a task of its own: a job stopped while it is in flight lets it finish in the background
(``Prefer: wait`` bounds how long) and cancels the prediction it created.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
import httpx

from generator_service.media_types import media_kind
from generator_service.providers.base import (
    BackendKind,
    MediaBegin,
    MediaBytes,
    MediaDone,
    Progressed,
    Queued,
    RunContext,
    RunEvent,
)
from generator_service.providers.http import HttpBackend, unavailable
from generator_service.providers.media import download
from generator_service.providers.request_ids import RequestIds
from generator_service.providers.templates import ProviderWorkflow
from mediagen.scaffold import FieldViolation, ServiceError
from mediagen.v1 import common_pb2

TERMINAL = ("succeeded", "failed", "canceled", "aborted")
_TQDM = re.compile(r"(\d+)%\|[^|\n]*\|\s*(\d+)/(\d+)")
SAFETY_WORDS = ("nsfw", "safety", "content policy", "flagged")
DATA_PIECE = 64 * 1024


class PredictionsBackend(HttpBackend):
    kind = BackendKind.PREDICTIONS
    probe_path = "/v1/account"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        key: str,
        capacity: int,
        http_timeout: float,
        prefer_wait: int = 5,
        poll_initial: float = 0.1,
        poll_max: float = 2.0,
    ) -> None:
        read_timeout = max(http_timeout, prefer_wait + 10.0)
        super().__init__(
            name, url, key=key, capacity=capacity, http_timeout=http_timeout, read_timeout=read_timeout
        )
        self.prefer_wait, self.poll_initial, self.poll_max = prefer_wait, poll_initial, poll_max

    async def cancel(self, provider_id: str) -> bool:
        status, _, _ = await self.http.exchange(
            "POST",
            f"/v1/predictions/{provider_id}/cancel",
            RequestIds(self.name, prediction_id=provider_id),
        )
        return status < 400

    async def run(self, workflow: ProviderWorkflow, context: RunContext) -> AsyncGenerator[RunEvent, None]:
        ids = RequestIds(self.name, context.job_id)
        prediction = await self._create(workflow, context, ids)
        provider_id = str(prediction.get("id", ""))
        if not provider_id:
            raise unavailable("the provider created a prediction without an id", ids, "PROVIDER_BAD_ANSWER")
        ids = ids.with_prediction(provider_id)
        yield Queued(provider_id)
        delay = self.poll_initial
        while str(prediction.get("status")) not in TERMINAL:
            yield Progressed(_progress(prediction))
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.poll_max)
            prediction = await self._get(provider_id, context, ids)
        status = str(prediction.get("status"))
        if status != "succeeded":
            raise _ended(status, prediction, ids)
        outputs = prediction.get("output")
        urls = [outputs] if isinstance(outputs, str) else outputs if isinstance(outputs, list) else []
        if not urls or not all(isinstance(url, str) and url for url in urls):
            raise unavailable("the prediction succeeded without output URLs", ids, "PROVIDER_BAD_ANSWER")
        yield Progressed(
            common_pb2.Progress(stage=common_pb2.PROGRESS_STAGE_TRANSFERRING, nodes_done=1, nodes_total=1)
        )
        for index, url in enumerate(urls):
            name = context.output_name(index)
            events = _data_uri(url, name) if url.startswith("data:") else download(self.http, url, name, ids)
            async for event in events:
                yield event

    async def _create(
        self, workflow: ProviderWorkflow, context: RunContext, ids: RequestIds
    ) -> dict[str, Any]:
        model = workflow.template.model
        if ":" in model:
            path, body = "/v1/predictions", {"version": model.split(":", 1)[1], "input": workflow.request}
        else:
            path, body = f"/v1/models/{model}/predictions", {"input": workflow.request}
        attempts = 0
        while True:
            attempts += 1
            remaining = context.deadline - asyncio.get_running_loop().time()
            wait = int(min(self.prefer_wait, remaining - 1.0))
            headers = {"Prefer": f"wait={wait}"} if wait >= 1 else {}
            context.attempt_started = asyncio.get_running_loop().time()
            exchange = self.spawn(self.http.exchange("POST", path, ids, json=body, headers=headers))
            try:
                status, answer_headers, answer = await asyncio.shield(exchange)
            except asyncio.CancelledError:
                exchange.add_done_callback(self._cancel_what_was_created)
                raise
            prediction = await self._prediction_or_wait(
                status,
                answer_headers,
                answer,
                context=context,
                ids=ids,
                attempts=attempts,
                what=f"POST {path}",
            )
            if prediction is not None:
                return prediction

    def _cancel_what_was_created(self, exchange: asyncio.Task[Any]) -> None:
        if exchange.cancelled() or exchange.exception() is not None:
            return
        status, _, answer = exchange.result()
        if (
            status < 400
            and isinstance(answer, dict)
            and answer.get("id")
            and answer.get("status") not in TERMINAL
        ):
            self.spawn(self._quiet_cancel(str(answer["id"])))

    async def _quiet_cancel(self, provider_id: str) -> None:
        with contextlib.suppress(ServiceError):
            await self.cancel(provider_id)

    async def _get(self, provider_id: str, context: RunContext, ids: RequestIds) -> dict[str, Any]:
        attempts = 0
        while True:
            attempts += 1
            path = f"/v1/predictions/{provider_id}"
            status, headers, answer = await self.http.exchange("GET", path, ids)
            prediction = await self._prediction_or_wait(
                status, headers, answer, context=context, ids=ids, attempts=attempts, what=f"GET {path}"
            )
            if prediction is not None:
                return prediction

    async def _prediction_or_wait(
        self,
        status: int,
        headers: httpx.Headers,
        answer: Any,
        *,
        context: RunContext,
        ids: RequestIds,
        attempts: int,
        what: str,
    ) -> dict[str, Any] | None:
        """The prediction an answer carries; None once a refusal worth asking again was waited out.

        Any other refusal raises its status, and so does a success that is not a prediction.
        """
        if status < 400 and isinstance(answer, dict):
            return answer
        if status < 400:
            raise unavailable(f"{what}: the answer is not a prediction", ids, "PROVIDER_BAD_ANSWER")
        await self.http.wait_or_raise(
            status,
            headers,
            answer,
            context=context,
            describe=_describe,
            ids=ids,
            attempts=attempts,
            what=what,
        )
        return None


def _progress(prediction: dict[str, Any]) -> common_pb2.Progress:
    if prediction.get("status") == "starting":
        return common_pb2.Progress(stage=common_pb2.PROGRESS_STAGE_QUEUED)
    progress = common_pb2.Progress(
        stage=common_pb2.PROGRESS_STAGE_EXECUTING, node_type="prediction", nodes_total=1
    )
    logs = prediction.get("logs")
    matches = _TQDM.findall(logs) if isinstance(logs, str) else []
    if matches:
        _, done, total = matches[-1]
        progress.value, progress.max = int(done), int(total)
    return progress


def _ended(status: str, prediction: dict[str, Any], ids: RequestIds) -> ServiceError:
    error = str(prediction.get("error") or "")[:500]
    metadata = ids.metadata(provider_status=status, provider_error=error)
    if status == "failed" and any(word in error.lower() for word in SAFETY_WORDS):
        return ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the provider's safety checker refused the output: {error}",
            "CONTENT_POLICY",
            {**metadata, "provider_code": "safety_checker"},
        )
    if status == "failed":
        return ServiceError(
            grpc.StatusCode.ABORTED,
            f"the prediction failed: {error or 'no error given'}",
            "EXECUTION_ERROR",
            metadata,
        )
    return ServiceError(
        grpc.StatusCode.ABORTED, f"the prediction was {status} on the provider", "INTERRUPTED", metadata
    )


async def _data_uri(uri: str, name: str) -> AsyncIterator[RunEvent]:
    """An output inlined as ``data:<mime>;base64,...`` (small outputs of synchronous runs)."""
    header, _, payload = uri.partition(",")
    mime = header[5:].split(";", 1)[0] or "application/octet-stream"
    filename = f"{name}.{mime.rsplit('/', 1)[-1]}"
    kind = media_kind(filename, served=mime)
    yield MediaBegin(filename, kind.mime, kind.format, kind.media_type)
    step = DATA_PIECE // 3 * 4
    for start in range(0, len(payload), step):
        yield MediaBytes(base64.b64decode(payload[start : start + step]))
    yield MediaDone()


def _describe(status: int, body: Any, ids: RequestIds) -> ServiceError:
    body = body if isinstance(body, dict) else {"detail": str(body)}
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")[:500]
    metadata = ids.metadata(provider_status=str(status), provider_code=str(body.get("title") or ""))
    if status == 404:
        return ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the provider does not offer this model: {detail}",
            "PROVIDER_NOT_FOUND",
            metadata,
        )
    fields = body.get("invalid_fields")
    violations = [
        FieldViolation(f"provider.{item.get('field', 'input')}", str(item.get("description", "")))
        for item in (fields if isinstance(fields, list) else [])
        if isinstance(item, dict)
    ] or [FieldViolation("provider", detail)]
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the provider refused the input: {detail.strip()}",
        "PROVIDER_REJECTED",
        metadata,
        violations,
    )
