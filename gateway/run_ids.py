"""Each caller's run ids are its own: what an id a caller names means, and what it is shown.

A caller may choose a run's id (``run_id`` of ``Generate`` and ``SubmitRun``). Were ids one
space for everyone, an id another caller already took could only be refused, and the refusal
(ALREADY_EXISTS) would tell the caller that the id exists. So the id a caller chooses is
stored (in storage, in the run's record and queue message, in media ids and object keys)
under its **stored id**, ``<tag>_<id>``, the tag being 8 hex digits of a hash of the caller's
name: two callers choosing the same id make two runs, and neither learns of the other.
Ids the gateway chooses are random (32 hex digits, no ``_``), and stay as they are.

Every id a caller names is looked for as the caller's stored id first, then as given (a run
id the gateway chose, or a caller-chosen id of a run from before ids were scoped); only a run
the caller may see counts (:func:`gateway.ownership.sees`), so an id that is someone else's
answers exactly as one that does not exist. Every id going back is shown as the caller named
it: its own tag is taken off. An admin sees the runs of others under their stored ids, and
names them so.

Media ids (``<run_id>.<output>.<item>``) follow their run's id.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from mediagen.scaffold.callers import Caller, current_caller
from mediagen.scaffold.errors import ServiceError

TAG_DIGITS = 8
M = TypeVar("M", bound=Message)
# Fields that hold a run id or media id in the gateway's messages (and those it passes on).
ID_FIELDS = frozenset({"run_id", "media_id"})
ID_LISTS = frozenset({"media_ids"})


@functools.cache
def may_hold_ids(descriptor: Descriptor) -> bool:
    """Whether a message of this type can hold an id field, itself or in a nested message."""
    seen: set[str] = set()

    def holds(message_type: Descriptor) -> bool:
        if message_type.full_name in seen:
            return False  # a recursive type: its other fields decide
        seen.add(message_type.full_name)
        for field in message_type.fields:
            nested = field.message_type
            if field.type == field.TYPE_MESSAGE and nested is not None and holds(nested):
                return True
            if field.type == field.TYPE_STRING and field.name in ID_FIELDS | ID_LISTS:
                return True
        return False

    return holds(descriptor)


def tag_of(caller: str) -> str:
    return hashlib.sha256(caller.encode()).hexdigest()[:TAG_DIGITS]


class RunIds:
    """The run-id space of one caller."""

    def __init__(self, caller: Caller | None = None) -> None:
        self.caller = caller or current_caller()
        self._prefix = f"{tag_of(self.caller.name)}_"

    def stored(self, run_id: str) -> str:
        """The stored id of a run id this caller chooses."""
        return self._prefix + run_id

    def candidates(self, run_id: str) -> Iterator[str]:
        """What an id (run or media) this caller names may be stored as, the caller's own first."""
        yield self._prefix + run_id
        yield run_id

    def shown(self, stored: str) -> str:
        """An id (run or media) as this caller sees it."""
        return stored.removeprefix(self._prefix)

    def show(self, message: M) -> M:
        """``message`` with every run and media id in it (nested messages too) as this caller sees it."""
        _rewrite(message, self.shown)
        return message

    def error(self, error: ServiceError) -> ServiceError:
        """``error`` with the caller's stored ids in its message and details as the caller named them."""
        error.message = error.message.replace(self._prefix, "")
        error.metadata = {key: value.replace(self._prefix, "") for key, value in error.metadata.items()}
        return error


def _rewrite(message: Message, shown: Callable[[str], str]) -> None:
    if not may_hold_ids(message.DESCRIPTOR):
        return  # most events (progress above all) cannot: not walked field by field
    for descriptor, value in message.ListFields():
        name = descriptor.name
        if descriptor.type == descriptor.TYPE_MESSAGE:
            # One message, a repeated field of them, or a map (whose values may be messages).
            if isinstance(value, Message):
                nested: Iterable[object] = (value,)
            elif isinstance(value, Mapping):
                nested = value.values()
            else:
                nested = value
            for item in nested:
                if isinstance(item, Message):
                    _rewrite(item, shown)
        elif name in ID_FIELDS and descriptor.type == descriptor.TYPE_STRING:
            setattr(message, name, shown(value))
        elif name in ID_LISTS and descriptor.type == descriptor.TYPE_STRING:
            value[:] = [shown(item) for item in value]
