"""Where things live in the bucket, and the ids that point there.

Every key is derived from validated ids, so no caller input ever becomes a
path of its own: run ids are 1-80 characters of ``[A-Za-z0-9_-]`` and media
ids are ``<run_id>.<output>.<item>`` (run ids hold no dots), which lets
GetMedia go straight to a media's record without listing anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mediagen.rules import STORED_RUN_ID, STORED_RUN_ID_RULE
from mediagen.scaffold.errors import invalid_argument

UINT32_MAX = 2**32 - 1


def check_run_id(run_id: str, field: str = "run_id") -> str:
    if not STORED_RUN_ID.fullmatch(run_id):
        raise invalid_argument(field, f"{STORED_RUN_ID_RULE}, got {run_id[:100]!r}")
    return run_id


def run_prefix(run_id: str) -> str:
    return f"runs/{run_id}/"


def run_key(run_id: str) -> str:
    return f"runs/{run_id}/run.json"


def records_prefix(run_id: str) -> str:
    return f"runs/{run_id}/records/"


def idempotency_key(run_id: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"runs/{run_id}/idempotency/{digest}.json"


@dataclass(frozen=True, order=True)
class Slot:
    """One media position in a run: output ``output`` and item ``item`` of it."""

    run_id: str
    output: int
    item: int

    @property
    def media_id(self) -> str:
        return f"{self.run_id}.{self.output}.{self.item}"

    @property
    def stem(self) -> str:
        return f"o{self.output:03d}-i{self.item:03d}"

    @property
    def record_key(self) -> str:
        return f"{records_prefix(self.run_id)}{self.stem}.json"

    def needs_marker(self, key: str) -> bool:
        """Whether idempotency key ``key`` needs a marker of its own to have one owner.

        A key that is this slot's own media id (what the gateway sends) is held by the
        slot's record: whoever creates the record owns the key too, so no marker is
        written or read for it (a key naming another slot of the run is refused, see
        :func:`storage_service.headers.check_header`).
        """
        return bool(key) and key != self.media_id

    def media_key(self, extension: str) -> str:
        return f"runs/{self.run_id}/media/{self.stem}.{extension}"

    @classmethod
    def parse(cls, media_id: str, field: str = "media_id") -> Slot:
        parts = media_id.split(".")
        # isdigit() alone also says yes to "²", which int() refuses: ASCII digits only.
        if len(parts) != 3 or not all(
            p.isascii() and p.isdigit() and int(p) <= UINT32_MAX for p in parts[1:]
        ):
            raise invalid_argument(field, f"must be <run_id>.<output>.<item>, got {media_id[:100]!r}")
        return cls(check_run_id(parts[0], field), int(parts[1]), int(parts[2]))
