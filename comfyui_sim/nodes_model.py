"""Procedural stand-ins for model nodes: real class names and input schemas, no weights.

A generator builds SD1.5/SDXL/SD3, Stable Audio and Wan-style text-to-video graphs out of these
classes. Here "models" are just their names, conditioning is the prompt text, and sampling
turns (seed, text, settings) into a deterministic seed that VAEDecode paints into pixels. The
sampler reports one ``progress`` per step and can be interrupted between steps, like the real one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PIL import Image

from . import media
from .context import NodeResult, RunContext
from .nodes_av import Audio
from .schema import NodeDef, combo_v3, floating, integer, socket

MAX_RES = 16384
CHECKPOINTS = [
    "sd_v1-5.safetensors",
    "sdxl_base_1.0.safetensors",
    "sd3.5_large.safetensors",
    "stable-audio-open-1.0.safetensors",
]
TEXT_ENCODERS = [
    "clip_g.safetensors",
    "clip_l.safetensors",
    "t5_base.safetensors",
    "t5xxl_fp16.safetensors",
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
]
DIFFUSION_MODELS = ["wan2.1_t2v_1.3B_fp16.safetensors", "flux1-dev.safetensors"]
VAES = ["sdxl_vae.safetensors", "wan_2.1_vae.safetensors", "pixel_space"]
CLIP_TYPES = [
    "stable_diffusion",
    "stable_cascade",
    "sd3",
    "stable_audio",
    "mochi",
    "ltxv",
    "pixart",
    "cosmos",
    "lumina2",
    "wan",
    "hidream",
    "chroma",
    "ace",
    "omnigen2",
    "qwen_image",
    "hunyuan_image",
]
SAMPLERS = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun",
    "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "ipndm_v",
    "deis",
    "res_multistep",
    "res_multistep_cfg_pp",
    "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp",
    "gradient_estimation",
    "gradient_estimation_cfg_pp",
    "er_sde",
    "seeds_2",
    "seeds_3",
    "sa_solver",
    "sa_solver_pece",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
]
SCHEDULERS = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
]


def _model(kind: str, name: str) -> dict[str, str]:
    return {"kind": kind, "name": name}


async def checkpoint_loader(ctx: RunContext, ckpt_name: str) -> NodeResult:
    return NodeResult((_model("MODEL", ckpt_name), _model("CLIP", ckpt_name), _model("VAE", ckpt_name)))


async def clip_loader(ctx: RunContext, clip_name: str, type: str, device: str = "default") -> NodeResult:
    return NodeResult((_model("CLIP", f"{clip_name}:{type}"),))


async def triple_clip_loader(
    ctx: RunContext, clip_name1: str, clip_name2: str, clip_name3: str
) -> NodeResult:
    return NodeResult((_model("CLIP", "+".join((clip_name1, clip_name2, clip_name3))),))


async def unet_loader(ctx: RunContext, unet_name: str, weight_dtype: str) -> NodeResult:
    return NodeResult((_model("MODEL", unet_name),))


async def vae_loader(ctx: RunContext, vae_name: str) -> NodeResult:
    return NodeResult((_model("VAE", vae_name),))


async def clip_text_encode(ctx: RunContext, text: str, clip: dict[str, str]) -> NodeResult:
    return NodeResult(({"text": text, "clip": clip["name"]},))


async def conditioning_zero_out(ctx: RunContext, conditioning: dict[str, Any]) -> NodeResult:
    return NodeResult(({**conditioning, "text": "", "zero": True},))


async def conditioning_stable_audio(
    ctx: RunContext,
    positive: dict[str, Any],
    negative: dict[str, Any],
    seconds_start: float,
    seconds_total: float,
) -> NodeResult:
    extra = {"seconds_start": seconds_start, "seconds_total": seconds_total}
    return NodeResult(({**positive, **extra}, {**negative, **extra}))


def _latent(kind: str, width: int, height: int, batch: int, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "width": width, "height": height, "batch": batch, "seed": 0, **extra}


async def empty_latent(ctx: RunContext, width: int, height: int, batch_size: int) -> NodeResult:
    return NodeResult((_latent("image", width, height, batch_size),))


async def empty_hunyuan_video(
    ctx: RunContext, width: int, height: int, length: int, batch_size: int
) -> NodeResult:
    frames = ((length - 1) // 4) * 4 + 1
    return NodeResult((_latent("video", width, height, batch_size, frames=frames),))


async def empty_latent_audio(ctx: RunContext, seconds: float, batch_size: int) -> NodeResult:
    return NodeResult((_latent("audio", 0, 0, batch_size, seconds=seconds),))


async def ksampler(
    ctx: RunContext,
    model: dict[str, str],
    seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    positive: dict[str, Any],
    negative: dict[str, Any],
    latent_image: dict[str, Any],
    denoise: float,
) -> NodeResult:
    for step in range(steps):
        await ctx.sleep_step(ctx.faults.step_delay_s)
        await ctx.progress(step + 1, steps)
    mixed = media.seed_of(
        model["name"],
        seed,
        steps,
        cfg,
        sampler_name,
        scheduler,
        denoise,
        positive.get("text"),
        negative.get("text"),
        latent_image.get("seed"),
    )
    return NodeResult(
        (
            {
                **latent_image,
                "seed": mixed,
                "seconds": positive.get("seconds_total", latent_image.get("seconds")),
            },
        )
    )


async def vae_encode(ctx: RunContext, pixels: list[Image.Image], vae: dict[str, str]) -> NodeResult:
    w, h = pixels[0].size
    digest = media.seed_of(*(media.seed_of(p.resize((8, 8)).tobytes()) for p in pixels))
    return NodeResult(({**_latent("image", w, h, len(pixels)), "seed": digest},))


async def vae_decode(ctx: RunContext, samples: dict[str, Any], vae: dict[str, str]) -> NodeResult:
    count = samples["batch"] * samples.get("frames", 1)
    w, h, seed = samples["width"], samples["height"], samples["seed"]
    frames = await asyncio.to_thread(
        lambda: [media.pattern(w, h, media.seed_of(seed, i)) for i in range(count)]
    )
    return NodeResult((frames,))


async def vae_decode_audio(ctx: RunContext, samples: dict[str, Any], vae: dict[str, str]) -> NodeResult:
    seconds = float(samples.get("seconds") or 1.0)
    seed = samples["seed"]
    clips = await asyncio.to_thread(
        lambda: tuple(media.tone(seconds, 44100, 2, media.seed_of(seed, i)) for i in range(samples["batch"]))
    )
    return NodeResult((Audio(clips, 44100, 2),))


def latent_size(width: int, height: int, step: int) -> dict[str, Any]:
    """The width and height inputs of an empty-latent node: defaults and grid are the node's own."""
    return {
        "width": integer(width, 16, MAX_RES, step=step),
        "height": integer(height, 16, MAX_RES, step=step),
    }


