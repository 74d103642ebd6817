"""Backends declared in settings (``MEDIAGEN_GENERATOR_BACKENDS``, a JSON list), and building them.

Each entry names its kind, URL, the *name of the variable* holding its key (the key itself never
appears in settings, logs or records) and how many jobs it may run at once. ComfyUI entries join
the ComfyUI URLs of ``MEDIAGEN_GENERATOR_COMFYUI_URLS``, which keeps working as before.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from generator_service.providers.base import BackendKind, RemoteBackend
from generator_service.providers.images_api import ImagesApiBackend
from generator_service.providers.predictions import PredictionsBackend


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BackendKind
    url: str = Field(min_length=1, description="the API's base URL, without /v1")
    name: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,60}$", description="default: <kind>-<i>")
    key_env: str = Field(default="", description="the environment variable holding the bearer key")
    max_concurrency: int = Field(default=4, ge=1, le=1024, description="jobs at once on this backend")
    model: str = Field(default="", description="images_api: the model to ask for instead of the template's")
    prefer_wait: int = Field(default=5, ge=0, le=60, description="predictions: Prefer: wait seconds")
    poll_max: float = Field(default=2.0, gt=0, description="predictions: longest interval between polls")


class MissingKey(ValueError):
    """A backend's key variable is not set (the message names the variable, never a value)."""


def build_remote(configs: list[BackendConfig], http_timeout: float) -> list[RemoteBackend]:
    backends: list[RemoteBackend] = []
    for index, config in enumerate(configs):
        if config.kind is BackendKind.COMFYUI:
            continue
        name = config.name or f"{config.kind.value}-{index}"
        key = ""
        if config.key_env:
            key = os.environ.get(config.key_env, "")
            if not key:
                raise MissingKey(f"backend {name}: the variable {config.key_env} holding its key is not set")
        url = config.url.rstrip("/")
        if config.kind is BackendKind.IMAGES_API:
            backends.append(
                ImagesApiBackend(
                    name,
                    url,
                    key=key,
                    capacity=config.max_concurrency,
                    http_timeout=http_timeout,
                    model=config.model,
                )
            )
        else:
            backends.append(
                PredictionsBackend(
                    name,
                    url,
                    key=key,
                    capacity=config.max_concurrency,
                    http_timeout=http_timeout,
                    prefer_wait=config.prefer_wait,
                    poll_max=config.poll_max,
                )
            )
    return backends
