"""The aiohttp application: the Images API routes, the simulator's control routes, start/stop.

Wire shapes follow the provider's reference: a generation answers
``{"created", "data": [{"b64_json"} | {"url", "revised_prompt"}], "size", "quality", "background",
"output_format", "usage"}``; with ``"stream": true`` it answers server-sent events
(``image_generation.partial_image`` then ``image_generation.completed`` per image, ``image_edit.*``
for edits); every failure is ``{"error": {"message", "type", "param", "code"}}`` with the HTTP
status the provider uses. Bodies are written in pieces (``b64_json`` as it is encoded) so the slow
and truncated-stream faults act on a real stream.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sim_scaffold.control import Logged, add_control_routes
from sim_scaffold.serving import SimHandle, start_hosted

from . import pictures
from .config import Faults, ImagesSimConfig

B64_PIECE = 48 * 1024
"""Raw bytes per base64 piece written (a multiple of 3, so pieces concatenate into valid base64)."""
GPT_IMAGE_MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5")
DALLE_MODELS = ("dall-e-2", "dall-e-3")
QUALITIES = ("auto", "low", "medium", "high")
BACKGROUNDS = ("auto", "transparent", "opaque")
GENERATION_FIELDS = {
    "model", "prompt", "n", "size", "quality", "background", "output_format", "output_compression",
    "moderation", "stream", "partial_images", "response_format", "style", "user",
}  # fmt: skip
EDIT_FIELDS = GENERATION_FIELDS - {"moderation", "style"} | {"image", "image[]", "mask", "input_fidelity"}


class ApiError(Exception):
    """Answered as the provider's error envelope."""

    def __init__(self, status: int, message: str, kind: str, code: str | None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers: dict[str, str] = {}

    def response(self) -> web.Response:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return web.json_response(body, status=self.status, headers=self.headers)


@dataclass
class Request:
    """One image request, checked: what to draw and how to answer."""

    operation: str
    model: str
    prompt: str
    n: int
    size: str
    quality: str
    background: str
    output_format: str
    stream: bool
    partial_images: int
    response_format: str
    source: bytes = b""


@dataclass
class Simulator:
    config: ImagesSimConfig
    url: str = ""
    log: list[Logged] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    deliveries: list[tuple[str, bool]] = field(default_factory=list)
    """URL-output downloads: the path, and whether an ``Authorization`` header came with it."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the simulator stops: hung requests end then."""
    _count: int = 0

    @property
    def faults(self) -> Faults:
        return self.config.faults

    def halt(self) -> None:
        self.stopping.set()

    # -- routes ---------------------------------------------------------------------------------

    async def generations(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "generations")

    async def edits(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "edits")

    async def models(self, request: web.Request) -> web.Response:
        try:
            self._authorize(request)
        except ApiError as exc:
            return exc.response()
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "system"}
            for name in GPT_IMAGE_MODELS + DALLE_MODELS
        ]
        return web.json_response({"object": "list", "data": data})

    async def file(self, request: web.Request) -> web.StreamResponse:
        """A URL output (as the provider's blob storage would serve it: no bearer needed)."""
        self.deliveries.append((request.path, "Authorization" in request.headers))
        data = self.files.get(request.match_info["token"])
        if data is None:
            return web.Response(status=404, text="The specified blob does not exist.")
        kind = request.match_info["ext"]
        response = web.StreamResponse(headers={"Content-Type": f"image/{kind}"})
        response.content_length = len(data)
        await response.prepare(request)
        await self._write(request, response, data, [0])
        await response.write_eof()
        return response

    # -- one API request ------------------------------------------------------------------------

    async def _serve(self, request: web.Request, operation: str) -> web.StreamResponse:
        entry = Logged.of(request)
        self.log.append(entry)
        try:
            self._authorize(request)
            parsed = await (
                self._read_json(request) if operation == "generations" else self._read_form(request)
            )
            self._admit()
            if self.faults.hang:
                await self.stopping.wait()
                return web.Response(status=503)
            self._moderate(parsed)
            entry.status = 200
            if parsed.stream:
                return await self._stream(request, parsed)
            return await self._answer(request, parsed)
        except ApiError as exc:
            entry.status = exc.status
            return exc.response()

    def _authorize(self, request: web.Request) -> None:
        if not self.config.api_key:
            return
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        if header.removeprefix("Bearer ") != self.config.api_key:
            raise ApiError(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    def _admit(self) -> None:
        """Rate limits and server errors, in the order the provider's front door applies them."""
        self._count += 1
        if self.faults.rate_limited(self._count):
            error = ApiError(
                429,
                "Rate limit reached for images per minute. Please try again later.",
                "requests",
                "rate_limit_exceeded",
            )
            error.headers = {
                "retry-after": f"{self.faults.retry_after_s:g}",
                "x-ratelimit-remaining-requests": "0",
            }
            raise error
        if self.faults.server_error():
            raise ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            )

    def _moderate(self, parsed: Request) -> None:
        if self.faults.refuses(parsed.prompt):
            raise ApiError(
                400,
                "Your request was rejected as a result of our safety system. Your request may contain "
                "content that is not allowed by our safety system.",
                "image_generation_user_error",
                "moderation_blocked",
            )

    async def _read_json(self, request: web.Request) -> Request:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(
                400, "We could not parse the JSON body of your request.", "invalid_request_error", None
            ) from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.", "invalid_request_error", None)
        return _check("generations", body, GENERATION_FIELDS)

    async def _read_form(self, request: web.Request) -> Request:
        if not request.content_type.startswith("multipart/form-data"):
            raise ApiError(
                400,
                "Invalid Content-Type header (application/json), expected multipart/form-data.",
                "invalid_request_error",
                None,
            )
        fields: dict[str, Any] = {}
        images: list[bytes] = []
        reader = await request.multipart()
        async for part in reader:
            name = getattr(part, "name", None) or ""
            if name in ("image", "image[]", "mask"):
                data = await part.read()  # type: ignore[union-attr]
                if len(data) > self.config.max_image_bytes:
                    raise ApiError(
                        400, f"Image too large: {len(data)} bytes.", "invalid_request_error", None, name
                    )
                if not pictures.is_image(bytes(data)):
                    raise ApiError(
                        400,
                        "Invalid image file or mode for image 1, please check your image file.",
                        "invalid_request_error",
                        "invalid_image_file",
                        name,
                    )
                if name != "mask":
                    images.append(bytes(data))
            else:
                fields[name] = await part.text()  # type: ignore[union-attr]
        for key in ("n", "partial_images", "output_compression"):
            if key in fields:
                fields[key] = _integer(fields[key], key)
        if "stream" in fields:
            fields["stream"] = str(fields["stream"]).lower() == "true"
        if not images:
            raise ApiError(
                400,
                "Missing required parameter: 'image'.",
                "invalid_request_error",
                "missing_required_parameter",
                "image",
            )
        parsed = _check("edits", fields, EDIT_FIELDS)
        parsed.source = images[0]
        return parsed

    # -- answers --------------------------------------------------------------------------------

    async def _answer(self, request: web.Request, parsed: Request) -> web.StreamResponse:
        if self.faults.render_delay_s:
            await asyncio.sleep(self.faults.render_delay_s)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression(web.ContentCoding.gzip)  # as the provider compresses JSON
        await response.prepare(request)
        sent = [0]
        head = {"created": int(time.time())}
        await self._write(request, response, json.dumps(head)[:-1].encode() + b', "data": [', sent)
        for index in range(parsed.n):
            image = await asyncio.to_thread(_draw, parsed, index)
            if index:
                await self._write(request, response, b", ", sent)
            if parsed.response_format == "url":
                token = secrets.token_hex(16)
                self.files[token] = image
                item = {
                    "url": f"{self.url}/blobs/{token}.{parsed.output_format}",
                    "revised_prompt": parsed.prompt,
                }
                await self._write(request, response, json.dumps(item).encode(), sent)
                continue
            await self._write(request, response, b'{"b64_json": "', sent)
            for start in range(0, len(image), B64_PIECE):
                await self._write(request, response, base64.b64encode(image[start : start + B64_PIECE]), sent)
            await self._write(request, response, b'"}', sent)
        tail = {**_settings(parsed), "usage": _usage(parsed)}
        await self._write(request, response, b"], " + json.dumps(tail)[1:].encode(), sent)
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, parsed: Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = [0]
        prefix = "image_generation" if parsed.operation == "generations" else "image_edit"
        for index in range(parsed.n):
            for partial in range(parsed.partial_images):
                if self.faults.partial_delay_s:
                    await asyncio.sleep(self.faults.partial_delay_s)
                coarse = 2 ** (parsed.partial_images - partial)
                image = await asyncio.to_thread(_draw, parsed, index, coarse)
                event = {
                    "type": f"{prefix}.partial_image",
                    "b64_json": base64.b64encode(image).decode(),
                    "created_at": int(time.time()),
                    **_settings(parsed),
                    "partial_image_index": partial,
                }
                await self._write(request, response, _sse(event), sent)
            if self.faults.render_delay_s:
                await asyncio.sleep(self.faults.render_delay_s)
            image = await asyncio.to_thread(_draw, parsed, index)
            await self._write(request, response, f"event: {prefix}.completed\ndata: ".encode(), sent)
            await self._write(
                request, response, f'{{"type": "{prefix}.completed", "b64_json": "'.encode(), sent
            )
            for start in range(0, len(image), B64_PIECE):
                await self._write(request, response, base64.b64encode(image[start : start + B64_PIECE]), sent)
            tail = {"created_at": int(time.time()), **_settings(parsed), "usage": _usage(parsed)}
            await self._write(request, response, b'", ' + json.dumps(tail)[1:].encode() + b"\n\n", sent)
        await response.write_eof()
        return response

    async def _write(
        self, request: web.Request, response: web.StreamResponse, data: bytes, sent: list[int]
    ) -> None:
        """Write with the throttle and truncation faults applied; ``sent`` counts body bytes."""
        limit = self.faults.truncate_after
        if limit is not None and sent[0] + len(data) > limit:
            await response.write(data[: max(limit - sent[0], 0)])
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError("truncated by fault")
        rate = self.faults.body_bytes_per_s
        if rate:
            for start in range(0, len(data), 16 * 1024):
                piece = data[start : start + 16 * 1024]
                await response.write(piece)
                await asyncio.sleep(len(piece) / rate)
        else:
            await response.write(data)
        sent[0] += len(data)


