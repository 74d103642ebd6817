"""Model-style graphs built from the simulator's stand-in nodes."""

from __future__ import annotations

from typing import Any


def text_to_image(
    seed: int,
    width: int = 64,
    height: int = 48,
    batch: int = 1,
    text: str = "a red fox",
    ckpt: str = "sd_v1-5.safetensors",
    prefix: str = "gen/img",
) -> dict[str, Any]:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": batch},
        },
        "5": _ksampler(seed, 4, 7.0, "euler", "normal", ["2", 0], ["3", 0], ["4", 0]),
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
    }


def text_to_audio(seed: int, seconds: float = 1.0) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "stable-audio-open-1.0.safetensors"},
        },
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "rain on a roof", "clip": ["1", 1]}},
        "3": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["2", 0]}},
        "4": {
            "class_type": "ConditioningStableAudio",
            "inputs": {
                "positive": ["2", 0],
                "negative": ["3", 0],
                "seconds_start": 0.0,
                "seconds_total": seconds,
            },
        },
        "5": {"class_type": "EmptyLatentAudio", "inputs": {"seconds": seconds, "batch_size": 1}},
        "6": _ksampler(seed, 3, 6.0, "dpmpp_3m_sde_gpu", "exponential", ["4", 0], ["4", 1], ["5", 0]),
        "7": {"class_type": "VAEDecodeAudio", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {
            "class_type": "SaveAudioMP3",
            "inputs": {"audio": ["7", 0], "filename_prefix": "gen/audio", "quality": "128k"},
        },
    }


def text_to_video(seed: int, width: int = 64, height: int = 48, length: int = 9) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "wan2.1_t2v_1.3B_fp16.safetensors", "weight_dtype": "default"},
        },
        "2": {
            "class_type": "CLIPLoader",
            "inputs": {"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "type": "wan"},
        },
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_2.1_vae.safetensors"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "a boat at dawn", "clip": ["2", 0]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 0]}},
        "6": {
            "class_type": "EmptyHunyuanLatentVideo",
            "inputs": {"width": width, "height": height, "length": length, "batch_size": 1},
        },
        "7": _ksampler(seed, 3, 6.0, "uni_pc", "simple", ["4", 0], ["5", 0], ["6", 0]),
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["3", 0]}},
        "9": {"class_type": "CreateVideo", "inputs": {"images": ["8", 0], "fps": 16.0}},
        "10": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["9", 0], "filename_prefix": "gen/video", "format": "auto", "codec": "auto"},
        },
    }


Link = list[str | int]


def _ksampler(
    seed: int, steps: int, cfg: float, sampler: str, scheduler: str, *links: Link
) -> dict[str, Any]:
    """A KSampler on node 1's model (every graph here loads it first); ``links``: positive,
    negative, latent image."""
    positive, negative, latent = links
    inputs = {"model": ["1", 0], "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler}
    inputs |= {"scheduler": scheduler, "positive": positive, "negative": negative, "latent_image": latent}
    return {"class_type": "KSampler", "inputs": {**inputs, "denoise": 1.0}}
