"""Hostile scalar values: the strings, numbers and bytes a careless or malicious caller sends.

Protobuf carries only valid UTF-8 in string fields, so lone surrogates are left out (the client
library refuses them before anything is sent); everything else a string may hold is in: NUL,
control and bidirectional characters, combining marks, astral planes, path tricks, and sizes up
to a few MiB. Huge values are built by repetition because Hypothesis draws at most a few KiB
of random data per example.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

KiB = 1024
MiB = 1024 * KiB

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT32_MAX = 2**32 - 1

PATHS = (
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "./",
    "a/../../b",
    "..\\..\\windows\\win.ini",
    "C:\\boot.ini",
    "%2e%2e%2f%2e%2e%2f",
    "\x00",
    "a\x00b",
    "~/.ssh/id_rsa",
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/",
    "runs/x/run.json",
    "con",
    "NUL.png",
)

ODD = (
    "",
    " ",
    "\t\n\r",
    "\u202eevil\u202c",  # right-to-left override
    "\ufeff",  # byte order mark
    "e\u0301" * 50,  # combining marks
    "\U0001f600\U0001f4a9",
    "\uffff\ufffe",
    "\u0000" * 16,
    "'; DROP TABLE runs; --",
    "{{template}}",
    "${jndi:ldap://x}",
    "%s%s%s%n",
    "٣",  # an Arabic-Indic digit: str.isdigit() says yes, int() is unsure
    "²",  # superscript two: isdigit() yes, int() no
    "NaN",
    "Infinity",
    "-0",
    "1e999",
)

CHARACTERS = st.characters(exclude_categories=["Cs"])


def huge_text(max_chars: int = 2 * MiB) -> st.SearchStrategy[str]:
    """A short seed repeated up to ``max_chars`` characters."""
    return st.builds(
        lambda seed, size: (seed * (size // len(seed) + 1))[:size],
        st.text(CHARACTERS, min_size=1, max_size=8),
        st.integers(min_value=min(257, max_chars), max_value=max_chars),
    )


def hostile_text(max_chars: int = 2 * MiB) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(PATHS + ODD),
        st.text(CHARACTERS, max_size=64),
        st.text(st.characters(codec="ascii"), max_size=80),
        huge_text(max_chars),
    )


def identifier_like() -> st.SearchStrategy[str]:
    """Mostly well-formed ids, sometimes just over a limit or with one bad character."""
    good = st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=64)
    return st.one_of(
        good,
        st.text(st.sampled_from("abc019_-"), min_size=65, max_size=200),
        st.builds(lambda a, bad, b: a + bad + b, good, st.sampled_from(list("./\\ \x00é٣:*?")), good),
        hostile_text(64 * KiB),
    )


FLOAT_EDGES = (
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    2.0**53 + 1,
    -(2.0**63),
    1e-300,
)


def hostile_float() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(allow_nan=True, allow_infinity=True))


INT_EDGES = (0, -1, 1, INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 2**31, -(2**31), 2**53, UINT32_MAX)


def hostile_int() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(INT_EDGES), st.integers(min_value=INT64_MIN, max_value=INT64_MAX))


def hostile_uint32() -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from((0, 1, 999, 1000, 2**31, UINT32_MAX)), st.integers(min_value=0, max_value=UINT32_MAX)
    )


def hostile_bytes(max_size: int = 4 * MiB) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(b""),
        st.binary(max_size=256),
        st.sampled_from(
            (b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"GIF89a", b"RIFF\x00\x00")
        ),
        st.builds(
            lambda seed, n: seed * n, st.binary(min_size=1, max_size=16), st.integers(1, max_size // 16)
        ),
    )
