"""Typing ``--param name=value`` and run-file values by the template's spec.

The command line only has strings; the template says whether ``steps`` is an
int or ``cfg`` a float, so ``steps=20`` is sent as an int. A parameter the
catalogue does not know is sent with its most likely type and the gateway
answers with a precise INVALID_ARGUMENT, so messages come from one place.
"""

from __future__ import annotations

from mediagen.params import Scalar, from_value
from mediagen.v1 import generator_pb2

PType = generator_pb2.ParameterType
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class BadParameter(ValueError):
    """A value that cannot be read as its parameter's type."""


def split_assignment(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise BadParameter(f"{what} {text!r}: expected NAME=VALUE")
    return name.strip(), value


def typed_value(spec: generator_pb2.ParameterSpec | None, value: Scalar) -> generator_pb2.ParameterValue:
    """The value as the spec's type (or its likely type without a spec)."""
    kind = spec.type if spec else _guess(value)
    try:
        if kind == PType.PARAMETER_TYPE_INT:
            return generator_pb2.ParameterValue(int_value=_int(value))
        if kind == PType.PARAMETER_TYPE_FLOAT:
            return generator_pb2.ParameterValue(float_value=float(value))
        if kind == PType.PARAMETER_TYPE_BOOL:
            return generator_pb2.ParameterValue(bool_value=_bool(value))
    except ValueError:
        expected = PType.Name(kind).removeprefix("PARAMETER_TYPE_").lower()
        raise BadParameter(f"{value!r} is not a valid {expected}") from None
    return generator_pb2.ParameterValue(string_value=str(value))


def _int(value: Scalar) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def _bool(value: Scalar) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE | FALSE:
        return text in TRUE
    raise ValueError(value)


def _guess(value: Scalar) -> generator_pb2.ParameterType.ValueType:
    if isinstance(value, bool):
        return PType.PARAMETER_TYPE_BOOL
    for kind, parse in ((PType.PARAMETER_TYPE_INT, int), (PType.PARAMETER_TYPE_FLOAT, float)):
        try:
            parse(value)
        except ValueError:
            continue
        return kind
    return (
        PType.PARAMETER_TYPE_BOOL if str(value).lower() in {"true", "false"} else PType.PARAMETER_TYPE_STRING
    )


def describe_type(spec: generator_pb2.ParameterSpec) -> str:
    name = PType.Name(spec.type).removeprefix("PARAMETER_TYPE_").lower()
    if spec.choices:
        shown = " | ".join(spec.choices[:4]) + (
            f" | +{len(spec.choices) - 4} more" if len(spec.choices) > 4 else ""
        )
        return f"{name} ({shown})"
    return name


def describe_value(value: generator_pb2.ParameterValue) -> str:
    scalar = from_value(value)
    return "" if scalar is None else str(scalar)
