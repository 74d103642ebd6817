"""Every shipped template matches the node schemas ComfyUI publishes and runs end to end.

The simulator's ``/object_info`` mirrors real ComfyUI, so a template whose class or input names
drift from the real nodes fails here. Each output is reassembled from the stream and opened with
Pillow or PyAV, so "streamed with its real media type" means a decodable file of that type.
"""

from __future__ import annotations

import io
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from generator_service.templates import MEDIA_TYPES, PACKAGED_DIR, load_templates
from mediagen.params import to_value as param
from mediagen.v1 import common_pb2, generator_pb2
from tests.generator.support import run, sha256, template_request

TEMPLATES = load_templates(PACKAGED_DIR)
QUICK: dict[str, dict[str, Any]] = {
    "sd15_txt2img": {"prompt": "a cat", "steps": 2, "width": 64, "height": 64},
    "sdxl_txt2img": {"prompt": "a cat", "steps": 2, "width": 64, "height": 64},
    "sd35_large": {"prompt": "a cat", "steps": 2, "width": 64, "height": 64},
    "stable_audio": {"prompt": "rain", "steps": 2, "seconds": 1.0},
    "wan_t2v": {"prompt": "waves", "steps": 2, "width": 64, "height": 64, "length": 5},
    "large_image": {"size_bytes": 200_000},
}


async def test_template_nodes_and_inputs_exist_in_object_info(simulator):
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        info = (await http.get("/object_info")).json()
    for name, template in TEMPLATES.items():
        for node_id, node in template.graph.items():
            schema = info.get(node["class_type"])
            assert schema is not None, f"{name}: node {node_id} class {node['class_type']} unknown"
            known = {**schema["input"].get("required", {}), **schema["input"].get("optional", {})}
            for input_name in node["inputs"]:
                assert input_name in known, f"{name}: {node['class_type']} has no input {input_name}"
            missing = set(schema["input"].get("required", {})) - set(node["inputs"])
            assert not missing, f"{name}: node {node_id} lacks required inputs {missing}"


def decode(media) -> tuple[int, str]:
    """(media type seen by a decoder, container/format name)."""
    data = bytes(media.data)
    if media.start.media_type in (common_pb2.MEDIA_TYPE_AUDIO, common_pb2.MEDIA_TYPE_VIDEO):
        with av.open(io.BytesIO(data), mode="r") as container:
            kind = common_pb2.MEDIA_TYPE_VIDEO if container.streams.video else common_pb2.MEDIA_TYPE_AUDIO
            assert sum(1 for _ in container.decode(container.streams[0])) > 0
            return kind, container.format.name
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        frames = getattr(image, "n_frames", 1)
        kind = common_pb2.MEDIA_TYPE_ANIMATED_IMAGE if frames > 1 else common_pb2.MEDIA_TYPE_IMAGE
        return kind, str(image.format).lower()


@pytest.mark.parametrize("name", sorted(TEMPLATES))
async def test_template_runs_and_streams_decodable_media_of_its_declared_type(
    generator_stub, simulator, tmp_path, name
):
    template = TEMPLATES[name]
    request = template_request(name, **QUICK.get(name, {}))
    if name == "sd15_img2img":
        image = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 200, 30)).save(image, "PNG")
        request.workflow.parameters["prompt"].CopyFrom(param("a cat"))
        request.workflow.parameters["steps"].CopyFrom(param(2))
        request.workflow.inputs.append(
            generator_pb2.InputMedia(parameter="image", filename="start.png", data=image.getvalue())
        )
    result = await run(generator_stub, request)
    assert result.error is None, result.error
    assert result.media, "no media streamed"
    declared = {MEDIA_TYPES[kind] for kind in template.media_types}
    for media in result.media:
        assert media.start.media_type in declared
        assert media.end is not None
        assert media.end.sha256 == sha256(media.data)
        assert media.end.size_bytes == len(media.data)
        kind, fmt = decode(media)
        assert fmt == media.start.format or (fmt, media.start.format) == ("mov,mp4,m4a,3gp,3g2,mj2", "mp4")
        assert kind == media.start.media_type, (name, fmt)
    assert result.accepted.template == name
    assert set(result.accepted.parameters) == set(template.parameters) - {"image"}
    assert simulator.state()["history_reads"] == 0, "its outputs came from the executed pushes"


async def test_batch_of_four_images_gives_four_media(generator_stub):
    result = await run(generator_stub, template_request("solid_image", width=16, height=16, batch_size=4))
    assert result.error is None
    assert [m.start.index for m in result.media] == [0, 1, 2, 3]
    assert len({m.start.filename for m in result.media}) == 4
    assert result.completed is not None
    assert result.completed.media_count == 4
    for media in result.media:
        assert decode(media)[0] == common_pb2.MEDIA_TYPE_IMAGE


async def test_outputs_are_named_per_job_so_a_rerun_is_never_a_stale_cache_hit(generator_stub):
    first = await run(generator_stub, template_request("solid_image", width=8, height=8))
    second = await run(generator_stub, template_request("solid_image", width=8, height=8))
    assert first.error is None
    assert second.error is None
    assert first.accepted.prompt_id in first.media[0].start.filename
    assert second.accepted.prompt_id in second.media[0].start.filename
    assert second.completed is not None
    assert not second.completed.cached


async def test_fully_cached_raw_graph_still_returns_the_cached_output(generator_stub):
    """An identical graph (fixed prefix, raw) is answered from cache: outputs still come back."""
    import json

    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    request = generator_pb2.GenerateRequest(
        workflow=generator_pb2.WorkflowSpec(raw_graph_json=json.dumps(graph), include_previews=True)
    )
    first = await run(generator_stub, request)
    second = await run(generator_stub, request)
    assert first.error is None, first.error
    assert second.error is None, second.error
    assert len(second.media) == 1
    assert second.completed is not None
    assert second.completed.cached
    assert second.media[0].data == first.media[0].data


async def test_previews_are_left_out_unless_asked_for(generator_stub):
    import json

    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 9}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    request = generator_pb2.GenerateRequest(
        workflow=generator_pb2.WorkflowSpec(raw_graph_json=json.dumps(graph))
    )
    result = await run(generator_stub, request)
    assert result.error is None
    assert [m.start.node_id for m in result.media] == ["3"]
    request.workflow.include_previews = True
    result = await run(generator_stub, request)
    assert sorted(m.start.node_id for m in result.media) == ["2", "3"]
