"""``python -m bench``: every benchmark, one after another, with its default sizes."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.bench_completion_latency",
    "bench.bench_e2e_overhead",
    "bench.bench_storage_throughput",
    "bench.bench_large_media",
    "bench.bench_faults",
    "bench.bench_cost_per_job",
    "bench.bench_remote_backends",
    "bench.bench_runs_watch_latency",
    "bench.bench_runs_crash_resume",
    "bench.bench_runs_queueing",
    "bench.bench_runs_gpu_busy",
    "bench.bench_scale_out",
    "bench.bench_fuzz",
)


def main() -> int:
    failed = []
    for module in BENCHMARKS:
        print(f"\n== {module}", flush=True)
        if subprocess.run([sys.executable, "-m", module], check=False).returncode:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
