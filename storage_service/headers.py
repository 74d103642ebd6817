"""Checks on a PutMedia header, and what it says when the bytes say nothing.

Every text field has a bound so a record always fits S3's metadata limit, and
each refusal names the offending field (``header.run_id``...).
"""

from __future__ import annotations

import mimetypes
import re

from mediagen.scaffold.errors import ServiceError, invalid_argument
from mediagen.v1 import common_pb2, storage_pb2
from storage_service.layout import Slot, check_run_id
from storage_service.probe import Probe
from storage_service.records import check_metadata_fits

TEXT_LIMIT = 256
FORMAT_HINT = re.compile(r"[a-z0-9]{1,16}")


def check_header(header: storage_pb2.MediaHeader) -> Slot:
    check_run_id(header.run_id, "header.run_id")
    for name in ("config_name", "backend", "original_filename", "idempotency_key"):
        if len(getattr(header, name)) > TEXT_LIMIT:
            raise invalid_argument(f"header.{name}", f"longer than {TEXT_LIMIT} characters")
    if header.format_hint and not FORMAT_HINT.fullmatch(header.format_hint.lower()):
        raise invalid_argument("header.format_hint", "must be 1-16 letters or digits, e.g. 'png'")
    if header.media_type not in common_pb2.MediaType.values():
        raise invalid_argument("header.media_type", "is not a MediaType value")
    check_metadata_fits(header)
    slot = Slot(header.run_id, header.output_index, header.item_index)
    _check_key_names_no_other_slot(slot, header.idempotency_key)
    return slot


def _check_key_names_no_other_slot(slot: Slot, key: str) -> None:
    """A key that is the media id of another item of this run would name two items.

    A slot's own media id as its key needs no marker (:meth:`Slot.needs_marker`); that
    holds only if no other slot of the run can claim the same key.
    """
    if not key.startswith(f"{slot.run_id}.") or key == slot.media_id:
        return
    try:
        named = Slot.parse(key)
    except ServiceError:
        return  # not a media id: an ordinary key
    raise invalid_argument(
        "header.idempotency_key",
        f"is the media id of another item of this run ({named.media_id}); use this item's own, "
        f"{slot.media_id}, or a key that is not a media id",
    )


def effective_probe(sniffed: Probe, header: storage_pb2.MediaHeader) -> Probe:
    """The detected format, or the producer's hint when detection found nothing."""
    if sniffed.known or not header.format_hint:
        return sniffed
    hint = header.format_hint.lower()
    mime = mimetypes.guess_type(f"x.{hint}")[0] or sniffed.mime_type
    kind = header.media_type or common_pb2.MEDIA_TYPE_OTHER
    return Probe(hint, mime, kind)
