"""A managed ComfyUI never outlives its generator, even when the generator is SIGKILLed.

A generator killed outright runs no shutdown code, so the kernel has to end its ComfyUI:
the child asks for SIGTERM when its parent dies. Without it, a GPU would stay held by a
ComfyUI nobody supervises.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import psutil

from mediagen.ports import free_port
from mediagen.stack import parts
from mediagen.stack.process import ManagedProcess
from mediagen.stack.readiness import grpc_serving


def _comfyui_children(pid: int) -> list[psutil.Process]:
    return [child for child in psutil.Process(pid).children() if "comfyui_sim" in " ".join(child.cmdline())]


async def test_killing_the_generator_ends_its_managed_comfyui(tmp_path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    command = f"{sys.executable} -m comfyui_sim --host {{host}} --port {{port}} --data-dir {{data_dir}}"
    env = {
        **parts.base_env(),
        **parts.generator_env(port, "", command, {"MEDIAGEN_GENERATOR_STATE_DIR": str(tmp_path / "state")}),
        "MEDIAGEN_GENERATOR_COMFYUI_DATA_DIR": str(tmp_path / "comfyui"),
    }
    generator = ManagedProcess("generator", parts.service_argv("generator_service"), env, tmp_path / "g.log")
    try:
        await asyncio.to_thread(generator.wait_until, lambda: grpc_serving(address), 30, "SERVING")
        (comfyui,) = _comfyui_children(generator.pid)
        assert comfyui.is_running()
        generator.kill()
        deadline = time.monotonic() + 5
        while comfyui.is_running() and comfyui.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the managed ComfyUI outlived its generator"
            await asyncio.sleep(0.05)
    finally:
        generator.stop()


def test_the_launcher_becomes_the_command_when_its_parent_is_alive() -> None:
    launched = subprocess.run(
        [sys.executable, "-m", "generator_service.launcher", str(os.getpid()), "--", "sh", "-c", "exit 7"],
        check=False,
    )
    assert launched.returncode == 7


def test_the_launcher_refuses_to_start_when_its_parent_is_already_gone() -> None:
    """A parent that died before the kernel was asked would leave an orphan: exit instead."""
    not_the_parent = "1"
    launched = subprocess.run(
        [sys.executable, "-m", "generator_service.launcher", not_the_parent, "--", "sh", "-c", "exit 7"],
        check=False,
    )
    assert launched.returncode == 1
