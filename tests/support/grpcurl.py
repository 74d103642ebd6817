"""Run the real grpcurl against a service, exactly as the README shows it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from mediagen.stack.minio import cache_dir


def grpcurl_binary() -> str:
    cached = cache_dir() / "bin" / "grpcurl"
    found = str(cached) if cached.exists() else shutil.which("grpcurl")
    if not found:
        raise FileNotFoundError("grpcurl is not installed: run tools/bootstrap.sh")
    return found


async def grpcurl(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``grpcurl ARGS``, run without blocking the event loop."""
    process = await asyncio.create_subprocess_exec(
        grpcurl_binary(),
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(), err.decode()
