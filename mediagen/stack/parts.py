"""How each part of the stack is started: its command line and environment.

Every service gets its settings through its own ``MEDIAGEN_<SERVICE>_``
variables on a free loopback port, exactly as a deployment would configure
it, plus any overrides the caller passes (fault knobs, timeouts, tokens).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mediagen.stack.minio import MinioEndpoint

Env = dict[str, str]


def base_env(log_format: str = "text") -> Env:
    """The parent's environment without other mediagen service settings."""
    env = {key: value for key, value in os.environ.items() if not _is_service_setting(key)}
    env["PYTHONUNBUFFERED"] = "1"
    for prefix in ("STORAGE", "GENERATOR", "GATEWAY"):
        env[f"MEDIAGEN_{prefix}_LOG_FORMAT"] = log_format
    return env


def _is_service_setting(key: str) -> bool:
    return key.startswith(("MEDIAGEN_STORAGE_", "MEDIAGEN_GENERATOR_", "MEDIAGEN_GATEWAY_"))


def simulator_argv(host: str, port: int, data_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "comfyui_sim",
        "--host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *extra,
    ]


REMOTE_SIMULATORS = {"images_api": "images_api_sim", "predictions": "predictions_sim"}
"""The simulator module of each remote backend kind."""


def remote_simulator_argv(kind: str, host: str, port: int, key_env: str) -> list[str]:
    """A remote-kind simulator expecting the key held in ``key_env`` (never on the command line)."""
    module = REMOTE_SIMULATORS[kind]
    return [sys.executable, "-m", module, "--host", host, "--port", str(port), "--api-key-env", key_env]


def remote_backends_env(simulators: Mapping[str, tuple[str, str]]) -> Env:
    """``MEDIAGEN_GENERATOR_BACKENDS`` declaring each kind's simulator (URL, key variable)."""
    declared = [
        {"kind": kind, "name": f"{kind}-sim", "url": url, "key_env": key_env}
        for kind, (url, key_env) in simulators.items()
    ]
    return {"MEDIAGEN_GENERATOR_BACKENDS": json.dumps(declared)} if declared else {}


def storage_env(port: int, minio: MinioEndpoint, bucket: str, overrides: Mapping[str, str]) -> Env:
    return {
        "MEDIAGEN_STORAGE_PORT": str(port),
        "MEDIAGEN_STORAGE_MINIO_ENDPOINT": minio.endpoint,
        "MEDIAGEN_STORAGE_MINIO_ACCESS_KEY": minio.access_key,
        "MEDIAGEN_STORAGE_MINIO_SECRET_KEY": minio.secret_key,
        "MEDIAGEN_STORAGE_MINIO_SECURE": "true" if minio.secure else "false",
        "MEDIAGEN_STORAGE_BUCKET": bucket,
        **overrides,
    }


def generator_env(port: int, comfyui_url: str, comfyui_command: str, overrides: Mapping[str, str]) -> Env:
    env = {"MEDIAGEN_GENERATOR_PORT": str(port)}
    if comfyui_url:
        env["MEDIAGEN_GENERATOR_COMFYUI_URLS"] = comfyui_url
    if comfyui_command:
        env["MEDIAGEN_GENERATOR_COMFYUI_COMMAND"] = comfyui_command
    return {**env, **overrides}


def gateway_env(port: int, generator: str, storage: str, nats_url: str, overrides: Mapping[str, str]) -> Env:
    return {
        "MEDIAGEN_GATEWAY_PORT": str(port),
        "MEDIAGEN_GATEWAY_GENERATOR_TARGET": generator,
        "MEDIAGEN_GATEWAY_STORAGE_TARGET": storage,
        "MEDIAGEN_GATEWAY_NATS_URL": nats_url,
        **overrides,
    }


def service_argv(module: str) -> list[str]:
    return [sys.executable, "-m", module]
