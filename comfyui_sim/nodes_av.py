"""Audio and video nodes: EmptyAudio, the four audio savers, CreateVideo, SaveVideo, SaveWEBM.

AUDIO values are :class:`Audio` (s16 interleaved PCM per batch item); VIDEO values are
:class:`Video` (frames + fps). Output keys follow the real server: audio savers report
``audio``, video savers report ``images`` + ``animated`` (never ``video``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from PIL import Image

from . import media
from .context import NodeResult, RunContext
from .files import file_ref, save_path
from .nodes_image import temp_prefix
from .schema import HIDDEN_PROMPT, NodeDef, combo_v3, floating, integer, socket, string


@dataclass(frozen=True)
class Audio:
    clips: tuple[bytes, ...]
    sample_rate: int
    channels: int

    def __repr__(self) -> str:
        return f"Audio({len(self.clips)} clip(s), {self.sample_rate} Hz, {self.channels} ch)"


@dataclass(frozen=True)
class Video:
    frames: tuple[Image.Image, ...]
    fps: float

    def __repr__(self) -> str:
        return f"Video({len(self.frames)} frames @ {self.fps} fps)"


async def empty_audio(ctx: RunContext, duration: float, sample_rate: int, channels: int) -> NodeResult:
    return NodeResult((Audio((media.silence(duration, sample_rate, channels),), sample_rate, channels),))


async def _save_audio(
    ctx: RunContext, audio: Audio, prefix: str, fmt: str, quality: str | None, kind: str = "output"
) -> NodeResult:
    base_dir = ctx.folders.output if kind == "output" else ctx.folders.temp
    folder, base, counter, subfolder = save_path(prefix, base_dir)
    results = []
    for number, pcm in enumerate(audio.clips):
        name = f"{base.replace('%batch_num%', str(number))}_{counter:05}_.{fmt}"
        path = os.path.join(folder, name)
        await asyncio.to_thread(media.write_audio, path, pcm, audio.sample_rate, audio.channels, fmt, quality)
        results.append(file_ref(name, subfolder, kind))
        counter += 1
    return NodeResult((), {"audio": results})


async def save_audio(ctx: RunContext, audio: Audio, filename_prefix: str) -> NodeResult:
    return await _save_audio(ctx, audio, filename_prefix, "flac", None)


async def save_audio_mp3(ctx: RunContext, audio: Audio, filename_prefix: str, quality: str) -> NodeResult:
    return await _save_audio(ctx, audio, filename_prefix, "mp3", None if quality == "V0" else quality)


async def save_audio_opus(ctx: RunContext, audio: Audio, filename_prefix: str, quality: str) -> NodeResult:
    return await _save_audio(ctx, audio, filename_prefix, "opus", quality)


async def preview_audio(ctx: RunContext, audio: Audio) -> NodeResult:
    return await _save_audio(ctx, audio, temp_prefix(), "flac", None, kind="temp")


async def create_video(
    ctx: RunContext, images: list[Image.Image], fps: float, audio: Audio | None = None
) -> NodeResult:
    return NodeResult((Video(tuple(images), fps),))


async def _save_video(
    ctx: RunContext,
    frames: list[Image.Image],
    prefix: str,
    ext: str,
    codec: str,
    fps: float,
    crf: float | None,
) -> NodeResult:
    w, h = frames[0].size
    folder, base, counter, subfolder = save_path(prefix, ctx.folders.output, w, h)
    name = f"{base}_{counter:05}_.{ext}"
    await asyncio.to_thread(media.write_video, os.path.join(folder, name), frames, fps, codec, crf)
    return NodeResult((), {"images": [file_ref(name, subfolder, "output")], "animated": [True]})


async def save_video(
    ctx: RunContext, video: Video, filename_prefix: str, format: str, codec: str
) -> NodeResult:
    return await _save_video(ctx, list(video.frames), filename_prefix, "mp4", "h264", video.fps, None)


async def save_webm(
    ctx: RunContext, images: list[Image.Image], filename_prefix: str, codec: str, fps: float, crf: float
) -> NodeResult:
    return await _save_video(ctx, images, filename_prefix, "webm", "vp9", fps, crf)


def definitions() -> list[NodeDef]:
    audio = socket("AUDIO")
    mod = "comfy_extras.nodes_audio"
    prefix_tip = (
        "The prefix for the file to save. This may include formatting information such as "
        "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
    )
    return [
        NodeDef(
            "EmptyAudio",
            empty_audio,
            category="audio",
            outputs=("AUDIO",),
            display_name="Empty Audio",
            python_module=mod,
            required={
                "duration": floating(
                    60.0,
                    0.0,
                    0xFFFFFFFFFFFFFFFF,
                    step=0.01,
                    tooltip="Duration of the empty audio clip in seconds",
                ),
                "sample_rate": integer(44100, tooltip="Sample rate of the empty audio clip."),
                "channels": integer(2, 1, 2, tooltip="Number of audio channels (1 for mono, 2 for stereo)."),
            },
        ),
        NodeDef(
            "SaveAudio",
            save_audio,
            category="audio",
            output_node=True,
            display_name="Save Audio (FLAC)",
            python_module=mod,
            hidden=HIDDEN_PROMPT,
            required={"audio": audio, "filename_prefix": string("audio/ComfyUI")},
        ),
        NodeDef(
            "SaveAudioMP3",
            save_audio_mp3,
            category="audio",
            output_node=True,
            display_name="Save Audio (MP3)",
            python_module=mod,
            hidden=HIDDEN_PROMPT,
            required={
                "audio": audio,
                "filename_prefix": string("audio/ComfyUI"),
                "quality": (["V0", "128k", "320k"], {"default": "V0"}),
            },
        ),
        NodeDef(
            "SaveAudioOpus",
            save_audio_opus,
            category="audio",
            output_node=True,
            display_name="Save Audio (Opus)",
            python_module=mod,
            hidden=HIDDEN_PROMPT,
            required={
                "audio": audio,
                "filename_prefix": string("audio/ComfyUI"),
                "quality": (["64k", "96k", "128k", "192k", "320k"], {"default": "128k"}),
            },
        ),
        NodeDef(
            "PreviewAudio",
            preview_audio,
            category="audio",
            output_node=True,
            display_name="Preview Audio",
            python_module=mod,
            hidden=HIDDEN_PROMPT,
            required={"audio": audio},
        ),
        NodeDef(
            "CreateVideo",
            create_video,
            category="image/video",
            outputs=("VIDEO",),
            v3=True,
            display_name="Create Video",
            description="Create a video from images.",
            python_module="comfy_extras.nodes_video",
            required={
                "images": socket("IMAGE", tooltip="The images to create a video from."),
                "fps": floating(30.0, 1.0, 120.0, step=1.0),
            },
            optional={"audio": socket("AUDIO", tooltip="The audio to add to the video.")},
        ),
        NodeDef(
            "SaveVideo",
            save_video,
            category="image/video",
            output_node=True,
            v3=True,
            display_name="Save Video",
            python_module="comfy_extras.nodes_video",
            hidden=HIDDEN_PROMPT,
            description="Saves the input images to your ComfyUI output directory.",
            required={
                "video": socket("VIDEO", tooltip="The video to save."),
                "filename_prefix": string("video/ComfyUI", tooltip=prefix_tip),
                "format": combo_v3(
                    ["auto", "mp4"], default="auto", tooltip="The format to save the video as."
                ),
                "codec": combo_v3(
                    ["auto", "h264"], default="auto", tooltip="The codec to use for the video."
                ),
            },
        ),
        NodeDef(
            "SaveWEBM",
            save_webm,
            category="image/video",
            output_node=True,
            v3=True,
            experimental=True,
            python_module="comfy_extras.nodes_video",
            hidden=HIDDEN_PROMPT,
            required={
                "images": socket("IMAGE"),
                "filename_prefix": string("ComfyUI"),
                "codec": combo_v3(["vp9", "av1"]),
                "fps": floating(24.0, 0.01, 1000.0, step=0.01),
                "crf": floating(
                    32.0,
                    0,
                    63.0,
                    step=1,
                    tooltip=(
                        "Higher crf means lower quality with a smaller file size, lower crf means "
                        "higher quality higher filesize."
                    ),
                ),
            },
        ),
    ]
