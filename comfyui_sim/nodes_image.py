"""Model-free image nodes of ComfyUI core: same class names, inputs and UI outputs.

IMAGE values are lists of Pillow images (one per batch item). Nodes never mutate an image in
place, so a batch may repeat one object (EmptyImage of 200 frames costs one frame of memory).
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

from PIL import Image, ImageFilter, ImageOps, ImageSequence

from . import media
from .context import NodeResult, RunContext
from .files import file_ref, save_path
from .schema import HIDDEN_PROMPT, NodeDef, floating, integer, socket, string

MAX_RES = 16384
SCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

_TEMP_SUFFIXES = random.Random()
"""Its own generator: drawing from the module's shared one would disturb whoever else uses it
(a property-based test drawing its cases in the same process, for one)."""


async def empty_image(ctx: RunContext, width: int, height: int, batch_size: int, color: int) -> NodeResult:
    frame = media.solid(width, height, color)
    return NodeResult(([frame] * batch_size,))


def _load(path: str) -> tuple[list[Image.Image], list[Image.Image]]:
    with Image.open(path) as img:
        frames = [ImageOps.exif_transpose(f).convert("RGB") for f in ImageSequence.Iterator(img)]
    size = frames[0].size
    frames = [f for f in frames if f.size == size]
    return frames, [Image.new("L", size, 0) for _ in frames]


async def load_image(ctx: RunContext, image: str) -> NodeResult:
    images, masks = await asyncio.to_thread(_load, ctx.folders.annotated_path(image))
    return NodeResult((images, masks))


async def image_invert(ctx: RunContext, image: list[Image.Image]) -> NodeResult:
    return NodeResult(([media.invert(i) for i in image],))


async def image_batch(ctx: RunContext, image1: list[Image.Image], image2: list[Image.Image]) -> NodeResult:
    size = image1[0].size
    second = [i if i.size == size else i.resize(size, Image.Resampling.BILINEAR) for i in image2]
    return NodeResult((image1 + second,))


def _scale(img: Image.Image, method: str, width: int, height: int, crop: str) -> Image.Image:
    w, h = img.size
    if width == 0 and height == 0:
        return img
    width = width or max(1, round(w * height / h))
    height = height or max(1, round(h * width / w))
    if crop == "center":
        return ImageOps.fit(img, (width, height), RESAMPLE[method])
    return img.resize((width, height), RESAMPLE[method])


async def image_scale(
    ctx: RunContext, image: list[Image.Image], upscale_method: str, width: int, height: int, crop: str
) -> NodeResult:
    out = await asyncio.to_thread(lambda: [_scale(i, upscale_method, width, height, crop) for i in image])
    return NodeResult((out,))


async def image_blur(ctx: RunContext, image: list[Image.Image], blur_radius: int, sigma: float) -> NodeResult:
    blur = ImageFilter.GaussianBlur(radius=min(float(blur_radius), sigma * 3))
    out = await asyncio.to_thread(lambda: [i.filter(blur) for i in image])
    return NodeResult((out,))


async def _save_images(
    ctx: RunContext, images: list[Image.Image], prefix: str, folder_dir: str, kind: str, level: int
) -> NodeResult:
    w, h = images[0].size
    folder, base, counter, subfolder = save_path(prefix, folder_dir, w, h)
    results = []
    for number, img in enumerate(images):
        name = f"{base.replace('%batch_num%', str(number))}_{counter:05}_.png"
        path = os.path.join(folder, name)
        await asyncio.to_thread(media.save_png, img, path, ctx.prompt, level)
        results.append(file_ref(name, subfolder, kind))
        counter += 1
    return NodeResult((), {"images": results})


async def save_image(ctx: RunContext, images: list[Image.Image], filename_prefix: str) -> NodeResult:
    return await _save_images(ctx, images, filename_prefix, ctx.folders.output, "output", 4)


def temp_prefix() -> str:
    return "ComfyUI_temp_" + "".join(_TEMP_SUFFIXES.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))


async def preview_image(ctx: RunContext, images: list[Image.Image]) -> NodeResult:
    return await _save_images(ctx, images, temp_prefix(), ctx.folders.temp, "temp", 1)


async def _save_animated(
    ctx: RunContext, images: list[Image.Image], prefix: str, ext: str, fmt: str, fps: float, **opts: Any
) -> NodeResult:
    folder, base, counter, subfolder = save_path(prefix, ctx.folders.output)
    name = f"{base}_{counter:05}_.{ext}"
    path = os.path.join(folder, name)
    await asyncio.to_thread(media.save_animated, images, path, fmt, fps, **opts)
    return NodeResult((), {"images": [file_ref(name, subfolder, "output")], "animated": [True]})


async def save_animated_webp(
    ctx: RunContext,
    images: list[Image.Image],
    filename_prefix: str,
    fps: float,
    lossless: bool,
    quality: int,
    method: str,
) -> NodeResult:
    level = {"default": 4, "fastest": 0, "slowest": 6}.get(method, 4)
    return await _save_animated(
        ctx, images, filename_prefix, "webp", "WEBP", fps, lossless=lossless, quality=quality, method=level
    )


async def save_animated_png(
    ctx: RunContext, images: list[Image.Image], filename_prefix: str, fps: float, compress_level: int
) -> NodeResult:
    return await _save_animated(
        ctx, images, filename_prefix, "png", "PNG", fps, compress_level=compress_level
    )


def describe(value: Any) -> str:
    """PreviewAny's text. The real node prints a torch tensor; we describe the value instead."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    if isinstance(value, list) and value and isinstance(value[0], Image.Image):
        w, h = value[0].size
        return f"IMAGE batch of {len(value)}, {w}x{h}"
    return repr(value)


