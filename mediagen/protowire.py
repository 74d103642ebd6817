"""The protobuf wire format's base-128 varint, for the few messages written or read by hand.

The generator writes chunk events straight onto the wire and the gateway re-frames chunks
for storage without parsing them into messages (each saves copies of every media byte); both
need the same encoding of lengths and field numbers, so it lives here once.
"""

from __future__ import annotations


def varint(value: int) -> bytes:
    """``value`` (not negative) as a protobuf varint: 7 bits a byte, low bits first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
