"""Defects the fuzzing finds that are owned and being fixed elsewhere.

A problem one of these explains is counted under its name instead of failing the run, so the
runs stay useful while the fix is on its way. ``KNOWN`` are the defects already on the list of
fixes in progress; each also has a strict ``xfail`` test in ``tests/fuzz/test_known_defects.py``
that starts passing (and so fails, XPASS) when its fix lands, and then both go. ``REPORTED``
were found by this fuzzing in code it does not own and are reported to its owners; ``UPSTREAM``
is a defect of a library, not of this project. Delete an entry once its cause is fixed.
"""

from __future__ import annotations

import math
import re

from bench.fuzz.cases import Case
from bench.fuzz.checks import Known
from mediagen.v1 import common_pb2, gateway_pb2, generator_pb2, storage_pb2

LONG_NAME = 256


def _workflows(case: Case) -> list[generator_pb2.WorkflowSpec]:
    if isinstance(case.request, generator_pb2.GenerateRequest):
        return [case.request.workflow]
    if isinstance(case.request, gateway_pb2.GatewayGenerateRequest):
        return [output.workflow for output in case.request.outputs]
    return []


def _long_name(case: Case, problem: str) -> bool:
    """Text of the caller's (template or parameter name, string value) quoted whole in the status."""

    def long(workflow: generator_pb2.WorkflowSpec) -> bool:
        texts = [workflow.template, *workflow.parameters]
        texts += [v.string_value for v in workflow.parameters.values()]
        texts += [m.parameter for m in workflow.inputs] + [m.filename for m in workflow.inputs]
        return any(len(text) > LONG_NAME for text in texts) or len(workflow.parameters) > 3

    echoed = problem.startswith(("long message", "large details", "oversized status"))
    graph_node = "workflow.raw_graph_json: node" in problem  # a node id of the caller's graph
    return echoed and (graph_node or any(long(w) for w in _workflows(case)))


def _deep_graph(case: Case, problem: str) -> bool:
    return "RecursionError" in problem


def _nan(case: Case, problem: str) -> bool:
    """NaN or an infinity in a parameter, or in a raw graph (Python's json reads both)."""

    def odd(value: generator_pb2.ParameterValue) -> bool:
        return value.WhichOneof("kind") == "float_value" and not math.isfinite(value.float_value)

    def has_nan(workflow: generator_pb2.WorkflowSpec) -> bool:
        text = workflow.raw_graph_json
        tokens = "NaN" in text or "Infinity" in text or "1e999" in text
        return tokens or any(odd(value) for value in workflow.parameters.values())

    return problem.startswith("INTERNAL") and any(has_nan(w) for w in _workflows(case))


def _huge_timeout(case: Case, problem: str) -> bool:
    """``Duration.ToTimedelta()`` of a caller's timeout beyond what a timedelta holds."""
    return "OverflowError" in problem and case.method == "Generate"


def _sub_microsecond_timeout(case: Case, problem: str) -> bool:
    """A timeout of -1..-999 ns: ``ToTimedelta()`` rounds it to zero, which means "the default"."""
    request = case.request
    if not isinstance(request, generator_pb2.GenerateRequest) or not request.HasField("timeout"):
        return False
    nanos = request.timeout.seconds * 10**9 + request.timeout.nanos
    return -1000 < nanos < 0 and problem.startswith(("accepted", "reached backend"))


def _huge_integer(case: Case, problem: str) -> bool:
    """A raw graph number of more than 4300 digits: ``json.loads`` raises ValueError, not JSONDecodeError."""
    huge = any(re.search(r"\d{4301}", w.raw_graph_json) for w in _workflows(case))
    return huge and "ValueError" in problem


def _unknown_media_type(case: Case, problem: str) -> bool:
    """A PutMedia header whose media_type is no MediaType value, used when the bytes say nothing."""
    parts = case.request if isinstance(case.request, tuple) else ()
    odd = any(
        p.WhichOneof("part") == "header" and p.header.media_type not in common_pb2.MediaType.values()
        for p in parts
        if isinstance(p, storage_pb2.PutMediaRequest)
    )
    return odd and "ValueError" in problem


def _many_violations(case: Case, problem: str) -> bool:
    return (
        problem.startswith(("large details", "oversized status"))
        and isinstance(case.request, gateway_pb2.GatewayGenerateRequest)
        and len(case.request.outputs) > 3
    )


def _aio_write_race(case: Case, problem: str) -> bool:
    return "Internal error from Core" in problem


KNOWN: list[Known] = [
    Known("NaN or infinity -> INTERNAL (known)", _nan),
    Known("deeply nested raw graph -> RecursionError (known)", _deep_graph),
    Known("caller's template/parameter name echoed unbounded (known)", _long_name),
    # REPORTED: found by this fuzzing in code owned elsewhere.
    Known("huge timeout -> OverflowError in the generator (reported)", _huge_timeout),
    Known("gateway lists every violation of every output (reported)", _many_violations),
    Known("generator reads a -1..-999 ns timeout as zero (reported)", _sub_microsecond_timeout),
    Known("PutMedia media_type outside the enum -> ValueError (reported)", _unknown_media_type),
    Known("raw graph integer of 4301+ digits -> ValueError (reported)", _huge_integer),
    # UPSTREAM: grpc/grpc#36066, an aio client writing as the server ends a client-streaming call
    # reports INTERNAL "Internal error from Core" instead of the server's status.
    Known("grpc aio client write race, grpc/grpc#36066 (upstream)", _aio_write_race),
]
