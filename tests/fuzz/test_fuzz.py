"""A deterministic slice of the fuzzing, every RPC of the three services (``make test``).

Hypothesis derandomized: the same few hundred cases each run, shrunk to the smallest failing one
when a property breaks. ``python -m bench.bench_fuzz`` runs the same properties on 10,000+
random cases against the services as separate processes.
"""

from __future__ import annotations

import pytest

from bench.fuzz.cases import SERVICES
from bench.fuzz.checks import Session
from bench.fuzz.runner import Plan, fuzz

EXAMPLES = {"storage": 300, "generator": 250, "gateway": 200}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_every_answer_is_specific_bounded_and_harmless(fuzz_session: Session, service: str) -> None:
    ran = await fuzz(fuzz_session, SERVICES[service](), Plan(EXAMPLES[service]))
    tally = fuzz_session.tally
    print(f"\n{service}: {ran} cases, codes {dict(tally.codes[service])}, known {dict(tally.known)}")
    assert ran == EXAMPLES[service]
    assert tally.cases[service] == ran
    assert tally.failed == 0, tally.examples
