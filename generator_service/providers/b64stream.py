"""Decode ``b64_json`` values while the JSON is still arriving, never holding an image whole.

:class:`B64JsonScanner` reads a JSON document in arbitrary pieces. Outside ``b64_json`` strings
it copies the text (bounded) so the other fields can be parsed at the end; inside one it decodes
base64 in multiples of four characters and hands the bytes on at once. Memory per image is one
network read plus three characters, not the image (and not the image twice, as ``json.loads`` and
``b64decode`` would hold it). :func:`sse_events` splits a server-sent event stream the same way:
``data`` lines are passed on in pieces as they arrive, so a ``completed`` event carrying a large
image streams too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

KEY = b"b64_json"
MAX_REST = 1024 * 1024
"""The JSON around the images (usage, settings, URLs, revised prompts) must fit in this much."""


class MalformedBody(ValueError):
    """The provider's answer is not the JSON (or event stream) it should be."""


@dataclass(frozen=True)
class ImageStart:
    index: int
    preceding: bytes
    """The document's text so far (images elided), e.g. to read an event's ``type``."""


@dataclass(frozen=True)
class ImageBytes:
    data: bytes


@dataclass(frozen=True)
class ImageEnd:
    index: int


Piece = ImageStart | ImageBytes | ImageEnd

_OUT, _STRING, _ESCAPE, _AFTER_KEY, _AFTER_COLON, _B64 = range(6)


class B64JsonScanner:
    def __init__(self) -> None:
        self._state = _OUT
        self._string = bytearray()
        self._rest = bytearray()
        self._carry = b""
        self._images = 0

    @property
    def images(self) -> int:
        return self._images

    def feed(self, data: bytes) -> list[Piece]:
        out: list[Piece] = []
        i, size = 0, len(data)
        while i < size:
            if self._state == _B64:
                end = data.find(b'"', i)
                stop = size if end < 0 else end
                self._decode(data[i:stop], out)
                if end < 0:
                    return out
                if self._carry:
                    raise MalformedBody("a b64_json value is not valid base64 (bad length)")
                self._keep(b'""')
                out.append(ImageEnd(self._images - 1))
                self._state, i = _OUT, end + 1
                continue
            byte = data[i]
            if self._state == _STRING:
                if byte == 0x5C:  # backslash
                    self._state = _ESCAPE
                elif byte == 0x22:  # end of string
                    self._state = _AFTER_KEY if bytes(self._string) == KEY else _OUT
                    self._string.clear()
                elif len(self._string) <= len(KEY):
                    self._string.append(byte)
                self._keep(data[i : i + 1])
            elif self._state == _ESCAPE:
                self._string.append(0)  # an escaped key is not b64_json
                self._state = _STRING
                self._keep(data[i : i + 1])
            elif self._state in (_AFTER_KEY, _AFTER_COLON) and byte in b" \t\r\n":
                pass
            elif self._state == _AFTER_KEY and byte == 0x3A:  # colon
                self._state = _AFTER_COLON
                self._keep(b":")
            elif self._state == _AFTER_COLON and byte == 0x22:
                out.append(ImageStart(self._images, bytes(self._rest)))
                self._images += 1
                self._state = _B64
            else:
                self._state = _STRING if byte == 0x22 else _OUT
                self._keep(data[i : i + 1])
            i += 1
        return out

    def document(self) -> Any:
        """The whole document with every ``b64_json`` value replaced by ``""``."""
        if self._state != _OUT:
            raise MalformedBody("the answer ended inside a JSON value")
        try:
            return json.loads(self._rest)
        except ValueError as exc:
            raise MalformedBody(f"the answer is not valid JSON: {exc}") from None

    def _keep(self, data: bytes) -> None:
        self._rest += data
        if len(self._rest) > MAX_REST:
            raise MalformedBody(f"more than {MAX_REST} bytes of JSON besides the images")

    def _decode(self, text: bytes, out: list[Piece]) -> None:
        if b"\\" in text:  # JSON may escape "/" as "\/"
            text = text.replace(b"\\", b"")
        text = self._carry + text
        usable = len(text) - len(text) % 4
        self._carry = text[usable:]
        if usable:
            try:
                out.append(ImageBytes(base64.b64decode(text[:usable], validate=True)))
            except binascii.Error as exc:
                raise MalformedBody(f"a b64_json value is not valid base64: {exc}") from None


@dataclass(frozen=True)
class EventName:
    name: str


@dataclass(frozen=True)
class EventData:
    data: bytes


@dataclass(frozen=True)
class EventEnd:
    pass


SsePiece = EventName | EventData | EventEnd
MAX_FIELD = 4096


async def sse_events(reads: AsyncIterable[bytes]) -> AsyncIterator[SsePiece]:
    """Server-sent events as pieces: a name, ``data`` bytes as they arrive, the end of each event.

    Lines of several ``data`` fields are joined with ``\\n`` as the format says; comments and other
    fields are skipped. Only ``data`` may be long; any other line is bounded.
    """
    field_name = bytearray()
    value = bytearray()
    in_field, in_data, after_colon, has_data = True, False, False, False
    async for chunk in reads:
        i, size = 0, len(chunk)
        while i < size:
            if in_data:
                end = chunk.find(b"\n", i)
                stop = size if end < 0 else end
                piece = chunk[i:stop]
                if after_colon and piece[:1] == b" ":
                    piece = piece[1:]
                after_colon = False
                piece = piece.rstrip(b"\r") if end >= 0 else piece
                if piece:
                    yield EventData(piece)
                if end < 0:
                    break
                in_data, in_field, i = False, True, end + 1
                field_name.clear()
                continue
            byte = chunk[i]
            i += 1
            if in_field:
                if byte == 0x0A:  # a line without a colon: the blank line ends the event
                    if not field_name.strip(b"\r"):
                        if has_data:
                            yield EventEnd()
                        has_data = False
                    field_name.clear()
                elif byte == 0x3A:
                    in_field = False
                    if bytes(field_name) == b"data":
                        if has_data:
                            yield EventData(b"\n")
                        in_data, after_colon, has_data = True, True, True
                    value.clear()
                else:
                    field_name.append(byte)
                    if len(field_name) > MAX_FIELD:
                        raise MalformedBody("an event-stream line is too long")
            else:
                if byte == 0x0A:
                    if bytes(field_name) == b"event":
                        yield EventName(bytes(value).strip().decode("utf-8", "replace"))
                    in_field = True
                    field_name.clear()
                else:
                    value.append(byte)
                    if len(value) > MAX_FIELD:
                        raise MalformedBody("an event-stream field is too long")
    if has_data:
        yield EventEnd()
