"""A backend that generates through an OpenAI-compatible Images API.

One job is one HTTP request: ``POST /v1/images/generations`` (JSON) or ``/v1/images/edits``
(multipart, the input image as a file). Without streaming the answer is one JSON document whose
``data`` items are the outputs, ``b64_json`` decoded as it arrives (see :mod:`b64stream`) or a
``url`` downloaded afterwards (streamed, without the key). With ``partial_images`` the request
streams (``stream: true``): each ``*.partial_image`` event becomes a progress report (it is a
preview, not an output) and each ``*.completed`` event's image is streamed as an output. ``n``
items of one output are its media items 0..n-1.

The provider has no cancel call: leaving the request (closing the connection) is how a job is
stopped, so cancelling and the deadline both end it by closing the response. Refusals map to
statuses a caller can act on: content policy → FAILED_PRECONDITION with the provider's code,
other 4xx → INVALID_ARGUMENT naming the provider's ``param``, 429 past the deadline →
RESOURCE_EXHAUSTED, 5xx → UNAVAILABLE.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
import httpx

from generator_service.media_types import format_name, media_kind
from generator_service.providers.b64stream import (
    B64JsonScanner,
    EventData,
    EventEnd,
    EventName,
    ImageBytes,
    ImageEnd,
    ImageStart,
    MalformedBody,
    sse_events,
)
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

POLICY_CODES = ("moderation_blocked", "content_policy_violation", "content_filter", "safety_violation")
_TYPE = re.compile(rb'"type"\s*:\s*"([^"]+)"')


class ImagesApiBackend(HttpBackend):
    kind = BackendKind.IMAGES_API
    probe_path = "/v1/models"

    def __init__(
        self, name: str, url: str, *, key: str, capacity: int, http_timeout: float, model: str = ""
    ) -> None:
        super().__init__(name, url, key=key, capacity=capacity, http_timeout=http_timeout)
        self.model = model
        """Replaces the template's model (e.g. the name a compatible server gives its model)."""

    async def cancel(self, provider_id: str) -> bool:
        return True  # closing the request is the only cancel this API has; the job did that

    async def run(self, workflow: ProviderWorkflow, context: RunContext) -> AsyncGenerator[RunEvent, None]:
        template = workflow.template
        body: dict[str, Any] = {"model": self.model or template.model, **workflow.request}
        partials = int(body.pop("partial_images", 0) or 0)
        if partials:
            body["stream"], body["partial_images"] = True, partials
        output_format = str(body.get("output_format", "png"))
        ids = RequestIds(self.name, context.job_id)
        path = f"/v1/images/{template.operation}"
        if template.operation == "edits":
            request: dict[str, Any] = {
                "data": _form(body),
                "files": [
                    (i.field, (i.filename, i.data, media_kind(i.filename).mime)) for i in workflow.images
                ],
            }
        else:
            request = {"json": body}
        async with self.http.send("POST", path, context, _describe, ids, **request) as response:
            yield Queued("")
            yield Progressed(
                common_pb2.Progress(
                    stage=common_pb2.PROGRESS_STAGE_EXECUTING, nodes_total=int(body.get("n", 1))
                )
            )
            try:
                if partials:
                    async for event in self._streamed(
                        response, context, output_format, partials, int(body.get("n", 1)), ids=ids
                    ):
                        yield event
                else:
                    async for event in self._answered(response, context, output_format, ids):
                        yield event
            except MalformedBody as exc:
                raise unavailable(f"POST {path}: {exc}", ids, "PROVIDER_BAD_ANSWER") from None
            except httpx.HTTPError as exc:
                raise ServiceError(
                    grpc.StatusCode.DATA_LOSS,
                    f"POST {path}: the answer broke off ({type(exc).__name__})",
                    "TRUNCATED_DOWNLOAD",
                    ids.metadata(),
                ) from None

    async def _answered(
        self, response: httpx.Response, context: RunContext, output_format: str, ids: RequestIds
    ) -> AsyncIterator[RunEvent]:
        scanner = B64JsonScanner()
        async for read in response.aiter_bytes():  # decoded: providers compress JSON answers
            for piece in scanner.feed(read):
                if isinstance(piece, ImageStart):
                    yield _begin(context, piece.index, output_format)
                elif isinstance(piece, ImageBytes):
                    yield MediaBytes(piece.data)
                else:
                    yield MediaDone()
        document = scanner.document()
        items = document.get("data") if isinstance(document, dict) else None
        if not isinstance(items, list) or not items:
            raise MalformedBody("the answer has no data items")
        for index, item in enumerate(items):
            url = item.get("url") if isinstance(item, dict) else None
            if index < scanner.images:
                continue
            if not isinstance(url, str) or not url:
                raise MalformedBody(f"data item {index} has neither b64_json nor url")
            async for event in download(self.http, url, _name(context, index, output_format), ids):
                yield event

    async def _streamed(
        self,
        response: httpx.Response,
        context: RunContext,
        output_format: str,
        partials: int,
        count: int,
        *,
        ids: RequestIds,
    ) -> AsyncIterator[RunEvent]:
        name, scanner, done, previews = "", B64JsonScanner(), 0, 0
        streaming = False
        async for piece in sse_events(response.aiter_bytes()):
            if isinstance(piece, EventName):
                name = piece.name
            elif isinstance(piece, EventData):
                for part in scanner.feed(piece.data):
                    if isinstance(part, ImageStart):
                        kind = name or _event_type(part.preceding)
                        streaming = kind.endswith(".completed")
                        if streaming:
                            yield _begin(context, done, output_format)
                    elif isinstance(part, ImageBytes) and streaming:
                        yield MediaBytes(part.data)
                    elif isinstance(part, ImageEnd) and streaming:
                        yield MediaDone()
            elif isinstance(piece, EventEnd):
                kind = name or _event_type_of(scanner)
                if kind.endswith(".partial_image"):
                    previews += 1
                    yield Progressed(_progress(previews, partials, done, count))
                elif kind.endswith(".completed"):
                    done += 1
                elif kind == "error" or kind.endswith(".failed"):
                    raise _stream_error(scanner, ids)
                name, scanner, streaming = "", B64JsonScanner(), False
        if done == 0:
            raise MalformedBody("the event stream ended without a completed image")


