"""Property-based fuzzing of every RPC of the three services, 10,000+ cases.

Each service runs in its own process as deployed (gateway, generator, storage), with a real
MinIO and the ComfyUI simulator; Hypothesis draws hostile requests (see :mod:`bench.fuzz`)
and every answer is checked: a specific status (never INTERNAL or UNKNOWN), a bounded message
and details, refusals of rule-breaking requests, every service SERVING after each batch,
nothing stored for a refused call, no prompt run twice. Prints the cases run per service, the
status codes they got, and the failures by kind.

    python -m bench.bench_fuzz [--cases 10000] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from bench.fuzz.cases import MAX_MEDIA_BYTES, SERVICES
from bench.fuzz.checks import Session
from bench.fuzz.known import KNOWN
from bench.fuzz.runner import Plan, fuzz
from bench.fuzz.target import Target
from mediagen.stack.local import LocalStack, StackConfig

SHARES = {"storage": 0.4, "generator": 0.3, "gateway": 0.3}


async def main(cases: int, seed: int) -> int:
    with tempfile.TemporaryDirectory(prefix="mediagen-fuzz-") as work:
        config = StackConfig(
            work_dir=Path(work),
            comfyui_url="",
            comfyui_command="",
            storage_env={"MEDIAGEN_STORAGE_MAX_MEDIA_BYTES": str(MAX_MEDIA_BYTES)},
            log_format="json",
        )
        async with LocalStack(config) as stack:
            assert stack.minio is not None
            target = Target(
                gateway=stack.gateway_address,
                generator=stack.addresses["generator"],
                storage=stack.addresses["storage"],
                minio=stack.minio.client(),
                bucket=stack.bucket,
                simulator_url=stack.comfyui_url,
            )
            await target.open()
            try:
                await target.create_anchors()
                session = Session(target, KNOWN)
                timings: dict[str, float] = {}
                for offset, (service, share) in enumerate(SHARES.items()):
                    started = time.monotonic()
                    plan = Plan(int(cases * share), derandomize=False, seed=seed + offset, strict=False)
                    await fuzz(session, SERVICES[service](), plan)
                    timings[service] = time.monotonic() - started
                    print(
                        f"{service}: {session.tally.cases[service]} cases in {timings[service]:.0f} s",
                        flush=True,
                    )
            finally:
                await target.close()
    return report(session, timings, seed)


def report(session: Session, timings: dict[str, float], seed: int) -> int:
    tally = session.tally
    total = sum(tally.cases.values())
    print(f"\nfuzz: {total} cases (seed {seed}), failures {tally.failed}")
    print(f"{'service':10} {'cases':>6} {'s':>5}  status codes")
    for service in SHARES:
        codes = ", ".join(f"{code} {count}" for code, count in tally.codes[service].most_common())
        print(f"{service:10} {tally.cases[service]:6d} {timings.get(service, 0):5.0f}  {codes}")
    print("\nfailures by kind:")
    any_failure = False
    for service in SHARES:
        for kind, count in tally.failures[service].most_common():
            any_failure = True
            print(f"  {service:10} {kind:30} {count}")
    for problem in tally.batch_problems:
        any_failure = True
        print(f"  system     {problem}")
    if not any_failure:
        print("  none")
    if tally.known:
        print("\nreported defects (owned elsewhere, counted apart):")
        for name, count in tally.known.most_common():
            print(f"  {name:40} {count}")
    for example in tally.examples:
        print(f"\n- {example}")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.cases, args.seed)))
