"""Broken provider templates stop loading with the file's name and what is wrong in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator_service.providers.templates import PACKAGED_DIR, load_provider_templates
from generator_service.templates import TemplateError

EDIT: dict[str, Any] = {"kind": "images_api", "operation": "edits", "model": "gpt-image-1"}


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        (
            {**EDIT, "parameters": {"image": {"type": "image"}, "mask": {"type": "image", "field": "image"}}},
            "parameter mask: field 'image' is already filled by image",
        ),
        ({**EDIT, "media_types": ["hologram"]}, "unknown media type 'hologram'"),
        ({**EDIT, "operation": "variations"}, "operation must be one of generations, edits"),
    ],
    ids=["one field for two parameters", "unknown media type", "unknown operation"],
)
def test_a_broken_provider_template_names_its_file_and_problem(
    tmp_path: Path, manifest: dict[str, Any], words: str
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps(manifest))
    with pytest.raises(TemplateError, match=r"bad\.json") as caught:
        load_provider_templates(tmp_path)
    assert words in str(caught.value)


def test_the_packaged_provider_templates_load() -> None:
    assert {"gpt_image", "gpt_image_edit", "flux_schnell"} <= set(load_provider_templates(PACKAGED_DIR))
