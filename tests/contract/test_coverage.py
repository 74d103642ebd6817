"""Every captured transcript is replayed by at least one contract test."""

from __future__ import annotations

from pathlib import Path

from tests.contract.compare import TRANSCRIPTS


def test_every_transcript_file_is_named_by_a_contract_test_module() -> None:
    sources = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    stems = sorted(p.stem for p in TRANSCRIPTS.glob("*.json"))
    assert len(stems) == 36
    uncovered = [
        s for s in stems if s not in sources and not (s.startswith("10_") and "10_invalid_" in sources)
    ]
    assert uncovered == []
