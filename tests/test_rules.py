"""The request rules shared by the services: run ids, time limits, numbers."""

from __future__ import annotations

import pytest
from google.protobuf import duration_pb2

from mediagen.rules import RUN_ID_RULE, number_problem, run_id_problem, timeout_problem


@pytest.mark.parametrize("run_id", ["a", "run_2026-01-01", "A" * 64])
def test_good_run_ids(run_id: str) -> None:
    assert run_id_problem(run_id) == ""


@pytest.mark.parametrize("run_id", ["", "../escape", "a/b", "a" * 65, "é", "a b", "a\n"])
def test_bad_run_ids(run_id: str) -> None:
    assert run_id_problem(run_id) == RUN_ID_RULE


@pytest.mark.parametrize(
    ("seconds", "nanos", "problem"),
    [
        (0, 0, ""),
        (1, 0, ""),
        (3600, 500, ""),
        (-1, 0, "must not be negative"),
        (0, -5, "must not be negative"),
        (0, 1, "must be 0 (the default) or at least 1s"),
        (0, 999_999_999, "must be 0 (the default) or at least 1s"),
    ],
)
def test_timeouts(seconds: int, nanos: int, problem: str) -> None:
    assert timeout_problem(duration_pb2.Duration(seconds=seconds, nanos=nanos)) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [(1.5, ""), (float("nan"), "must be a finite number"), (float("-inf"), "must be a finite number")],
)
def test_numbers(value: float, problem: str) -> None:
    assert number_problem(value) == problem