def _check(operation: str, body: dict[str, Any], allowed: set[str]) -> Request:
    for key in body:
        if key not in allowed:
            raise ApiError(
                400, f"Unknown parameter: '{key}'.", "invalid_request_error", "unknown_parameter", key
            )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(
            400,
            "Missing required parameter: 'prompt'.",
            "invalid_request_error",
            "missing_required_parameter",
            "prompt",
        )
    model = body.get("model") or ("gpt-image-1" if operation == "edits" else "dall-e-2")
    if model not in GPT_IMAGE_MODELS + DALLE_MODELS:
        raise ApiError(
            404, f"The model '{model}' does not exist.", "invalid_request_error", "model_not_found", "model"
        )
    gpt = model in GPT_IMAGE_MODELS
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise ApiError(
            400,
            f"Invalid 'n': integer between 1 and 10 expected, got {n!r}.",
            "invalid_request_error",
            "invalid_value",
            "n",
        )
    size = body.get("size", "auto" if gpt else "1024x1024")
    sizes = (
        ("auto", *pictures.SIZES) if gpt else ("256x256", "512x512", "1024x1024", "1792x1024", "1024x1792")
    )
    if size not in sizes:
        raise ApiError(
            400,
            f"Invalid value: '{size}'. Supported values are: {', '.join(repr(s) for s in sizes)}.",
            "invalid_request_error",
            "invalid_value",
            "size",
        )
    quality = body.get("quality", "auto")
    if gpt and quality not in QUALITIES:
        raise ApiError(
            400,
            f"Invalid value: '{quality}'. Supported values are: 'low', 'medium', 'high', and 'auto'.",
            "invalid_request_error",
            "invalid_value",
            "quality",
        )
    background = body.get("background", "auto")
    if background not in BACKGROUNDS:
        raise ApiError(
            400, f"Invalid value: '{background}'.", "invalid_request_error", "invalid_value", "background"
        )
    output_format = body.get("output_format", "png")
    if output_format not in pictures.FORMATS:
        raise ApiError(
            400,
            f"Invalid value: '{output_format}'. Supported values are: 'png', 'jpeg', and 'webp'.",
            "invalid_request_error",
            "invalid_value",
            "output_format",
        )
    if background == "transparent" and output_format == "jpeg":
        raise ApiError(
            400,
            "Transparent background requires output_format png or webp.",
            "invalid_request_error",
            "invalid_value",
            "background",
        )
    response_format = body.get("response_format", "b64_json" if gpt else "url")
    if gpt and "response_format" in body:
        raise ApiError(
            400,
            "Unknown parameter: 'response_format'.",
            "invalid_request_error",
            "unknown_parameter",
            "response_format",
        )
    if response_format not in ("url", "b64_json"):
        raise ApiError(
            400,
            f"Invalid value: '{response_format}'.",
            "invalid_request_error",
            "invalid_value",
            "response_format",
        )
    stream = bool(body.get("stream", False))
    if stream and not gpt:
        raise ApiError(
            400,
            "Streaming is not supported for this model.",
            "invalid_request_error",
            "invalid_value",
            "stream",
        )
    partial = body.get("partial_images", 0)
    if not isinstance(partial, int) or not 0 <= partial <= 3:
        raise ApiError(
            400,
            "Invalid 'partial_images': integer between 0 and 3 expected.",
            "invalid_request_error",
            "invalid_value",
            "partial_images",
        )
    return Request(
        operation,
        model,
        prompt,
        n,
        size,
        quality,
        background,
        output_format,
        stream,
        partial,
        response_format,
    )


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ApiError(
            400, f"Invalid '{name}': integer expected.", "invalid_request_error", "invalid_value", name
        ) from None


