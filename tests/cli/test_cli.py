"""``mediagen`` against a running stack: tables, files, and errors a person can act on."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

pytestmark = pytest.mark.e2e


def run_id_of(stdout: str) -> str:
    match = re.search(r"run (\w+) created", stdout)
    assert match, stdout
    return match.group(1)


def test_workflows_lists_templates_with_their_parameters(mediagen: Cli) -> None:
    result = mediagen("workflows")
    assert result.returncode == 0, result.stderr
    for expected in ("solid_image", "animated_webp", "empty_audio", "width", "int"):
        assert expected in result.stdout


def test_generate_then_show_the_run_and_get_its_media(mediagen: Cli, tmp_path: Path) -> None:
    generated = mediagen(
        "generate",
        "--template",
        "solid_image",
        "--param",
        "width=40",
        "--param",
        "height=30",
        "--template",
        "empty_audio",
        "--param",
        "duration=0.3",
        "--label",
        "case=cli",
        "--out",
        "files",
    )
    assert generated.returncode == 0, generated.stderr
    run_id = run_id_of(generated.stdout)
    files = sorted((tmp_path / "files" / run_id).iterdir())
    assert [f.name for f in files] == ["00-solid_image-0.png", "01-empty_audio-0.flac"]
    assert "40x30" in generated.stdout
    assert f"runs/{run_id}/media/" in generated.stdout

    shown = mediagen("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "label case: cli" in shown.stdout
    media_ids = re.findall(r"│ \d+\.\d+\s+│ (\S+)", shown.stdout)
    assert len(media_ids) == 2

    fetched = mediagen("media", "get", media_ids[0], "-o", "copy.png")
    assert fetched.returncode == 0, fetched.stderr
    copy = (tmp_path / "copy.png").read_bytes()
    assert hashlib.sha256(copy).digest() == hashlib.sha256(files[0].read_bytes()).digest()


def test_unknown_template_is_bad_input_with_a_readable_message(mediagen: Cli) -> None:
    result = mediagen("generate", "--template", "no_such_template", "--no-download")
    assert result.returncode == 2
    assert "INVALID_ARGUMENT" in result.stderr
    assert "outputs[0].workflow.template" in result.stderr
    assert "Traceback" not in result.stderr


def test_ill_typed_parameter_is_refused_before_calling(mediagen: Cli) -> None:
    result = mediagen("generate", "--template", "solid_image", "--param", "width=wide")
    assert result.returncode == 2
    assert "width" in result.stderr
    assert "not a valid int" in result.stderr


def test_unknown_run_is_not_found_with_exit_code_1(mediagen: Cli) -> None:
    result = mediagen("runs", "show", "no-such-run")
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr


def test_token_from_the_environment_is_never_printed(mediagen: Cli) -> None:
    result = mediagen("workflows", env={"MEDIAGEN_TOKEN": "s3cr3t-token-value"})
    assert result.returncode == 0
    assert "s3cr3t-token-value" not in result.stdout + result.stderr


def test_a_run_file_describes_several_outputs(mediagen: Cli, tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(
        '{"concurrency": 2, "context": {"schema": "file"}, "outputs": ['
        '{"template": "solid_image", "parameters": {"width": "24", "height": 24}},'
        '{"template": "empty_audio", "parameters": {"duration": 0.2}, "timeout": 30}]}'
    )
    result = mediagen("generate", "--run-file", "run.json", "--no-download")
    assert result.returncode == 0, result.stderr
    assert "2 media stored, 0 output(s) failed" in result.stdout


def test_a_yaml_run_file_is_read_like_json(mediagen: Cli, tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        "context:\n  schema: file\n"
        "outputs:\n"
        "  - template: solid_image\n    parameters: {width: 16, height: 16}\n"
        "  - template: empty_audio\n    parameters: {duration: 0.2}\n"
    )
    result = mediagen("generate", "--run-file", "run.yaml", "--no-download")
    assert result.returncode == 0, result.stderr
    assert "2 media stored, 0 output(s) failed" in result.stdout
