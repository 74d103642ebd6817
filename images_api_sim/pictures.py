"""The images the simulator returns: real PNG/JPEG/WEBP files, deterministic per prompt.

A gradient tinted by the prompt's hash, so equal requests give equal bytes and different prompts
give different files; edits tint the caller's image. Partial images are the same picture at a
coarser resolution, as a real progressive render would look.
"""

from __future__ import annotations

import functools
import hashlib
import io

from PIL import Image, ImageOps

FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
SIZES = ("1024x1024", "1536x1024", "1024x1536")
RENDER_SCALE = 4
"""Pictures are drawn at 1/4 of the size asked for and scaled up: same dimensions, less CPU."""


def dimensions(size: str) -> tuple[int, int]:
    if size in ("auto", ""):
        size = SIZES[0]
    width, _, height = size.partition("x")
    return int(width), int(height)


def _tint(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


@functools.lru_cache(maxsize=32)  # deterministic, so a repeated request costs no CPU
def render(prompt: str, index: int, size: str, output_format: str, background: str, coarse: int = 1) -> bytes:
    width, height = dimensions(size)
    small = (max(width // (RENDER_SCALE * coarse), 1), max(height // (RENDER_SCALE * coarse), 1))
    red, green, blue = _tint(f"{prompt}\x00{index}")
    ramp = Image.linear_gradient("L").resize(small)
    picture = ImageOps.colorize(ramp, (red // 4, green // 4, blue // 4), (red, green, blue))
    picture = picture.resize((width, height), Image.Resampling.NEAREST)
    if background == "transparent" and output_format != "jpeg":
        picture.putalpha(ramp.resize((width, height)))
    return encode(picture, output_format)


def edit(source: bytes, prompt: str, index: int, size: str, output_format: str) -> bytes:
    """The caller's image, tinted towards the prompt's colour, at the size asked for."""
    with Image.open(io.BytesIO(source)) as opened:
        picture = opened.convert("RGB")
    width, height = dimensions(size) if size not in ("auto", "") else picture.size
    tint = Image.new("RGB", picture.size, _tint(f"{prompt}\x00{index}"))
    mixed = Image.blend(picture, tint, 0.35).resize((width, height))
    return encode(mixed, output_format)


def encode(picture: Image.Image, output_format: str) -> bytes:
    buffer = io.BytesIO()
    if output_format == "jpeg" and picture.mode != "RGB":
        picture = picture.convert("RGB")
    picture.save(buffer, FORMATS[output_format])
    return buffer.getvalue()


def is_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.verify()
        return True
    except Exception:  # noqa: BLE001 - whatever Pillow raises, it is not an image
        return False
