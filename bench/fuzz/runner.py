"""Drive Hypothesis from a worker thread while the servers and their clients live on the loop.

``@given`` calls its test synchronously, once per example, so the test here hands each case to
the event loop (``run_coroutine_threadsafe``) and waits for the verdict. In strict mode (the
test suite) a problem raises, and Hypothesis shrinks the case against the real servers and
reports the smallest one; otherwise (the benchmark) problems are only counted and the run goes
on to the requested number of cases.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from bench.fuzz.cases import Case
from bench.fuzz.checks import Session

CASE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Plan:
    examples: int
    derandomize: bool = True
    seed: int | None = None
    strict: bool = True
    batch: int = 200
    """Cases between two whole-system checks (health, bucket, backend)."""


class Failed(AssertionError):
    pass


async def fuzz(session: Session, strategy: st.SearchStrategy[Case], plan: Plan) -> int:
    """Run ``plan.examples`` cases of ``strategy``; returns how many were run."""
    loop = asyncio.get_running_loop()
    await session.begin()
    ran = 0

    def run_one(case: Case) -> None:
        nonlocal ran
        ran += 1
        problems = asyncio.run_coroutine_threadsafe(session.run_case(case), loop).result(CASE_TIMEOUT)
        if not plan.strict and ran % plan.batch == 0:
            asyncio.run_coroutine_threadsafe(session.end_batch(), loop).result(CASE_TIMEOUT)
        if problems and plan.strict:
            raise Failed("; ".join(problems))

    phases = (Phase.explicit, Phase.generate, Phase.shrink) if plan.strict else (Phase.generate,)
    configured = settings(
        max_examples=plan.examples,
        derandomize=plan.derandomize,
        database=None,
        deadline=None,
        phases=phases,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    test = configured(given(strategy)(run_one))
    if plan.seed is not None and not plan.derandomize:
        test = hypothesis_seed(plan.seed)(test)
    await asyncio.to_thread(test)
    problems = await session.end_batch()
    if problems and plan.strict:
        raise Failed("; ".join(problems))
    return ran
