"""Reading what the deployment files say: rendered overlays, Dockerfile stages, compose services.

The overlays are rendered by the real kustomize (installed by ``tools/bootstrap.sh``)
from a copy of ``deploy/kubernetes`` whose Secret files are the committed
``*.env.example`` placeholders, exactly as the README tells an operator to start.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mediagen.stack.minio import cache_dir

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "gpu", "dev-mtls")
MTLS_OVERLAYS = frozenset({"dev-mtls"})  # overlays with components/mtls: mutual TLS between every service
DOCKERFILES = (ROOT / "Dockerfile", ROOT / "deploy" / "minio.Dockerfile")
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_MTLS = ROOT / "docker-compose.mtls.yml"
IMAGE_PREFIX = "mediagen-"

Obj = dict[str, Any]


def kustomize_binary() -> str:
    cached = cache_dir() / "bin" / "kustomize"
    found = str(cached) if cached.exists() else shutil.which("kustomize")
    if not found:
        raise FileNotFoundError("kustomize is not installed: run tools/bootstrap.sh")
    return found


def render(overlay: str, work_dir: Path) -> list[Obj]:
    """``kustomize build`` of one overlay, its Secrets generated from the example files."""
    tree = work_dir / f"kubernetes-{overlay}"
    shutil.copytree(KUBERNETES, tree)
    for example in (tree / "overlays").glob("*/*.env.example"):  # an overlay may build on another
        shutil.copy(example, example.with_suffix(""))
    result = subprocess.run(
        [kustomize_binary(), "build", str(tree / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {overlay} failed:\n{result.stderr}"
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(deployment: Obj) -> Obj:
    spec: Obj = deployment["spec"]["template"]["spec"]
    return spec


def sidecars(deployment: Obj) -> list[Obj]:
    """Init containers that keep running beside the main ones (``restartPolicy: Always``)."""
    return [c for c in pod_spec(deployment).get("initContainers", []) if c.get("restartPolicy") == "Always"]


def image_name(container: Obj) -> str:
    """The image's name without registry, tag or digest."""
    return str(container["image"]).rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def is_mediagen(container: Obj) -> bool:
    return image_name(container).startswith(IMAGE_PREFIX)


def target_of(container: Obj) -> str:
    """The Dockerfile target a container's image is built from (``mediagen-<target>``)."""
    assert is_mediagen(container), f"{container['name']}: {container['image']} is not a mediagen image"
    return image_name(container).removeprefix(IMAGE_PREFIX)


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Does a label selector (matchLabels and matchExpressions) select these labels?"""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True


def secret_value(objects: list[Obj], name: str, key: str) -> str:
    secret = named(objects, "Secret", name)
    data = secret.get("data", {})
    assert key in data, f"Secret {name} has no key {key}"
    return base64.b64decode(data[key]).decode()


def container_env(objects: list[Obj], container: Obj) -> dict[str, str]:
    """The container's env as the kubelet would set it, Secret references resolved."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        env[item["name"]] = secret_value(objects, ref["name"], ref["key"])
    return env


@dataclass
class Stage:
    """One Dockerfile stage: the environment it sets (inherited ones included) and its entry point."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)


def dockerfile_stages(path: Path) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        instruction, rest = words[0].upper(), (words[1] if len(words) > 1 else "")
        if instruction == "FROM":
            parts = rest.split()
            parent = stages.get(parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else parts[0]
            current = Stage(
                name,
                dict(parent.env) if parent else {},
                list(parent.entrypoint) if parent else [],
            )
            stages[name] = current
        elif instruction == "ENV" and current is not None:
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                current.env[key] = value
        elif instruction == "ENTRYPOINT" and current is not None:
            current.entrypoint = json.loads(rest)
    return stages


def compose_services(*overrides: Path) -> dict[str, Obj]:
    """The compose file's services, with ``overrides`` applied as ``docker compose -f ... -f ...``
    merges them (mappings key by key, ``environment`` by variable; sequences replaced, except
    ``volumes``, which are added to)."""
    services: dict[str, Obj] = yaml.safe_load(COMPOSE.read_text())["services"]
    for override in overrides:
        for name, changes in yaml.safe_load(override.read_text())["services"].items():
            assert name in services, f"{override.name} changes {name}, which {COMPOSE.name} does not have"
            service = services[name]
            for key, value in changes.items():
                if key == "volumes":
                    service[key] = [*service.get(key, []), *value]
                elif isinstance(value, dict) and isinstance(service.get(key), dict):
                    service[key] = {**service[key], **value}
                else:
                    service[key] = value
    return services
