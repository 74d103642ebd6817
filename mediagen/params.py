"""Template parameter values as the API carries them, converted in one place.

``ParameterValue`` is a oneof of string, int, float and bool. The generator
reads callers' values and reports defaults, the CLI builds values from text,
the tests and benchmarks build requests: all of them convert through these
two functions, so a value means the same thing everywhere.
"""

from __future__ import annotations

from mediagen.v1 import generator_pb2

Scalar = str | int | float | bool


def to_value(value: Scalar) -> generator_pb2.ParameterValue:
    """The oneof member that matches the Python type (bool before int: a bool is an int)."""
    if isinstance(value, bool):
        return generator_pb2.ParameterValue(bool_value=value)
    if isinstance(value, int):
        return generator_pb2.ParameterValue(int_value=value)
    if isinstance(value, float):
        return generator_pb2.ParameterValue(float_value=value)
    return generator_pb2.ParameterValue(string_value=value)


def from_value(value: generator_pb2.ParameterValue) -> Scalar | None:
    """The Python value of whichever member is set; None when none is."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    scalar: Scalar = getattr(value, kind)
    return scalar