async def preview_any(ctx: RunContext, source: Any = None) -> NodeResult:
    return NodeResult((), {"text": [describe(source)]})


async def save_image_websocket(ctx: RunContext, images: list[Image.Image]) -> NodeResult:
    for step, img in enumerate(images):
        await ctx.progress(step, len(images), img)
    return NodeResult((), None)


def _load_image_valid(folders: Any) -> Any:
    def check(inputs: dict[str, Any]) -> str | bool:
        name = str(inputs["image"])
        return True if os.path.exists(folders.annotated_path(name)) else f"Invalid image file: {name}"

    return check


def definitions(folders: Any) -> list[NodeDef]:
    image = socket("IMAGE")
    saved = {"images": ("IMAGE", {"tooltip": "The images to save."})}
    # the inputs both animated savers declare alike
    fps = floating(6.0, 0.01, 1000.0, step=0.01)
    animated = {"images": image, "filename_prefix": string("ComfyUI"), "fps": fps}
    prefix_tip = (
        "The prefix for the file to save. This may include formatting information such as "
        "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
    )
    return [
        NodeDef(
            "EmptyImage",
            empty_image,
            category="image",
            outputs=("IMAGE",),
            required={
                "width": integer(512, 1, MAX_RES, step=1),
                "height": integer(512, 1, MAX_RES, step=1),
                "batch_size": integer(1, 1, 4096),
                "color": integer(0, 0, 0xFFFFFF, step=1, display="color"),
            },
        ),
        NodeDef(
            "LoadImage",
            load_image,
            category="image",
            outputs=("IMAGE", "MASK"),
            display_name="Load Image",
            required={"image": (folders.input_files(), {"image_upload": True})},
            validate=_load_image_valid(folders),
            validate_inputs=("image",),
            change_key=lambda i: media.file_digest(folders.annotated_path(str(i["image"]))),
        ),
        NodeDef(
            "ImageInvert",
            image_invert,
            category="image",
            outputs=("IMAGE",),
            display_name="Invert Image",
            required={"image": image},
        ),
        NodeDef(
            "ImageBatch",
            image_batch,
            category="image",
            outputs=("IMAGE",),
            display_name="Batch Images",
            required={"image1": image, "image2": image},
        ),
        NodeDef(
            "ImageScale",
            image_scale,
            category="image/upscaling",
            outputs=("IMAGE",),
            display_name="Upscale Image",
            required={
                "image": image,
                "upscale_method": (SCALE_METHODS, {}),
                "width": integer(512, 0, MAX_RES, step=1),
                "height": integer(512, 0, MAX_RES, step=1),
                "crop": (["disabled", "center"], {}),
            },
        ),
        NodeDef(
            "ImageBlur",
            image_blur,
            category="image/postprocessing",
            outputs=("IMAGE",),
            v3=True,
            python_module="comfy_extras.nodes_post_processing",
            required={
                "image": image,
                "blur_radius": integer(1, 1, 31, step=1),
                "sigma": floating(1.0, 0.1, 10.0, step=0.1),
            },
        ),
        NodeDef(
            "SaveImage",
            save_image,
            category="image",
            output_node=True,
            display_name="Save Image",
            description="Saves the input images to your ComfyUI output directory.",
            hidden=HIDDEN_PROMPT,
            required={**saved, "filename_prefix": string("ComfyUI", tooltip=prefix_tip)},
        ),
        NodeDef(
            "PreviewImage",
            preview_image,
            category="image",
            output_node=True,
            display_name="Preview Image",
            description="Saves the input images to your ComfyUI output directory.",
            hidden=HIDDEN_PROMPT,
            required={"images": image},
        ),
        NodeDef(
            "SaveAnimatedWEBP",
            save_animated_webp,
            category="image/animation",
            output_node=True,
            python_module="comfy_extras.nodes_images",
            hidden=HIDDEN_PROMPT,
            required={
                **animated,
                "lossless": ("BOOLEAN", {"default": True}),
                "quality": integer(80, 0, 100),
                "method": (["default", "fastest", "slowest"], {}),
            },
        ),
        NodeDef(
            "SaveAnimatedPNG",
            save_animated_png,
            category="image/animation",
            output_node=True,
            python_module="comfy_extras.nodes_images",
            hidden=HIDDEN_PROMPT,
            required={**animated, "compress_level": integer(4, 0, 9)},
        ),
        NodeDef(
            "PreviewAny",
            preview_any,
            category="utils",
            output_node=True,
            display_name="Preview Any",
            python_module="comfy_extras.nodes_preview_any",
            required={"source": ("*", {})},
        ),
        NodeDef(
            "SaveImageWebsocket",
            save_image_websocket,
            category="api/image",
            output_node=True,
            python_module="custom_nodes.websocket_image_save",
            always_changed=True,
            required={"images": image},
        ),
    ]
