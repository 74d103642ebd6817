"""Defects the fuzzing found in code it does not own, reported to its owners and not yet fixed.

A problem one of these explains is counted under its name instead of failing the run, so the
runs stay useful while the fix is on its way; the benchmark prints the counts. Delete an entry
once its cause is fixed: a case it matched then fails the run again if the defect comes back.
(NaN and infinities, raw graphs nested past the recursion limit or holding 4,301-digit
integers, names echoed whole in statuses, the gateway listing every violation of 64+ outputs,
grpc/grpc#36066 on PutMedia, Durations beyond a timedelta in the generator and media types
outside the enum were here until their fixes landed; their smallest cases are pinned in
``tests/fuzz/test_found_and_fixed.py``.)
"""

from __future__ import annotations

from bench.fuzz.checks import Known

KNOWN: list[Known] = []
