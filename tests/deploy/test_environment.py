"""Every variable the deployment files set is one the service reads, and the Dockerfiles lint clean.

A misspelt ``MEDIAGEN_GATEWAY_GENERATR_TARGET`` would be silently ignored
(the settings ignore unknown variables) and the service would run on its
default; so the names are checked against the settings classes themselves:
each service's fields under its own prefix, the shared ones included. Keys are
read by the name a setting gives (a backend's ``key_env``, a simulator's
``--api-key-env``), so those names count as read too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from generator_service.settings import GeneratorSettings
from images_api_sim.__main__ import parse_args as images_sim_args
from predictions_sim.__main__ import parse_args as predictions_sim_args
from storage_service.settings import StorageSettings
from tests.deploy.manifests import (
    COMPOSE_MTLS,
    DOCKERFILES,
    OVERLAYS,
    ROOT,
    compose_services,
    dockerfile_stages,
    is_mediagen,
    of_kind,
    pod_spec,
    sidecars,
    target_of,
)

SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "generator": GeneratorSettings,
    "storage": StorageSettings,
}


def variables(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def unknown(target: str, names: set[str]) -> set[str]:
    """Names a container of this Dockerfile target sets that its service does not read."""
    cls = SETTINGS.get(target)
    return names - variables(cls) if cls else names


SIMULATOR_KEYS = {
    "images-api-sim": {images_sim_args([]).api_key_env},
    "predictions-sim": {predictions_sim_args([]).api_key_env},
}


def named_keys(target: str, environment: dict[str, str]) -> set[str]:
    """Variables read by the name another setting gives them: backend keys, simulator keys."""
    if target == "generator":
        declared = json.loads(environment.get("MEDIAGEN_GENERATOR_BACKENDS") or "[]")
        return {backend["key_env"] for backend in declared if backend.get("key_env")}
    return SIMULATOR_KEYS.get(target, set())


def test_the_settings_classes_are_what_this_check_reads():
    assert "MEDIAGEN_GATEWAY_GENERATOR_TARGET" in variables(GatewaySettings)
    assert "MEDIAGEN_STORAGE_GRACE_SECONDS" in variables(StorageSettings)  # shared, under the prefix
    assert "MEDIAGEN_GENERATOR_COMFYUI_URLS" in variables(GeneratorSettings)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_the_manifests_set_is_read_by_its_service(rendered, overlay):
    checked = 0
    for deployment in of_kind(rendered[overlay], "Deployment"):
        for container in pod_spec(deployment)["containers"] + sidecars(deployment):
            if not is_mediagen(container):
                continue  # a ComfyUI image of the operator's own
            names = {item["name"] for item in container.get("env", [])}
            assert not unknown(target_of(container), names), container["name"]
            checked += len(names)
    assert checked >= 10


@pytest.mark.parametrize("overrides", [(), (COMPOSE_MTLS,)], ids=["compose", "compose-mtls"])
def test_every_variable_the_compose_file_sets_is_read_by_its_service(overrides):
    checked = 0
    for name, service in compose_services(*overrides).items():
        target = service.get("build", {}).get("target")
        if target is None:
            continue  # MinIO and NATS, configured by their own settings
        environment = service.get("environment", {})
        names = set(environment)
        assert not unknown(target, names) - named_keys(target, environment), name
        checked += len(names)
    assert checked >= 10


def test_every_variable_the_dockerfile_sets_is_read_by_a_service():
    read = set().union(*(variables(cls) for cls in SETTINGS.values())) | {
        "PYTHONUNBUFFERED",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
    stages = dockerfile_stages(ROOT / "Dockerfile")
    assert set(stages) >= {"base", *SETTINGS, "comfyui-sim"}
    for stage in stages.values():
        assert set(stage.env) <= read, stage.name
    for target in SETTINGS:
        own = {k for k in stages[target].env if k.startswith(f"MEDIAGEN_{target.upper()}_")}
        assert not unknown(target, own)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfiles_pass_hadolint(dockerfile: Path):
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