def _draw(parsed: Request, index: int, coarse: int = 1) -> bytes:
    if parsed.operation == "edits":
        size = parsed.size if coarse == 1 else _coarse_size(parsed.size, coarse)
        return pictures.edit(parsed.source, parsed.prompt, index, size, parsed.output_format)
    return pictures.render(parsed.prompt, index, parsed.size, parsed.output_format, parsed.background, coarse)


def _coarse_size(size: str, coarse: int) -> str:
    width, height = pictures.dimensions(size)
    return f"{max(width // coarse, 1)}x{max(height // coarse, 1)}"


def _settings(parsed: Request) -> dict[str, Any]:
    size = parsed.size if parsed.size != "auto" else pictures.SIZES[0]
    background = parsed.background if parsed.background != "auto" else "opaque"
    quality = parsed.quality if parsed.quality != "auto" else "medium"
    return {"size": size, "quality": quality, "background": background, "output_format": parsed.output_format}


def _usage(parsed: Request) -> dict[str, Any]:
    text = max(len(parsed.prompt) // 4, 1)
    image = 323 if parsed.source else 0
    output = {"low": 272, "medium": 1056, "high": 4160}.get(_settings(parsed)["quality"], 1056) * parsed.n
    return {
        "input_tokens": text + image,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image},
        "output_tokens": output,
        "total_tokens": text + image + output,
    }


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


ImagesSimHandle = SimHandle[Simulator, Faults]


def build_app(simulator: Simulator) -> web.Application:
    app = web.Application(client_max_size=simulator.config.max_image_bytes * 2 + 1024 * 1024)
    app.router.add_post("/v1/images/generations", simulator.generations)
    app.router.add_post("/v1/images/edits", simulator.edits)
    app.router.add_get("/v1/models", simulator.models)
    app.router.add_get("/blobs/{token}.{ext}", simulator.file)
    add_control_routes(app, simulator.faults, simulator.log)
    return app


async def start_images_sim(config: ImagesSimConfig) -> ImagesSimHandle:
    simulator = Simulator(config)
    return await start_hosted(simulator, config.faults, build_app(simulator), config.host, config.port)
