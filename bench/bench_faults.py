"""Faults mid-stream: does the caller get a clear status quickly, and is nothing left behind?

Target: when ComfyUI, MinIO or a service is killed mid-stream, or the caller
cancels, or a deadline passes, the caller gets a clear status within seconds,
ComfyUI is freed, and storage holds no partial object, no unfinished
multipart upload and nothing twice. Each scenario runs on a fresh stack with
a MinIO of its own (so MinIO too can be killed and inspected afterwards),
bounded in time, and everything it started is stopped whatever happens.

``minio-points`` kills MinIO at ten exact points of one multipart upload
(see :mod:`bench.faults.minio_points`), ``--trials`` times in all.

    python -m bench.bench_faults [--only NAME ...] [--trials 20] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.faults.calls import caller_cancels, deadline_passes
from bench.faults.duplicates import stored_twice
from bench.faults.generator_restart import (
    generator_killed_other_replica_frees,
    generator_killed_then_restarted,
)
from bench.faults.kills import generator_killed_while_executing, killed
from bench.faults.minio_points import POINTS, RelayedRig, minio_killed_at_points
from bench.faults.rig import Rig, Row
from bench.faults.storage_restart import storage_killed_then_restarted

SCENARIO_LIMIT = 60.0
TRIAL_LIMIT = 120.0  # one trial of minio-points, MinIO restart and clean-up included
Scenario = Callable[[Rig], Awaitable[Row]]


def _kill_minio(rig: Rig) -> Awaitable[Row]:
    return killed(rig, "MinIO killed mid-upload", "minio", rig.minio.kill)


SCENARIOS: dict[str, Scenario] = {
    "comfyui": lambda rig: killed(rig, "ComfyUI killed mid-download", "comfyui-sim"),
    "minio": _kill_minio,
    "generator": lambda rig: killed(rig, "generator killed mid-stream", "generator"),
    "generator-executing": generator_killed_while_executing,
    "generator-restarted": generator_killed_then_restarted,
    "generator-adopted": generator_killed_other_replica_frees,
    "storage": lambda rig: killed(rig, "storage killed mid-stream", "storage"),
    "storage-restarted": storage_killed_then_restarted,
    "cancel": lambda rig: caller_cancels(rig, executing=False),
    "cancel-executing": lambda rig: caller_cancels(rig, executing=True),
    "grpc-deadline": lambda rig: deadline_passes(rig, grpc_deadline=True),
    "output-timeout": lambda rig: deadline_passes(rig, grpc_deadline=False),
    "duplicates": stored_twice,
}


async def run_points(trials: int) -> Row:
    async with RelayedRig() as rig:
        try:
            row, _ = await asyncio.wait_for(
                minio_killed_at_points(rig, rig.relay, trials), TRIAL_LIMIT * trials
            )
            return row
        except Exception as exc:  # noqa: BLE001 - reported as a row like any other scenario
            return Row("minio-points", code="ERROR", notes=[f"{type(exc).__name__}: {str(exc)[:160]}"])


async def run_one(key: str, trials: int = 2 * len(POINTS)) -> Row:
    """A fresh stack, the scenario under its time bound, the stack gone again."""
    if key == "minio-points":
        return await run_points(trials)
    async with Rig() as rig:
        try:
            return await asyncio.wait_for(SCENARIOS[key](rig), SCENARIO_LIMIT)
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
            return Row(key, code="ERROR", notes=[f"{type(exc).__name__}: {str(exc)[:160]}"])


def _num(value: float | int | str | None, scale: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f} s" if scale == "s" else f"{value:.0f} ms"
    return str(value)


def line(row: Row) -> str:
    cells = [
        row.scenario,
        row.code,
        f"{_num(row.to_status, 's')}" + (f" ({row.baseline})" if row.baseline else ""),
        _num(row.freed),
        _num(row.partial),
        _num(row.uploads),
        _num(row.duplicates),
    ]
    return " | ".join(cells)


async def main_async(keys: list[str], verbose: bool, trials: int = 2 * len(POINTS)) -> int:
    print(
        "scenario | status code | time to status (vs baseline) | ComfyUI freed | "
        "partial objects | orphaned uploads | duplicates",
        flush=True,
    )
    started = time.monotonic()
    for key in keys:
        row = await run_one(key, trials)
        print(line(row), flush=True)
        if verbose or row.code == "ERROR":
            for note in row.notes:
                print(f"    {note}", flush=True)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="fault scenarios: status, ComfyUI freed, leftovers")
    names = [*SCENARIOS, "minio-points"]
    parser.add_argument("--only", nargs="+", choices=sorted(names), default=names)
    parser.add_argument("--trials", type=int, default=2 * len(POINTS), help="minio-points trials in all")
    parser.add_argument("--verbose", action="store_true", help="print each scenario's notes")
    args = parser.parse_args()
    return asyncio.run(main_async(args.only, args.verbose, args.trials))


if __name__ == "__main__":
    raise SystemExit(main())
