"""Defects the fuzzing found in code it does not own, reported to its owners and not yet fixed.

A problem one of these explains is counted under its name instead of failing the run, so the
runs stay useful while the fix is on its way; the benchmark prints the counts. Delete an entry
once its cause is fixed: a case it matched then fails the run again if the defect comes back.
(NaN and infinities, raw graphs nested past the recursion limit or holding 4,301-digit
integers, names echoed whole in statuses, the gateway listing every violation of 64+ outputs
and grpc/grpc#36066 on PutMedia were here until their fixes landed; their smallest cases are
pinned in ``tests/fuzz/test_found_and_fixed.py``.)
"""

from __future__ import annotations

from bench.fuzz.cases import Case
from bench.fuzz.checks import Known
from mediagen.v1 import common_pb2, generator_pb2, storage_pb2


def _huge_timeout(case: Case, problem: str) -> bool:
    """``GenerateRequest.timeout`` read with ``Duration.ToTimedelta()``, which overflows past
    about 2.7 million years (``generator_service/servicer.py``)."""
    request = case.request
    huge = isinstance(request, generator_pb2.GenerateRequest) and request.timeout.seconds > 10**13
    return huge and "OverflowError" in problem


def _unknown_media_type(case: Case, problem: str) -> bool:
    """A PutMedia header whose ``media_type`` is no MediaType value, used when the bytes say
    nothing and a format hint is given: ``MediaType.Name()`` raises (``storage_service/headers.py``
    hands it to ``records.object_headers``)."""
    parts = case.request if isinstance(case.request, tuple) else ()
    odd = any(
        p.WhichOneof("part") == "header" and p.header.media_type not in common_pb2.MediaType.values()
        for p in parts
        if isinstance(p, storage_pb2.PutMediaRequest)
    )
    return odd and "ValueError" in problem


KNOWN: list[Known] = [
    Known("generator timeout past timedelta -> INTERNAL OverflowError (reported)", _huge_timeout),
    Known("PutMedia media_type outside the enum -> INTERNAL ValueError (reported)", _unknown_media_type),
]
