"""Nodes that exist only for testing (not part of ComfyUI).

``ProbeSleepProgress`` is the small probe the reference captures used (its schema is inferred from
them): it sleeps ``steps`` times ``step_seconds`` and reports each step through the progress hook,
which gives a slow, interruptible node that needs no model. ``SimLargeImage`` is simulator-only:
it writes a valid PNG of about ``size_bytes`` of random pixels, streamed to disk with bounded
memory, for download-throughput tests.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from PIL import Image

from .context import NodeResult, RunContext
from .files import file_ref, save_path
from .pngstream import dimensions_for, write_random_png
from .schema import NodeDef, floating, integer, socket, string


async def probe_sleep_progress(
    ctx: RunContext, image: list[Image.Image], steps: int, step_seconds: float
) -> NodeResult:
    for step in range(steps):
        await ctx.sleep_step(step_seconds)
        await ctx.progress(step + 1, steps)
    return NodeResult((image,))


def _write_large(path: str, width: int, height: int, seed: int) -> None:
    with open(path, "wb") as handle:
        write_random_png(handle, width, height, seed)


async def sim_large_image(ctx: RunContext, size_bytes: int, seed: int, filename_prefix: str) -> NodeResult:
    width, height = dimensions_for(size_bytes)
    folder, base, counter, subfolder = save_path(filename_prefix, ctx.folders.output, width, height)
    name = f"{base}_{counter:05}_.png"
    await asyncio.to_thread(_write_large, os.path.join(folder, name), width, height, seed)
    return NodeResult((), {"images": [file_ref(name, subfolder, "output")]})


def definitions() -> list[NodeDef]:
    extra: dict[str, Any] = {}
    return [
        NodeDef(
            "ProbeSleepProgress",
            probe_sleep_progress,
            category="testing",
            outputs=("IMAGE",),
            description="Capture-time probe: sleeps steps x step_seconds, reporting each step.",
            required={
                "image": socket("IMAGE"),
                "steps": integer(10, 1, 100000),
                "step_seconds": floating(0.1, 0.0, 3600.0, step=0.01),
            },
            **extra,
        ),
        NodeDef(
            "SimLargeImage",
            sim_large_image,
            category="testing",
            output_node=True,
            description="Simulator only: a PNG of about size_bytes of random pixels, streamed to disk.",
            required={
                "size_bytes": integer(1 << 20, 1, 1 << 40),
                "seed": integer(0, 0, 0xFFFFFFFFFFFFFFFF),
                "filename_prefix": string("sim/large"),
            },
        ),
    ]
