"""The happy path against the simulator: events in order, media bytes intact, ids reported."""

from __future__ import annotations

import io

from PIL import Image

from mediagen.v1 import common_pb2
from tests.generator.support import run, sha256, template_request


async def test_solid_image_streams_one_png_with_matching_sha(generator_stub, simulator):
    result = await run(generator_stub, template_request("solid_image", width=32, height=24, color=0xFF0000))
    assert result.error is None, result.error
    kinds = result.kinds()
    assert kinds[0] == "accepted"
    assert kinds[-1] == "completed"
    assert kinds.index("accepted") < kinds.index("media_whole") < kinds.index("completed")  # one message
    assert not {"media_start", "media_chunk", "media_end"} & set(kinds)
    [media] = result.media
    assert media.start.media_type == common_pb2.MEDIA_TYPE_IMAGE
    assert media.start.mime_type == "image/png"
    assert media.start.format == "png"
    assert media.end is not None
    assert media.start.expected_size == len(media.data) == media.end.size_bytes
    assert media.end.sha256 == sha256(media.data)
    with Image.open(io.BytesIO(media.data)) as image:
        assert image.size == (32, 24)
        pixel = image.getpixel((0, 0))
        assert isinstance(pixel, tuple)
        assert pixel[:3] == (255, 0, 0)
    assert result.completed is not None
    assert result.completed.media_count == 1
    assert result.completed.prompt_id == result.accepted.prompt_id


async def test_a_file_of_one_chunk_is_one_message_and_a_larger_one_is_streamed(generator_stub, simulator):
    """The default chunk is 1 MiB: a file of about 256 KiB is one ``media_whole``, one of 3 MiB streams."""
    small = await run(generator_stub, template_request("large_image", size_bytes=256 * 1024))
    large = await run(generator_stub, template_request("large_image", size_bytes=3 * 1024 * 1024))
    assert small.error is None, small.error
    assert large.error is None, large.error
    assert [k for k in small.kinds() if k.startswith("media_")] == ["media_whole"]
    streamed = [k for k in large.kinds() if k.startswith("media_")]
    assert streamed[0] == "media_start"
    assert streamed[-1] == "media_end"
    assert set(streamed[1:-1]) == {"media_chunk"}
    assert len(streamed) >= 4
    for result in (small, large):
        [media] = result.media
        assert media.end is not None
        assert len(media.data) == media.end.size_bytes == media.start.expected_size
        assert media.end.sha256 == sha256(media.data)
