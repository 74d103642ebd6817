"""The aiohttp application: prediction routes, output delivery, control routes, start/stop.

A prediction is ``starting`` (queued), then ``processing`` (its ``logs`` grow by one tqdm line per
inference step), then ``succeeded`` with ``output`` a list of delivery URLs, or ``failed`` with
``error``, or ``canceled``. ``Prefer: wait[=n]`` holds the creating request until the
prediction ends or ``n`` seconds pass (60 at most), then answers with its state at that moment.
Errors are the provider's problem-details bodies (``{"title", "detail", "status"}``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sim_scaffold.control import Logged, add_control_routes
from sim_scaffold.serving import SimHandle, start_hosted

from . import models
from .config import Faults, PredictionsSimConfig

TERMINAL = ("succeeded", "failed", "canceled")
MAX_WAIT = 60
SAFETY_ERROR = "NSFW content detected. Try running it again, or try a different prompt."
PREFER_WAIT = re.compile(r"^\s*wait(?:\s*=\s*(\d+))?\s*$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        self.headers: dict[str, str] = {}

    def response(self) -> web.Response:
        body = {"title": self.title, "detail": self.detail, "status": self.status, **self.extra}
        return web.json_response(
            body, status=self.status, headers=self.headers, content_type="application/problem+json"
        )


@dataclass
class Prediction:
    id: str
    model: models.Model
    input: dict[str, Any]
    base_url: str
    status: str = "starting"
    logs: str = ""
    output: list[str] | None = None
    error: str | None = None
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    completed_at: str | None = None
    started: float = 0.0
    created: float = field(default_factory=time.monotonic)
    predict_time: float | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def to_json(self) -> dict[str, Any]:
        api = f"{self.base_url}/v1/predictions/{self.id}"
        metrics: dict[str, Any] = {}
        if self.predict_time is not None:
            metrics = {
                "predict_time": round(self.predict_time, 6),
                "total_time": round(time.monotonic() - self.created, 6),
            }
        return {
            "id": self.id,
            "model": self.model.full_name,
            "version": self.model.version,
            "input": self.input,
            "logs": self.logs,
            "output": self.output,
            "data_removed": False,
            "error": self.error,
            "status": self.status,
            "source": "api",
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "urls": {"get": api, "cancel": f"{api}/cancel", "web": f"{self.base_url}/p/{self.id}"},
            "metrics": metrics,
        }


@dataclass
class Simulator:
    config: PredictionsSimConfig
    url: str = ""
    predictions: dict[str, Prediction] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    deliveries: list[tuple[str, bool]] = field(default_factory=list)
    """Output downloads: the path, and whether an ``Authorization`` header came with it."""
    _creates: int = 0

    @property
    def faults(self) -> Faults:
        return self.config.faults

    def halt(self) -> None:
        for prediction in self.predictions.values():
            if prediction.task is not None:
                prediction.task.cancel()

    @web.middleware
    async def front_door(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Log, authenticate and apply server-error faults to every API request."""
        entry = Logged.of(request)
        api = request.path.startswith("/v1/")
        if api and request.path != "/v1/account":  # the log is of work requests, not probes
            self.log.append(entry)
        try:
            if api:
                self._authorize(request)
                if self.faults.server_error():
                    raise Problem(500, "Internal Server Error", "An unexpected error occurred.")
            response: web.StreamResponse = await handler(request)
        except Problem as exc:
            response = exc.response()
        entry.status = response.status
        return response

    def _authorize(self, request: web.Request) -> None:
        if not self.config.api_token:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme not in ("Bearer", "Token") or token != self.config.api_token:
            raise Problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    # -- routes ---------------------------------------------------------------------------------

    async def create_by_version(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        version = str(body.get("version", ""))
        model = models.VERSIONS.get(version.rsplit(":", 1)[-1]) or models.MODELS.get(version)
        if model is None:
            raise Problem(
                422,
                "Invalid version or not permitted",
                "The specified version does not exist (or perhaps you don't have permission to use it?)",
            )
        return await self._create(request, model, body)

    async def create_by_model(self, request: web.Request) -> web.Response:
        name = f"{request.match_info['owner']}/{request.match_info['name']}"
        model = models.MODELS.get(name)
        if model is None:
            raise Problem(404, "Not found", f"Model {name} not found")
        return await self._create(request, model, await self._body(request))

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self._find(request).to_json())

    async def cancel(self, request: web.Request) -> web.Response:
        prediction = self._find(request)
        if prediction.status not in TERMINAL:
            if prediction.task is not None:
                prediction.task.cancel()
            self._end(prediction, "canceled")
        return web.json_response(prediction.to_json())

    async def account(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"type": "organization", "username": "mediagen", "name": "mediagen", "github_url": None}
        )

    async def file(self, request: web.Request) -> web.StreamResponse:
        self.deliveries.append((request.path, "Authorization" in request.headers))
        found = self.files.get(f"{request.match_info['id']}/{request.match_info['name']}")
        if found is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = found
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = len(data)
        await response.prepare(request)
        limit = self.faults.truncate_after
        body = data if limit is None else data[:limit]
        rate = self.faults.body_bytes_per_s
        for start in range(0, len(body), 64 * 1024):
            await response.write(body[start : start + 64 * 1024])
            if rate:
                await asyncio.sleep(min(64 * 1024, len(body) - start) / rate)
        if limit is not None and limit < len(data):
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    # -- predictions ----------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise Problem(400, "Bad Request", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise Problem(400, "Bad Request", "The request body must be a JSON object.")
        return body

    async def _create(self, request: web.Request, model: models.Model, body: dict[str, Any]) -> web.Response:
        wait = _prefer_wait(request.headers.get("Prefer", ""))
        self._admit()
        values, problems = models.validate(model, body.get("input"))
        if problems:
            detail = "".join(f"- {p['field']}: {p['description']}\n" for p in problems)
            raise Problem(422, "Input validation failed", detail, invalid_fields=problems)
        prediction = Prediction(secrets.token_hex(13)[:26], model, values, self.url)
        self.predictions[prediction.id] = prediction
        prediction.task = asyncio.create_task(self._run(prediction))
        if wait:
            try:
                async with asyncio.timeout(wait):
                    await prediction.ended.wait()
            except TimeoutError:
                pass
        return web.json_response(prediction.to_json(), status=201)

    def _admit(self) -> None:
        self._creates += 1
        if self.faults.rate_limited(self._creates):
            seconds = self.faults.retry_after_s
            problem = Problem(
                429,
                "Request was throttled.",
                f"Request was throttled. Expected available in {seconds:g} second{_plural(seconds)}.",
            )
            problem.headers = {"Retry-After": f"{seconds:g}"}
            raise problem

    def _find(self, request: web.Request) -> Prediction:
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            raise Problem(404, "Not found", "Not found.")
        return prediction

    async def _run(self, prediction: Prediction) -> None:
        faults = self.faults
        if faults.queue_delay_s:
            await asyncio.sleep(faults.queue_delay_s)
        prediction.status, prediction.started_at, prediction.started = "processing", _now(), time.monotonic()
        values = prediction.input
        steps = int(values.get("num_inference_steps", 4))
        prediction.logs += f"Using seed: {values.get('seed', 0)}\n"
        for step in range(1, steps + 1):
            await asyncio.sleep(faults.step_delay_s)
            percent = step * 100 // steps
            bar = "█" * (percent // 10) + " " * (10 - percent // 10)
            prediction.logs += f"{percent:3d}%|{bar}| {step}/{steps} [00:00<00:00, 9.9it/s]\n"
        while faults.hang:  # noqa: ASYNC110 - a knob flipped from outside, polled
            await asyncio.sleep(0.05)
        if faults.fail_next > 0:
            faults.fail_next -= 1
            prediction.logs += "Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n"
            self._end(prediction, "failed", "CUDA out of memory. Tried to allocate 2.00 GiB")
            return
        if not values.get("disable_safety_checker") and faults.refuses(str(values.get("prompt", ""))):
            self._end(prediction, "failed", SAFETY_ERROR)
            return
        urls = []
        for index in range(int(values.get("num_outputs", 1))):
            data, extension, content_type = await asyncio.to_thread(models.render, values, index)
            name = f"out-{index}.{extension}"
            self.files[f"{prediction.id}/{name}"] = (data, content_type)
            urls.append(f"{self.url}/delivery/{prediction.id}/{name}")
        prediction.output = urls
        self._end(prediction, "succeeded")

    def _end(self, prediction: Prediction, status: str, error: str | None = None) -> None:
        prediction.status, prediction.error, prediction.completed_at = status, error, _now()
        if prediction.started:
            prediction.predict_time = time.monotonic() - prediction.started
        prediction.ended.set()


def _plural(seconds: float) -> str:
    return "" if seconds == 1 else "s"


def _prefer_wait(header: str) -> float:
    for item in header.split(","):
        match = PREFER_WAIT.match(item)
        if match:
            return float(min(int(match.group(1) or MAX_WAIT), MAX_WAIT))
    return 0.0


PredictionsSimHandle = SimHandle[Simulator, Faults]


def build_app(simulator: Simulator) -> web.Application:
    app = web.Application(middlewares=[simulator.front_door])
    app.router.add_post("/v1/predictions", simulator.create_by_version)
    app.router.add_post("/v1/models/{owner}/{name}/predictions", simulator.create_by_model)
    app.router.add_get("/v1/predictions/{id}", simulator.get)
    app.router.add_post("/v1/predictions/{id}/cancel", simulator.cancel)
    app.router.add_get("/v1/account", simulator.account)
    app.router.add_get("/delivery/{id}/{name}", simulator.file)
    add_control_routes(app, simulator.faults, simulator.log)
    return app


async def start_predictions_sim(config: PredictionsSimConfig) -> PredictionsSimHandle:
    simulator = Simulator(config)
    return await start_hosted(simulator, config.faults, build_app(simulator), config.host, config.port)
