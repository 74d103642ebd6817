"""The properties every answer to a hostile request must have, checked case by case and batch by
batch, and the tallies a run reports.

Per case: the status is a specific one (never INTERNAL or UNKNOWN); its message is at most
:data:`MAX_MESSAGE` bytes and its details at most :data:`MAX_DETAILS`, because a status must fit
in HTTP/2 trailers (one that does not reaches the caller as RESOURCE_EXHAUSTED "received
metadata size exceeds hard limit", which is caught too); a request that breaks a documented
rule is refused; statuses inside events obey the same bounds; a refused generation reaches no
backend. Per batch: every service is still SERVING, the bucket holds only what accepted calls
wrote (nothing under a run or a slot that no call was answered OK for, no unfinished upload),
and no ComfyUI prompt ran twice.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from bench.fuzz.cases import ANCHOR_RUNS, Case
from bench.fuzz.target import Answer, Status, Target
from gateway.run_ids import RunIds
from mediagen.scaffold.callers import ANONYMOUS

MAX_MESSAGE = 2048
MAX_DETAILS = 8192
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
SLOT_FILE = re.compile(r"(o\d{3,}-i\d{3,})\.[^/]+")


@dataclass
class Known:
    """A defect already known and owned elsewhere: problems it explains are counted apart."""

    name: str
    matches: Callable[[Case, str], bool]
    """Whether this defect explains ``problem`` (one line of :meth:`Session.run_case`) for the case."""


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    codes: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    known: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    batch_problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(sum(c.values()) for c in self.failures.values()) + len(self.batch_problems)


@dataclass
class Ledger:
    """What the bucket may hold: the runs and slots some call was answered OK for."""

    runs: set[str] = field(default_factory=set)
    slots: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def allow_record(self, key: str, run_id: str) -> None:
        """A stored record's slot; its run as the key names it (the gateway shows its caller an id
        without the tag it stores the run under, see ``gateway.run_ids``)."""
        match = SLOT_FILE.search(key.rsplit("/", 1)[-1])
        if match:
            parts = key.split("/", 2)
            self.slots[parts[1] if len(parts) == 3 and parts[0] == "runs" else run_id].add(match.group(1))


class Session:
    """One fuzz run against one :class:`Target`: call, check, count."""

    def __init__(self, target: Target, known: list[Known] | None = None, keep_examples: int = 40) -> None:
        self.target = target
        self.known = known or []
        self.tally = Tally()
        self.ledger = Ledger(runs=set(ANCHOR_RUNS))
        self._keep = keep_examples
        self._keep_each = 2
        self._examples_of: dict[tuple[str, str, str], int] = {}
        self._ran_twice_before: set[str] = set()

    async def begin(self) -> None:
        """Note what the backend had already seen, so only this session's doings are judged."""
        state = await self.target.sim_state()
        self._ran_twice_before = set(state.get("prompts_run_twice", []))
        self._sim: dict[str, int] | None = None

    # ------------------------------------------------------------ one case

    async def run_case(self, case: Case) -> list[str]:
        """Send the case and return what is wrong with the answer (empty when nothing)."""
        touches_backend = case.service in ("generator", "gateway") and case.method == "Generate"
        before = await self._sim_counts() if touches_backend else None
        answer = await self.target.call(case)
        problems = self._check_answer(case, answer)
        self._remember(case, answer)
        if touches_backend and before is not None:
            after = await self._sim_counts()
            problems += self._check_backend(case, answer, before, after)
        code = answer.status.code.name
        self.tally.cases[case.service] += 1
        self.tally.codes[case.service][code] += 1
        unexplained = []
        for problem in problems:
            known = next((k for k in self.known if k.matches(case, problem)), None)
            if known is None:
                unexplained.append(problem)
            else:
                self.tally.known[known.name] += 1
        problems = unexplained
        kinds = [problem.split(":", 1)[0] for problem in problems]
        for kind in kinds:
            self.tally.failures[case.service][kind] += 1
        if problems:
            group = (case.service, case.method, kinds[0])
            seen = self._examples_of[group] = self._examples_of.get(group, 0) + 1
            if seen <= self._keep_each and len(self.tally.examples) < self._keep:
                self.tally.examples.append(
                    f"{'; '.join(p[:300] for p in problems)}\n    {case.describe(200)}"
                )
        return problems

    def _check_answer(self, case: Case, answer: Answer) -> list[str]:
        problems = _status_problems("status", answer.status)
        if case.must_refuse and answer.status.code == grpc.StatusCode.OK:
            problems.append("accepted: a request that breaks a documented rule was answered OK")
        for status in answer.output_statuses:
            problems += _status_problems("output status", status)
        return problems

    def _remember(self, case: Case, answer: Answer) -> None:
        """Teach the ledger what this call was allowed to store."""
        ok = answer.status.code == grpc.StatusCode.OK
        if case.method == "DeleteRun" and ok:
            run_id = getattr(case.request, "run_id", "")
            self.ledger.runs.discard(run_id)
            self.ledger.slots.pop(run_id, None)
        if answer.run_created:
            self.ledger.runs.add(answer.run_created)
            if case.service == "gateway":  # stored under the (anonymous) caller's tag
                self.ledger.runs.add(RunIds(ANONYMOUS).stored(answer.run_created))
        for record in answer.stored:
            self.ledger.allow_record(record.key, record.run_id)

    async def _sim_counts(self) -> dict[str, int]:
        state = await self.target.sim_state()
        return {
            "prompts_run": int(state["prompts_run"]),
            "busy": int(bool(state["running"] or state["pending"])),
        }

    def _check_backend(
        self, case: Case, answer: Answer, before: dict[str, int], after: dict[str, int]
    ) -> list[str]:
        ran = after["prompts_run"] - before["prompts_run"]
        problems = []
        if case.must_refuse and not before["busy"] and ran:
            problems.append(f"reached backend: a refused request ran {ran} prompt(s) on ComfyUI")
        if len(set(answer.prompt_ids)) != len(answer.prompt_ids):
            problems.append("duplicate prompt: one call was accepted twice under the same prompt id")
        return problems

    # ------------------------------------------------------------ one batch

    async def end_batch(self, settle: float = 10.0) -> list[str]:
        """Check the whole system after a batch; problems are also kept in the tally."""
        problems: list[str] = []
        health = await self.target.health()
        problems += [f"health: {name} is {state}" for name, state in health.items() if state != "SERVING"]
        state = await self.target.sim_idle(settle)
        if state["running"] or state["pending"]:
            problems.append(f"backend busy: prompts still queued {settle:g}s after the batch")
        twice = sorted(set(state.get("prompts_run_twice", [])) - self._ran_twice_before)
        if twice:
            problems.append(f"ran twice: prompts executed more than once: {twice[:5]}")
        problems += await self._bucket_problems(settle)
        self.tally.batch_problems += problems
        return problems

    async def _bucket_problems(self, settle: float) -> list[str]:
        loop = asyncio.get_running_loop()
        end = loop.time() + settle
        while True:
            problems = await asyncio.to_thread(self._scan_bucket)
            if not problems or loop.time() > end:
                return problems
            await asyncio.sleep(0.2)  # an aborted upload may take a moment to be cleaned up

    def _scan_bucket(self) -> list[str]:
        problems: list[str] = []
        client, bucket = self.target.minio, self.target.bucket
        for obj in client.list_objects(bucket, prefix="runs/", recursive=True):
            key = obj.object_name or ""
            _, run_id, rest = key.split("/", 2)
            if run_id not in self.ledger.runs:
                problems.append(f"stored for refused: {key} belongs to no run a call created")
            elif rest.startswith(("media/", "records/")):
                match = SLOT_FILE.fullmatch(rest.split("/", 1)[1])
                if not match or match.group(1) not in self.ledger.slots[run_id]:
                    problems.append(f"stored for refused: {key} belongs to no upload answered OK")
        for upload in client._list_multipart_uploads(bucket, prefix="runs/").uploads:
            problems.append(f"unfinished upload: {upload.object_name} was left open")
        return problems[:20]


def _status_problems(where: str, status: Status) -> list[str]:
    problems = []
    if status.code in FORBIDDEN:
        problems.append(f"{status.code.name}: {where} {status.code.name}: {status.message[:300]!r}")
    if "metadata size exceeds" in status.message:
        # The server's status did not fit in HTTP/2 trailers: the caller got this instead of it.
        problems.append(f"oversized status: {where} {status.code.name}: {status.message[:200]!r}")
    size = len(status.message.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE:
        problems.append(
            f"long message: {where} message of {size} bytes ({status.code.name}): {status.message[:120]!r}..."
        )
    if status.details_bytes > MAX_DETAILS:
        problems.append(
            f"large details: {where} details of {status.details_bytes} bytes ({status.code.name})"
        )
    return problems