def definitions() -> list[NodeDef]:
    cond = socket("CONDITIONING")
    batch = integer(1, 1, 4096)
    return [
        NodeDef(
            "CheckpointLoaderSimple",
            checkpoint_loader,
            category="loaders",
            outputs=("MODEL", "CLIP", "VAE"),
            display_name="Load Checkpoint",
            description="Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
            output_tooltips=(
                "The model used for denoising latents.",
                "The CLIP model used for encoding text prompts.",
                "The VAE model used for encoding and decoding images to and from latent space.",
            ),
            required={"ckpt_name": (CHECKPOINTS, {"tooltip": "The name of the checkpoint (model) to load."})},
        ),
        NodeDef(
            "CLIPLoader",
            clip_loader,
            category="advanced/loaders",
            outputs=("CLIP",),
            display_name="Load CLIP",
            required={"clip_name": (TEXT_ENCODERS, {}), "type": (CLIP_TYPES, {})},
            optional={"device": (["default", "cpu"], {"advanced": True})},
        ),
        NodeDef(
            "TripleCLIPLoader",
            triple_clip_loader,
            category="advanced/loaders",
            outputs=("CLIP",),
            v3=True,
            python_module="comfy_extras.nodes_sd3",
            description="[Recipes]\n\nsd3: clip-l, clip-g, t5",
            required={f"clip_name{i}": combo_v3(TEXT_ENCODERS) for i in (1, 2, 3)},
        ),
        NodeDef(
            "UNETLoader",
            unet_loader,
            category="advanced/loaders",
            outputs=("MODEL",),
            display_name="Load Diffusion Model",
            required={
                "unet_name": (DIFFUSION_MODELS, {}),
                "weight_dtype": (["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"], {}),
            },
        ),
        NodeDef(
            "VAELoader",
            vae_loader,
            category="loaders",
            outputs=("VAE",),
            display_name="Load VAE",
            required={"vae_name": (VAES, {})},
        ),
        NodeDef(
            "CLIPTextEncode",
            clip_text_encode,
            category="conditioning",
            outputs=("CONDITIONING",),
            display_name="CLIP Text Encode (Prompt)",
            required={
                "text": (
                    "STRING",
                    {"multiline": True, "dynamicPrompts": True, "tooltip": "The text to be encoded."},
                ),
                "clip": socket("CLIP", tooltip="The CLIP model used for encoding the text."),
            },
        ),
        NodeDef(
            "ConditioningZeroOut",
            conditioning_zero_out,
            category="advanced/conditioning",
            outputs=("CONDITIONING",),
            required={"conditioning": cond},
        ),
        NodeDef(
            "ConditioningStableAudio",
            conditioning_stable_audio,
            category="conditioning",
            outputs=("CONDITIONING", "CONDITIONING"),
            output_names=("positive", "negative"),
            python_module="comfy_extras.nodes_audio",
            required={
                "positive": cond,
                "negative": cond,
                "seconds_start": floating(0.0, 0.0, 1000.0, step=0.1),
                "seconds_total": floating(47.0, 0.0, 1000.0, step=0.1),
            },
        ),
        NodeDef(
            "EmptyLatentImage",
            empty_latent,
            category="latent",
            outputs=("LATENT",),
            display_name="Empty Latent Image",
            required={**latent_size(512, 512, step=8), "batch_size": batch},
        ),
        NodeDef(
            "EmptySD3LatentImage",
            empty_latent,
            category="latent/sd3",
            outputs=("LATENT",),
            v3=True,
            python_module="comfy_extras.nodes_sd3",
            required={**latent_size(1024, 1024, step=16), "batch_size": batch},
        ),
        NodeDef(
            "EmptyHunyuanLatentVideo",
            empty_hunyuan_video,
            category="latent/video",
            outputs=("LATENT",),
            python_module="comfy_extras.nodes_hunyuan",
            required={
                **latent_size(848, 480, step=16),
                "length": integer(25, 1, MAX_RES, step=4),
                "batch_size": batch,
            },
        ),
        NodeDef(
            "EmptyLatentAudio",
            empty_latent_audio,
            category="latent/audio",
            outputs=("LATENT",),
            display_name="Empty Latent Audio",
            python_module="comfy_extras.nodes_audio",
            required={
                "seconds": floating(47.6, 1.0, 1000.0, step=0.1),
                "batch_size": integer(1, 1, 4096, tooltip="The number of latent images in the batch."),
            },
        ),
        NodeDef(
            "KSampler",
            ksampler,
            category="sampling",
            outputs=("LATENT",),
            display_name="KSampler",
            description=(
                "Uses the provided model, positive and negative conditioning to denoise the latent image."
            ),
            required={
                "model": socket("MODEL"),
                "seed": integer(0, 0, 0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                "steps": integer(20, 1, 10000),
                "cfg": floating(8.0, 0.0, 100.0, step=0.1, round=0.01),
                "sampler_name": (SAMPLERS, {}),
                "scheduler": (SCHEDULERS, {}),
                "positive": cond,
                "negative": cond,
                "latent_image": socket("LATENT"),
                "denoise": floating(1.0, 0.0, 1.0, step=0.01),
            },
        ),
        NodeDef(
            "VAEEncode",
            vae_encode,
            category="latent",
            outputs=("LATENT",),
            display_name="VAE Encode",
            required={"pixels": socket("IMAGE"), "vae": socket("VAE")},
        ),
        NodeDef(
            "VAEDecode",
            vae_decode,
            category="latent",
            outputs=("IMAGE",),
            display_name="VAE Decode",
            description="Decodes latent images back into pixel space images.",
            required={
                "samples": socket("LATENT", tooltip="The latent to be decoded."),
                "vae": socket("VAE", tooltip="The VAE model used for decoding the latent."),
            },
        ),
        NodeDef(
            "VAEDecodeAudio",
            vae_decode_audio,
            category="latent/audio",
            outputs=("AUDIO",),
            display_name="VAE Decode Audio",
            python_module="comfy_extras.nodes_audio",
            required={"samples": socket("LATENT"), "vae": socket("VAE")},
        ),
    ]