def _progress(previews: int, partials: int, done: int, count: int) -> common_pb2.Progress:
    return common_pb2.Progress(
        stage=common_pb2.PROGRESS_STAGE_EXECUTING,
        node_type="partial_image",
        value=min(previews - done * partials, partials),
        max=partials,
        nodes_done=done,
        nodes_total=count,
    )


def _event_type(text: bytes) -> str:
    match = _TYPE.search(text)
    return match.group(1).decode() if match else ""


def _event_type_of(scanner: B64JsonScanner) -> str:
    try:
        document = scanner.document()
    except MalformedBody:
        return ""
    return str(document.get("type", "")) if isinstance(document, dict) else ""


def _stream_error(scanner: B64JsonScanner, ids: RequestIds) -> ServiceError:
    try:
        document = scanner.document()
    except MalformedBody:
        document = {}
    return _describe(400, document if isinstance(document, dict) else {}, ids)


def _begin(context: RunContext, index: int, output_format: str) -> MediaBegin:
    name = _name(context, index, output_format)
    kind = media_kind(name)
    return MediaBegin(name, kind.mime, kind.format, kind.media_type)


def _name(context: RunContext, index: int, output_format: str) -> str:
    return f"{context.output_name(index)}.{format_name(output_format)}"


def _form(body: dict[str, Any]) -> dict[str, str]:
    """Multipart fields are text: booleans as ``true``/``false``, numbers as digits."""
    return {
        key: (str(value).lower() if isinstance(value, bool) else str(value)) for key, value in body.items()
    }


def _describe(status: int, body: Any, ids: RequestIds) -> ServiceError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    kind = str(error.get("type") or "")
    message = str(error.get("message") or f"the provider refused the request (HTTP {status})")[:500]
    metadata = ids.metadata(provider_status=str(status), provider_code=code, provider_type=kind)
    if code in POLICY_CODES or "safety" in kind or kind == "image_generation_user_error":
        return ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the provider's content policy refused the request: {message}",
            "CONTENT_POLICY",
            metadata,
        )
    if status == 404:
        return ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the provider does not offer this: {message}",
            "PROVIDER_NOT_FOUND",
            metadata,
        )
    param = str(error.get("param") or "")
    where = f"provider.{param}" if param else "provider"
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the provider refused the request: {message}",
        "PROVIDER_REJECTED",
        metadata,
        [FieldViolation(where, message)],
    )
