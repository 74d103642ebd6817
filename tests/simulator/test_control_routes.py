"""The control routes every hosted-API simulator shares: ``/sim/faults`` and ``/sim/requests``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from images_api_sim import Faults as ImagesFaults
from images_api_sim import ImagesSimConfig, start_images_sim
from predictions_sim import PredictionsSimConfig, start_predictions_sim
from sim_scaffold.serving import SimHandle


@pytest.fixture(params=["images", "predictions"])
async def hosted(request: pytest.FixtureRequest) -> AsyncIterator[SimHandle[Any, Any]]:
    """Each provider simulator, accepting any key."""
    if request.param == "images":
        async with await start_images_sim(ImagesSimConfig(api_key="")) as images:
            yield images
    else:
        async with await start_predictions_sim(PredictionsSimConfig(api_token="")) as predictions:
            yield predictions


async def test_faults_change_live_and_reset_to_the_defaults(hosted: SimHandle[Any, Any]) -> None:
    async with httpx.AsyncClient(base_url=hosted.url) as http:
        changed = await http.post("/sim/faults", json={"server_errors": 2, "refuse_words": ["odd"]})
        assert changed.status_code == 200
        assert changed.json()["server_errors"] == 2 == hosted.faults.server_errors
        assert hosted.faults.refuse_words == ["odd"]
        reset = await http.post("/sim/faults", json={"reset": True, "retry_after_s": 3})
        assert reset.status_code == 200
        assert (hosted.faults.server_errors, hosted.faults.refuse_words) == (0, ["forbidden"])
        assert hosted.faults.retry_after_s == 3


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"server_errors": 1, "no_such_knob": 1}, "unknown fault 'no_such_knob'"),
        ([1, 2], "expected a JSON object"),
        ("{not json", "the body is not JSON"),
    ],
    ids=["unknown-knob", "not-an-object", "not-json"],
)
async def test_a_bad_fault_update_is_refused_and_changes_nothing(
    hosted: SimHandle[Any, Any], body: object, error: str
) -> None:
    async with httpx.AsyncClient(base_url=hosted.url) as http:
        if isinstance(body, str):
            json_type = {"Content-Type": "application/json"}
            answer = await http.post("/sim/faults", content=body, headers=json_type)
        else:
            answer = await http.post("/sim/faults", json=body)
    assert answer.status_code == 400
    assert answer.json() == {"error": error}
    assert hosted.faults.server_errors == 0


async def test_the_request_log_lists_api_requests_with_method_path_and_status(
    hosted: SimHandle[Any, Any],
) -> None:
    hosted.faults.server_errors = 1
    path = "/v1/images/generations" if isinstance(hosted.faults, ImagesFaults) else "/v1/predictions"
    async with httpx.AsyncClient(base_url=hosted.url) as http:
        refused = await http.post(path, json={"prompt": "x"})
        logged = (await http.get("/sim/requests")).json()
    assert refused.status_code == 500
    assert [(e["method"], e["path"], e["status"]) for e in logged] == [("POST", path, 500)]
    assert logged[0]["at"] > 0
    assert [(e.method, e.path, e.status) for e in hosted.log] == [("POST", path, 500)]
