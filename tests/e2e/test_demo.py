"""The README's main command runs to completion on its own and says where everything went."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.stack import run_demo

pytestmark = pytest.mark.e2e


def test_demo_generates_stores_and_writes_an_output_of_each_kind(tmp_path: Path) -> None:
    result = run_demo(tmp_path, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    locations = re.findall(r"s3://mediagen/runs/(\w+)/media/\S+", result.stdout)
    assert len(locations) == 5, result.stdout  # three from ComfyUI, one per remote kind
    assert "sha256" in result.stdout
    assert "512x512" in result.stdout
    written = sorted(p.suffix for p in (tmp_path / "out" / locations[0]).iterdir())
    assert written == [".flac", ".png", ".png", ".webp", ".webp"]
    durable = re.search(r"durable run (\w+) submitted \(queued\)", result.stdout)
    assert durable, result.stdout
    assert f"run {durable.group(1)} succeeded: 5 media stored" in result.stdout
    watched = sorted(p.suffix for p in (tmp_path / "out" / durable.group(1)).iterdir())
    assert watched == written
