"""The control side of a simulator: the request log tests read, and ``POST /sim/faults``.

Both are the simulator's own API, not the provider's: tests and benchmarks use them to see what
a client sent and to bend the simulator while it runs as a separate process.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from aiohttp import web

from .faults import FaultKnobs


@dataclass
class Logged:
    """One API request the simulator answered; ``status`` is filled in once it is known."""

    method: str
    path: str
    at: float
    status: int = 0

    @classmethod
    def of(cls, request: web.Request) -> Logged:
        return cls(request.method, request.path, time.time())


async def change_faults(faults: FaultKnobs, request: web.Request) -> web.Response:
    """Apply a partial update (``{"reset": true}`` first restores the defaults); answer the knobs.

    Anything but a JSON object of known knob names is refused with 400 and nothing changes.
    """
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "the body is not JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object"}, status=400)
    unknown = [key for key in body if key != "reset" and key not in faults.as_dict()]
    if unknown:
        return web.json_response({"error": f"unknown fault {unknown[0]!r}"}, status=400)
    if body.pop("reset", False):
        faults.reset()
    faults.update(body)
    return web.json_response(faults.as_dict())


def add_control_routes(app: web.Application, faults: FaultKnobs, log: list[Logged]) -> None:
    """``POST /sim/faults`` edits the live knobs; ``GET /sim/requests`` lists the request log."""

    async def set_faults(request: web.Request) -> web.Response:
        return await change_faults(faults, request)

    async def requests_log(request: web.Request) -> web.Response:
        return web.json_response([asdict(entry) for entry in log])

    app.router.add_post("/sim/faults", set_faults)
    app.router.add_get("/sim/requests", requests_log)
