"""The models the simulator serves, with input schemas checked the way the provider checks them.

``black-forest-labs/flux-schnell`` mirrors the public model's input names, bounds and defaults;
its output is a list of image URLs. A failed check is the provider's 422 with one
``invalid_fields`` entry per problem.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

ASPECTS = {
    "1:1": (1024, 1024), "16:9": (1344, 768), "21:9": (1536, 640), "3:2": (1216, 832),
    "2:3": (832, 1216), "4:5": (896, 1088), "5:4": (1088, 896), "3:4": (896, 1152),
    "4:3": (1152, 896), "9:16": (768, 1344), "9:21": (640, 1536),
}  # fmt: skip
FORMATS = {"webp": ("WEBP", "image/webp"), "jpg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}


@dataclass(frozen=True)
class Field:
    kind: type
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class Model:
    owner: str
    name: str
    version: str
    inputs: dict[str, Field]

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


FLUX_SCHNELL = Model(
    "black-forest-labs",
    "flux-schnell",
    hashlib.sha256(b"black-forest-labs/flux-schnell").hexdigest(),
    {
        "prompt": Field(str, required=True),
        "aspect_ratio": Field(str, "1:1", choices=tuple(ASPECTS)),
        "num_outputs": Field(int, 1, 1, 4),
        "num_inference_steps": Field(int, 4, 1, 4),
        "seed": Field(int),
        "output_format": Field(str, "webp", choices=tuple(FORMATS)),
        "output_quality": Field(int, 80, 0, 100),
        "megapixels": Field(str, "1", choices=("1", "0.25")),
        "go_fast": Field(bool, True),
        "disable_safety_checker": Field(bool, False),
    },
)
MODELS = {FLUX_SCHNELL.full_name: FLUX_SCHNELL}
VERSIONS = {model.version: model for model in MODELS.values()}


def validate(model: Model, given: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The input with defaults filled in, and the provider's ``invalid_fields`` (empty when valid)."""
    if not isinstance(given, dict):
        return {}, [{"type": "type", "field": "input", "description": "Invalid type. Expected: object"}]
    values: dict[str, Any] = {}
    problems: list[dict[str, str]] = []
    for name, spec in model.inputs.items():
        where = f"input.{name}"
        if name not in given:
            if spec.required:
                problems.append({"type": "required", "field": where, "description": f"{name} is required"})
            elif spec.default is not None:
                values[name] = spec.default
            continue
        value: Any = given[name]
        if spec.kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, spec.kind) or (spec.kind is int and isinstance(value, bool)):
            expected = {str: "string", int: "integer", bool: "boolean"}[spec.kind]
            problems.append(
                {
                    "type": "invalid_type",
                    "field": where,
                    "description": f"Invalid type. Expected: {expected}, given: {type(value).__name__}",
                }
            )
            continue
        amount: Any = value  # a number whenever the field has bounds
        if spec.minimum is not None and amount < spec.minimum:
            problems.append(
                {
                    "type": "greater_than_equal",
                    "field": where,
                    "description": f"Must be greater than or equal to {spec.minimum:g}",
                }
            )
        elif spec.maximum is not None and amount > spec.maximum:
            problems.append(
                {
                    "type": "less_than_equal",
                    "field": where,
                    "description": f"Must be less than or equal to {spec.maximum:g}",
                }
            )
        elif spec.choices and value not in spec.choices:
            listed = ", ".join(f'"{c}"' for c in spec.choices)
            problems.append(
                {
                    "type": "enum",
                    "field": where,
                    "description": f"{name} must be one of the following: {listed}",
                }
            )
        else:
            values[name] = value
    return values, problems


def render(values: dict[str, Any], index: int) -> tuple[bytes, str, str]:
    """One output image: its bytes, file extension and content type."""
    return _render(tuple(sorted(values.items())), index)


@functools.lru_cache(maxsize=32)  # deterministic, so a repeated request costs no CPU
def _render(items: tuple[tuple[str, Any], ...], index: int) -> tuple[bytes, str, str]:
    values = dict(items)
    width, height = ASPECTS[values["aspect_ratio"]]
    if values.get("megapixels") == "0.25":
        width, height = width // 2, height // 2
    digest = hashlib.sha256(f"{values['prompt']}\x00{values.get('seed')}\x00{index}".encode()).digest()
    ramp = Image.linear_gradient("L").resize((max(width // 8, 1), max(height // 8, 1)))
    picture = ImageOps.colorize(
        ramp, (digest[0] // 3, digest[1] // 3, digest[2] // 3), (digest[0], digest[1], digest[2])
    )
    picture = picture.resize((width, height), Image.Resampling.NEAREST)
    extension = values["output_format"]
    encoder, content_type = FORMATS[extension]
    buffer = io.BytesIO()
    options = {"quality": values["output_quality"]} if encoder != "PNG" else {}
    picture.save(buffer, encoder, **options)
    return buffer.getvalue(), extension, content_type
