"""One hostile request per example, for every RPC of the gateway, the generator and storage.

A :class:`Case` carries the request (a list of messages for PutMedia's client stream), a label
saying what kind of hostility it holds (for the tallies), and ``must_refuse`` when the request
breaks a documented rule for certain (a malformed run id, a stream without a header ...), so an
OK answer to it is a failure too. Values that are in range but costly (a 16384x16384 image, a
terabyte "large image", 10,000 sampler steps) are legitimate work, not hostile input: size
parameters are drawn either small or out of range, so a valid case runs in milliseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import duration_pb2
from google.protobuf.message import Message
from hypothesis import strategies as st

from bench.fuzz import graphs
from bench.fuzz.values import (
    INT64_MAX,
    INT64_MIN,
    KiB,
    MiB,
    hostile_bytes,
    hostile_float,
    hostile_int,
    hostile_text,
    hostile_uint32,
    identifier_like,
)
from mediagen.rules import RUN_ID, STORED_RUN_ID
from mediagen.v1 import gateway_pb2, generator_pb2, storage_pb2

ANCHOR_RUNS = tuple(f"fuzz-anchor-{i}" for i in range(4))
"""Runs the target creates before fuzzing, so PutMedia and GetMedia reach past NOT_FOUND."""
MAX_MEDIA_BYTES = 1 * MiB
"""The storage limit fuzz targets run with, so an oversize upload costs one MiB, not four GiB."""
MAX_OUTPUTS = 64
TEMPLATES = (
    "solid_image",
    "inverted_image",
    "animated_webp",
    "empty_audio",
    "solid_video",
    "large_image",
    "sd15_txt2img",
    "sd15_img2img",
)
PARAMETER_NAMES = (
    "width",
    "height",
    "color",
    "second_color",
    "batch_size",
    "frames",
    "fps",
    "lossless",
    "quality",
    "duration",
    "sample_rate",
    "channels",
    "size_bytes",
    "seed",
    "prompt",
    "negative_prompt",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "denoise",
    "image",
)
SIZE_LIMITS: dict[str, float] = {
    "width": 16384,
    "height": 16384,
    "batch_size": 64,
    "frames": 1024,
    "size_bytes": 2**40,
    "steps": 10000,
    "length": 1025,
    "seconds": 47,
    "duration": 3600,
    "sample_rate": 192000,
    "fps": 1000,
}
SMALL_VALUES: dict[str, tuple[float, ...]] = {
    "width": (16, 17, 24, 32),
    "height": (16, 20, 32),
    "batch_size": (1, 2),
    "frames": (1, 2),
    "size_bytes": (1, 100, 4096),
    "steps": (1, 2),
    "length": (1,),
    "seconds": (1.0,),
    "duration": (0.01, 0.05),
    "sample_rate": (8000,),
    "fps": (1.0, 6.0),
}


@dataclass(frozen=True)
class Case:
    service: str
    method: str
    kind: str
    request: Message | tuple[Message, ...]
    must_refuse: bool = False
    notes: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self, limit: int = 400) -> str:
        """A short, printable account of the case (requests may be megabytes)."""
        parts = self.request if isinstance(self.request, tuple) else (self.request,)
        text = " | ".join(f"{type(p).__name__}({p.ByteSize()} B): {str(p)[:limit]!r}" for p in parts[:6])
        more = f" (+{len(parts) - 6} more)" if len(parts) > 6 else ""
        return f"{self.service}.{self.method} [{self.kind}] refuse={self.must_refuse}: {text}{more}"


def valid_run_id(run_id: str) -> bool:
    """A run id a gateway caller may choose."""
    return bool(RUN_ID.fullmatch(run_id))


def valid_stored_run_id(run_id: str) -> bool:
    """A run id storage takes: a gateway caller's id with the gateway's tag of the caller in front."""
    return bool(STORED_RUN_ID.fullmatch(run_id))


# ---------------------------------------------------------------- shared pieces


def durations() -> st.SearchStrategy[duration_pb2.Duration | None]:
    """None (unset), short, or hostile: negative, huge, nanos out of range or of the wrong sign."""
    return st.one_of(
        st.none(),
        st.builds(
            lambda ms: duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000),
            st.integers(1, 3000),
        ),
        st.builds(
            lambda s, n: duration_pb2.Duration(seconds=s, nanos=n),
            st.sampled_from((INT64_MIN, -1, 0, 1, 315_576_000_000, 315_576_000_001, 2**40, INT64_MAX)),
            st.sampled_from((-(10**9), -1, 0, 1, 999_999_999, 10**9, 2**31 - 1, -(2**31))),
        ),
    )


def negative(duration: duration_pb2.Duration | None) -> bool:
    """Below zero in value (a Duration with mixed signs is malformed, but refusing it is optional)."""
    return duration is not None and duration.seconds * 10**9 + duration.nanos < 0


def run_contexts() -> st.SearchStrategy[storage_pb2.RunContext]:
    return st.builds(
        storage_pb2.RunContext,
        schema=hostile_text(4 * KiB),
        execution_mode=hostile_text(4 * KiB),
        safety_level=hostile_text(4 * KiB),
        input_text=hostile_text(2 * MiB),
        labels=st.dictionaries(hostile_text(1 * KiB), hostile_text(4 * KiB), max_size=6),
    )


def _size_value(name: str) -> st.SearchStrategy[float]:
    limit = SIZE_LIMITS[name]
    return st.one_of(
        st.sampled_from(SMALL_VALUES[name]),
        st.sampled_from((0, -1, limit + 1, limit * 2, INT64_MAX, INT64_MIN)),
        st.sampled_from((float("nan"), float("inf"), float("-inf"), -0.0)),
    )


def parameter_value(name: str) -> st.SearchStrategy[generator_pb2.ParameterValue]:
    if name in SIZE_LIMITS:
        numbers = _size_value(name)
        ints = numbers.map(lambda v: int(v) if v == v and abs(v) != float("inf") else 0)
        ints = ints.filter(lambda v: INT64_MIN <= v <= INT64_MAX)
        return st.one_of(
            ints.map(lambda v: generator_pb2.ParameterValue(int_value=v)),
            numbers.map(lambda v: generator_pb2.ParameterValue(float_value=float(v))),
            hostile_text(64 * KiB).map(lambda v: generator_pb2.ParameterValue(string_value=v)),
            st.booleans().map(lambda v: generator_pb2.ParameterValue(bool_value=v)),
            st.just(generator_pb2.ParameterValue()),
        )
    return st.one_of(
        hostile_int().map(lambda v: generator_pb2.ParameterValue(int_value=v)),
        hostile_float().map(lambda v: generator_pb2.ParameterValue(float_value=v)),
        hostile_text().map(lambda v: generator_pb2.ParameterValue(string_value=v)),
        st.booleans().map(lambda v: generator_pb2.ParameterValue(bool_value=v)),
        st.just(generator_pb2.ParameterValue()),
    )


def parameters() -> st.SearchStrategy[dict[str, generator_pb2.ParameterValue]]:
    known = st.sampled_from(PARAMETER_NAMES).flatmap(lambda n: st.tuples(st.just(n), parameter_value(n)))
    unknown = st.tuples(hostile_text(64 * KiB), parameter_value("unknown"))
    return st.lists(st.one_of(known, known, unknown), max_size=6).map(dict)


def input_media() -> st.SearchStrategy[generator_pb2.InputMedia]:
    return st.builds(
        generator_pb2.InputMedia,
        parameter=st.one_of(st.just("image"), hostile_text(4 * KiB)),
        filename=st.one_of(st.sampled_from(("init.png", "a.png")), hostile_text(64 * KiB)),
        data=hostile_bytes(2 * MiB),
    )


@dataclass(frozen=True)
class Workflow:
    spec: generator_pb2.WorkflowSpec
    kind: str
    must_refuse: bool


def _plain(value: int | float | bool) -> generator_pb2.ParameterValue:
    if isinstance(value, bool):
        return generator_pb2.ParameterValue(bool_value=value)
    if isinstance(value, int):
        return generator_pb2.ParameterValue(int_value=value)
    return generator_pb2.ParameterValue(float_value=value)


_SIDE = st.integers(16, 32)
_COLOR = st.integers(0, 0xFFFFFF)
_FPS = st.floats(1.0, 30.0)
PLAUSIBLE: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "solid_image": {"width": _SIDE, "height": _SIDE, "color": _COLOR, "batch_size": st.integers(1, 2)},
    "inverted_image": {"width": _SIDE, "height": _SIDE, "color": _COLOR},
    "animated_webp": {
        "width": _SIDE,
        "height": _SIDE,
        "color": _COLOR,
        "frames": st.integers(1, 3),
        "fps": _FPS,
        "lossless": st.booleans(),
        "quality": st.integers(0, 100),
    },
    "empty_audio": {"duration": st.floats(0.01, 0.2), "sample_rate": st.integers(8000, 16000)},
    "solid_video": {"width": _SIDE, "height": _SIDE, "frames": st.integers(1, 3), "fps": _FPS},
}
"""Templates and in-range values that run in milliseconds: the cases that get as far as storage."""


def plausible_workflows() -> st.SearchStrategy[Workflow]:
    def build(name: str, values: dict[str, Any]) -> Workflow:
        spec = generator_pb2.WorkflowSpec(template=name, parameters={k: _plain(v) for k, v in values.items()})
        return Workflow(spec, "plausible", False)

    return st.sampled_from(sorted(PLAUSIBLE)).flatmap(
        lambda name: st.builds(build, st.just(name), st.fixed_dictionaries({}, optional=PLAUSIBLE[name]))
    )


def workflows() -> st.SearchStrategy[Workflow]:
    def templated(name: str, params: dict[str, Any], inputs: list[Any], previews: bool) -> Workflow:
        spec = generator_pb2.WorkflowSpec(
            template=name, parameters=params, inputs=inputs, include_previews=previews
        )
        unknown_template = name not in TEMPLATES
        unknown_param = any(p not in PARAMETER_NAMES for p in params)
        return Workflow(
            spec,
            "template" if not unknown_template else "unknown-template",
            unknown_template or unknown_param,
        )

    def raw(text: str, kind: str, params: dict[str, Any], inputs: list[Any]) -> Workflow:
        spec = generator_pb2.WorkflowSpec(raw_graph_json=text, parameters=params, inputs=inputs)
        return Workflow(
            spec, f"raw-{kind}", bool(params) or bool(inputs) or (kind == "broken" and not _is_object(text))
        )

    template_name = st.one_of(st.sampled_from(TEMPLATES), st.sampled_from(TEMPLATES), hostile_text(1 * MiB))
    raw_kinds = st.sampled_from(("valid", "deep", "cyclic", "typed", "huge", "broken"))
    by_kind = {
        "valid": graphs.valid_graph(),
        "deep": graphs.deep_graph(),
        "cyclic": graphs.cyclic_graph(),
        "typed": graphs.wrongly_typed_graph(),
        "huge": graphs.huge_graph(),
        "broken": graphs.broken_json(),
    }
    few_params: st.SearchStrategy[dict[str, generator_pb2.ParameterValue]] = st.one_of(
        st.just({}), st.just({}), parameters()
    )
    few_inputs: st.SearchStrategy[list[generator_pb2.InputMedia]] = st.one_of(
        st.just([]), st.just([]), st.lists(input_media(), max_size=2)
    )
    return st.one_of(
        plausible_workflows(),
        plausible_workflows(),
        st.builds(templated, template_name, parameters(), few_inputs, st.booleans()),
        raw_kinds.flatmap(lambda k: st.builds(raw, by_kind[k], st.just(k), few_params, few_inputs)),
        st.just(Workflow(generator_pb2.WorkflowSpec(), "empty-workflow", True)),
        st.just(Workflow(generator_pb2.WorkflowSpec(template=""), "empty-template", True)),
    )


def _is_object(text: str) -> bool:
    import json

    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and bool(value)


# ---------------------------------------------------------------- generator


def generator_cases() -> st.SearchStrategy[Case]:
    def build(
        request_id: str,
        workflow: Workflow,
        timeout: duration_pb2.Duration | None,
        place_wait: duration_pb2.Duration | None,
    ) -> Case:
        request = generator_pb2.GenerateRequest(request_id=request_id, workflow=workflow.spec)
        if timeout is not None:
            request.timeout.CopyFrom(timeout)
        if place_wait is not None:
            request.place_wait.CopyFrom(place_wait)
        refuse = workflow.must_refuse or negative(timeout) or negative(place_wait)
        return Case("generator", "Generate", workflow.kind, request, refuse)

    generate = st.builds(
        build, st.one_of(st.just("fuzz"), hostile_text(256 * KiB)), workflows(), durations(), durations()
    )
    others = st.sampled_from(
        (
            Case("generator", "ListWorkflows", "empty", generator_pb2.ListWorkflowsRequest()),
            Case("generator", "GetBackendStatus", "empty", generator_pb2.GetBackendStatusRequest()),
        )
    )
    return st.one_of(generate, generate, generate, generate, generate, generate, generate, generate, others)


# ---------------------------------------------------------------- gateway


def gateway_cases() -> st.SearchStrategy[Case]:
    def output(
        workflow: Workflow, timeout: duration_pb2.Duration | None
    ) -> tuple[gateway_pb2.OutputSpec, bool, str]:
        spec = gateway_pb2.OutputSpec(workflow=workflow.spec)
        if timeout is not None:
            spec.timeout.CopyFrom(timeout)
        return (
            spec,
            (workflow.must_refuse and not workflow.kind.startswith("raw-")) or negative(timeout),
            workflow.kind,
        )

    def build(
        run_id: str, context: storage_pb2.RunContext, outputs: list[Any], concurrency: int, repeat: int
    ) -> Case:
        specs = [spec for spec, _, _ in outputs] * repeat
        request = gateway_pb2.GatewayGenerateRequest(
            run_id=run_id, context=context, outputs=specs, concurrency=concurrency
        )
        refuse = (
            (bool(run_id) and not valid_run_id(run_id))
            or not specs
            or len(specs) > MAX_OUTPUTS
            or any(refused for _, refused, _ in outputs)
        )
        kind = "+".join(sorted({k for _, _, k in outputs})) or "no-outputs"
        return Case("gateway", "Generate", kind, request, refuse, {"outputs": len(specs)})

    short = st.one_of(st.none(), st.none(), durations())
    outputs = st.lists(st.builds(output, workflows(), short), max_size=3)
    generate = st.builds(
        build,
        st.one_of(st.just(""), st.just(""), identifier_like()),
        st.one_of(st.just(storage_pb2.RunContext()), run_contexts()),
        outputs,
        hostile_uint32(),
        st.sampled_from((1, 1, 1, 1, 22, 70)),
    )
    reads = st.one_of(
        st.builds(
            lambda r: Case(
                "gateway", "GetRun", "read", storage_pb2.GetRunRequest(run_id=r), not valid_run_id(r)
            ),
            run_ids(),
        ),
        st.builds(
            lambda m: Case("gateway", "GetMedia", "read", storage_pb2.GetMediaRequest(media_id=m), not m),
            media_ids(),
        ),
        st.just(Case("gateway", "ListWorkflows", "empty", generator_pb2.ListWorkflowsRequest())),
    )
    return st.one_of(generate, generate, generate, generate, reads)


# ---------------------------------------------------------------- storage


def run_ids() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(ANCHOR_RUNS), st.just(""), identifier_like())


def media_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(
            lambda r, o, i: f"{r}.{o}.{i}", st.sampled_from(ANCHOR_RUNS), st.integers(0, 3), st.integers(0, 3)
        ),
        st.builds(
            lambda r, o, i: f"{r}.{o}.{i}",
            run_ids(),
            st.one_of(
                st.integers(-5, 2**70).map(str),
                st.sampled_from(("٣", "²", "", "0x1", " 1", "1_0", "+1", "01")),
            ),
            st.one_of(st.integers(0, 2**33).map(str), st.sampled_from(("٣", "²", "", "1.0"))),
        ),
        hostile_text(64 * KiB),
    )


def headers(run_id: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[storage_pb2.MediaHeader]:
    return st.builds(
        storage_pb2.MediaHeader,
        run_id=run_id if run_id is not None else run_ids(),
        output_index=hostile_uint32(),
        item_index=hostile_uint32(),
        media_type=st.sampled_from((0, 1, 2, 3, 4, 5, 99, 2**31 - 1, -1)),
        config_name=st.one_of(st.just("solid_image"), hostile_text(4 * KiB)),
        backend=st.one_of(st.just(""), hostile_text(4 * KiB)),
        format_hint=st.one_of(st.sampled_from(("", "png", "PNG", "webp", "x" * 17)), hostile_text(1 * KiB)),
        idempotency_key=st.one_of(st.just(""), hostile_text(4 * KiB)),
        original_filename=st.one_of(st.just("a.png"), hostile_text(4 * KiB)),
        metadata=st.dictionaries(hostile_text(1 * KiB), hostile_text(4 * KiB), max_size=4),
    )


PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8ff3f0005fe02fea7356b9a0000000049454e44ae426082"
)


def _put(
    header: storage_pb2.MediaHeader | None, chunks: list[bytes], trailer: storage_pb2.MediaTrailer | None
) -> tuple[storage_pb2.PutMediaRequest, ...]:
    parts: list[storage_pb2.PutMediaRequest] = []
    if header is not None:
        parts.append(storage_pb2.PutMediaRequest(header=header))
    parts += [storage_pb2.PutMediaRequest(chunk=c) for c in chunks]
    if trailer is not None:
        parts.append(storage_pb2.PutMediaRequest(trailer=trailer))
    return tuple(parts)


def _trailer_of(data: bytes) -> storage_pb2.MediaTrailer:
    return storage_pb2.MediaTrailer(size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def _split(data: bytes, pieces: int) -> list[bytes]:
    if not data:
        return []
    step = max(1, len(data) // max(pieces, 1))
    return [data[i : i + step] for i in range(0, len(data), step)]


def put_media_cases() -> st.SearchStrategy[Case]:
    """Well-formed uploads (to anchor runs and to hostile ids) and every kind of stream misuse."""
    payload = st.one_of(st.just(PNG_1x1), hostile_bytes(256 * KiB))
    pieces = st.integers(1, 8)

    def case(kind: str, parts: tuple[storage_pb2.PutMediaRequest, ...], refuse: bool) -> Case:
        return Case("storage", "PutMedia", kind, parts, refuse)

    def well_formed(header: storage_pb2.MediaHeader, data: bytes, n: int) -> Case:
        return case(
            "well-formed",
            _put(header, _split(data, n), _trailer_of(data)),
            not valid_stored_run_id(header.run_id),
        )

    def misuse(kind: str, header: storage_pb2.MediaHeader, data: bytes, n: int, junk: bytes) -> Case:
        chunks, trailer = _split(data, n), _trailer_of(data)
        head = storage_pb2.PutMediaRequest(header=header)
        tail = storage_pb2.PutMediaRequest(trailer=trailer)
        body = [storage_pb2.PutMediaRequest(chunk=c) for c in chunks]
        streams: dict[str, tuple[storage_pb2.PutMediaRequest, ...]] = {
            "empty-stream": (),
            "no-header": (*body, tail),
            "chunk-before-header": (storage_pb2.PutMediaRequest(chunk=junk or b"x"), head, *body, tail),
            "trailer-first": (tail, head, *body),
            "two-headers": (head, *body[:1], head, *body[1:], tail),
            "no-trailer": (head, *body),
            "two-trailers": (head, *body, tail, tail),
            "chunk-after-trailer": (head, *body, tail, storage_pb2.PutMediaRequest(chunk=junk or b"x")),
            "empty-part": (head, storage_pb2.PutMediaRequest(), *body, tail),
            "size-mismatch": (
                head,
                *body,
                storage_pb2.PutMediaRequest(
                    trailer=storage_pb2.MediaTrailer(size_bytes=trailer.size_bytes + 1, sha256=trailer.sha256)
                ),
            ),
            "sha-mismatch": (
                head,
                *body,
                storage_pb2.PutMediaRequest(
                    trailer=storage_pb2.MediaTrailer(
                        size_bytes=trailer.size_bytes, sha256=hashlib.sha256(data + b"!").hexdigest()
                    )
                ),
            ),
            "sha-malformed": (
                head,
                *body,
                storage_pb2.PutMediaRequest(
                    trailer=storage_pb2.MediaTrailer(
                        size_bytes=trailer.size_bytes, sha256=junk.hex().upper()[:70] or "zz"
                    )
                ),
            ),
            "size-huge": (
                head,
                *body,
                storage_pb2.PutMediaRequest(
                    trailer=storage_pb2.MediaTrailer(size_bytes=2**64 - 1, sha256=trailer.sha256)
                ),
            ),
        }
        return case(kind, streams[kind], True)

    def oversize(header: storage_pb2.MediaHeader, extra: int, chunk: int) -> Case:
        size = MAX_MEDIA_BYTES + extra
        block = b"\x89PNG\r\n\x1a\n" + b"\x00" * (chunk - 8)
        data = (block * (size // chunk + 1))[:size]
        return case("oversize", _put(header, _split(data, size // chunk), _trailer_of(data)), True)

    misuse_kinds = st.sampled_from(
        (
            "empty-stream",
            "no-header",
            "chunk-before-header",
            "trailer-first",
            "two-headers",
            "no-trailer",
            "two-trailers",
            "chunk-after-trailer",
            "empty-part",
            "size-mismatch",
            "sha-mismatch",
            "sha-malformed",
            "size-huge",
        )
    )
    anchored = headers(st.sampled_from(ANCHOR_RUNS))
    return st.one_of(
        st.builds(well_formed, st.one_of(anchored, anchored, headers()), payload, pieces),
        st.builds(misuse, misuse_kinds, anchored, payload, pieces, st.binary(max_size=64)),
        st.builds(
            oversize, anchored, st.sampled_from((1, 1000, 64 * KiB)), st.sampled_from((64 * KiB, 256 * KiB))
        ),
    )


def storage_cases() -> st.SearchStrategy[Case]:
    def create(run_id: str, context: storage_pb2.RunContext) -> Case:
        refuse = bool(run_id) and not valid_stored_run_id(run_id)
        return Case(
            "storage",
            "CreateRun",
            "create",
            storage_pb2.CreateRunRequest(run_id=run_id, context=context),
            refuse,
        )

    def presign(media_id: str, ttl: duration_pb2.Duration | None) -> Case:
        request = storage_pb2.PresignMediaRequest(media_id=media_id)
        if ttl is not None:
            request.ttl.CopyFrom(ttl)
        return Case("storage", "PresignMedia", "presign", request, negative(ttl))

    doomed = st.one_of(st.integers(0, 20).map(lambda i: f"fuzz-doomed-{i}"), identifier_like())
    return st.one_of(
        st.builds(
            create,
            st.one_of(st.just(""), doomed),
            st.one_of(st.just(storage_pb2.RunContext()), run_contexts()),
        ),
        st.builds(
            lambda r: Case(
                "storage", "GetRun", "read", storage_pb2.GetRunRequest(run_id=r), not valid_stored_run_id(r)
            ),
            run_ids(),
        ),
        st.builds(
            lambda r: Case(
                "storage",
                "ListRunMedia",
                "read",
                storage_pb2.ListRunMediaRequest(run_id=r),
                not valid_stored_run_id(r),
            ),
            run_ids(),
        ),
        st.builds(
            lambda m: Case("storage", "GetMedia", "read", storage_pb2.GetMediaRequest(media_id=m), not m),
            media_ids(),
        ),
        st.builds(presign, media_ids(), durations()),
        st.builds(
            lambda r: Case(
                "storage",
                "DeleteRun",
                "delete",
                storage_pb2.DeleteRunRequest(run_id=r),
                not valid_stored_run_id(r),
            ),
            doomed,
        ),
        put_media_cases(),
        put_media_cases(),
        put_media_cases(),
    )


SERVICES = {"storage": storage_cases, "generator": generator_cases, "gateway": gateway_cases}
