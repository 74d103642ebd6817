"""The journal of prompts in flight in NATS JetStream, shared by every generator replica.

Two key-value buckets, their names prefixed by ``nats_prefix``:

* ``<P>_PROMPTS``: one key per prompt, ``<backend key>.<prompt id>`` (the backend key is a hash
  of its identity, since a URL is not a valid key), holding the :class:`Entry` and its owner,
  the replica that posted or adopted it. It is written before ``POST /prompt`` and deleted once
  nothing of the prompt is left on ComfyUI.
* ``<P>_LEASES``: one key per live replica, its instance id, renewed three times per
  ``lease_seconds``; the bucket's TTL is ``lease_seconds``, so the key of a replica that stopped
  renewing (killed, hung, cut off from NATS) disappears on the server's clock, not on a
  replica's. A replica that shuts down cleanly deletes its key at once.

Every replica follows the prompts bucket (a watch) and, at each renewal, checks the lease of
every other owner it sees there. A prompt whose owner's lease is gone is adopted by a replica
with that backend configured: a compare-and-set on the entry's revision makes it the new owner,
so one replica wins, and the entry is then an orphan of its own, cleaned up by ``recovery`` as
at a restart. A managed ComfyUI belongs to its replica and dies with it (a pod), so a dead
replica's entries for managed backends are simply deleted. A loopback URL (a ComfyUI beside the
generator, in its pod) means a different ComfyUI on every host: its entries are adopted only by
a replica on the same host (the generator container restarted in its pod). Entries for a URL no
live replica has configured wait for one that has it, at most ``PROMPT_TTL``.

Should a live replica lose NATS for longer than its lease, its prompts may be adopted and
cancelled: the jobs fail (UNAVAILABLE from the backend's side) rather than run unaccounted for.
If NATS cannot be reached when a prompt is recorded, the job goes on (recovery is a safety
net, as with a full disk for the file journal) and the error is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js import errors as js_errors
from nats.js.kv import KeyValue

from generator_service.journal import Entry, Journal, JournalUnavailable, attached
from mediagen.nats_client import ConnectionTrouble
from mediagen.tasks import cancel_and_wait

log = logging.getLogger("mediagen.generator.journal")
WRITE_TIMEOUT = 2.0
"""A journal write that takes longer is abandoned (logged): a job must not hang on NATS."""
PROMPT_TTL = 24 * 3600.0
"""An entry nobody could clean up for a day is dropped: its ComfyUI ran it or lost it long ago."""


def on_loopback(identity: str) -> bool:
    """A URL that names a different ComfyUI on every host."""
    host = urlsplit(identity).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def backend_key(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def prompt_key(identity: str, prompt_id: str) -> str:
    return f"{backend_key(identity)}.{prompt_id}"


@dataclasses.dataclass(frozen=True)
class Buckets:
    prefix: str

    @property
    def prompts(self) -> str:
        return f"{self.prefix}_PROMPTS"

    @property
    def leases(self) -> str:
        return f"{self.prefix}_LEASES"


class NatsJournal(Journal):
    def __init__(
        self,
        url: str,
        prefix: str,
        lease_seconds: float,
        replicas: int = 1,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.instance = uuid.uuid4().hex
        self._tls = tls
        self.trouble = ConnectionTrouble(log)
        """The last error of the connection to NATS (logged as it comes)."""
        self.buckets = Buckets(prefix)
        self._servers = [u.strip() for u in url.split(",") if u.strip()]
        self._lease_seconds = lease_seconds
        self._replicas = replicas
        self._host = socket.gethostname()
        self._backends: set[str] = set()
        self._own: dict[str, Entry] = {}
        """Prompts this replica owns (recorded or adopted), by prompt id."""
        self._live: set[str] = set()
        self._seen: dict[str, tuple[Entry, int]] = {}
        """Every replica's entries as the watch last showed them, by key, with their revision."""
        self._nc: Client | None = None
        self._prompts: KeyValue | None = None
        self._leases: KeyValue | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        try:
            self._nc = await nats.connect(
                servers=self._servers,
                name=f"mediagen-generator-{self.instance[:8]}",
                connect_timeout=2,
                reconnect_time_wait=1,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                pending_size=0,
                tls=self._tls,
                error_cb=self.trouble.note,
                reconnected_cb=self.trouble.connected,
            )
            js = self._nc.jetstream()
            self._prompts = await _bucket(js, self.buckets.prompts, PROMPT_TTL, self._replicas)
            self._leases = await _bucket(js, self.buckets.leases, self._lease_seconds, self._replicas)
            # The bucket's TTL is whoever created it first's: renew often enough for that one.
            ttl = (await self._leases.status()).ttl
            if ttl and ttl < self._lease_seconds:
                log.warning(
                    "lease bucket's TTL is %.1fs (set: %.1fs): renewing for that", ttl, self._lease_seconds
                )
                self._lease_seconds = ttl
            await self._renew()
            watcher = await self._prompts.watchall()
        except (OSError, nats.errors.Error) as exc:
            await self.close()
            raise JournalUnavailable(
                f"NATS journal at {','.join(self._servers)} is not usable: {exc}"
            ) from exc
        self._tasks = [asyncio.create_task(self._follow(watcher)), asyncio.create_task(self._keep_lease())]
        log.info("journal in NATS (%s), replica %s", self.buckets.prompts, self.instance)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._nc is None:
            return
        if self._leases is not None and self._nc.is_connected:
            # Gone now, not a lease later: whatever we leave is adopted at the next renewal.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._leases.delete(self.instance), WRITE_TIMEOUT)
        with contextlib.suppress(Exception):
            await self._nc.close()
        self._nc = None

    async def record(self, backend: str, prompt_id: str) -> None:
        entry = Entry(prompt_id, backend, self.instance, os.getpid(), self._host)
        self._own[prompt_id] = entry
        self._live.add(prompt_id)
        try:
            await asyncio.wait_for(
                self._kv().put(prompt_key(backend, prompt_id), _encode(entry)), WRITE_TIMEOUT
            )
        except (TimeoutError, nats.errors.Error) as exc:
            log.error("could not journal prompt %s in NATS: %s", prompt_id, exc or "timed out")

    def settle(self, prompt_id: str) -> None:
        self._live.discard(prompt_id)

    async def remove(self, prompt_id: str) -> None:
        self._live.discard(prompt_id)
        entry = self._own.pop(prompt_id, None)
        if entry is None:
            return
        try:
            await asyncio.wait_for(self._kv().delete(prompt_key(entry.backend, prompt_id)), WRITE_TIMEOUT)
        except (TimeoutError, nats.errors.Error) as exc:
            # Left in NATS with us as owner: adopted and found gone by another replica once we stop.
            log.error("could not remove prompt %s from the NATS journal: %s", prompt_id, exc or "timed out")

    def orphans(self, backend: str) -> list[Entry]:
        return [e for e in self._own.values() if e.backend == backend and e.prompt_id not in self._live]

    def use_backends(self, backends: set[str]) -> None:
        self._backends = set(backends)

    def _kv(self) -> KeyValue:
        if self._prompts is None:
            raise JournalUnavailable("the NATS journal is not started")
        return self._prompts

    async def _renew(self) -> None:
        assert self._leases is not None
        lease = {"host": self._host, "pid": os.getpid(), "backends": sorted(self._backends)}
        await asyncio.wait_for(self._leases.put(self.instance, json.dumps(lease).encode()), WRITE_TIMEOUT)

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await self._renew()
                await self._adopt()
            except (TimeoutError, nats.errors.Error) as exc:
                log.warning("NATS journal: lease not renewed: %s", exc or "timed out")

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for update in watcher:
            if update is None:  # the end of what existed when the watch began
                continue
            if update.operation in ("DEL", "PURGE"):
                self._seen.pop(update.key, None)
                continue
            entry = _decode(update.value)
            if entry is None:
                log.warning("ignoring unreadable journal entry %s", update.key)
                continue
            self._seen[update.key] = (entry, update.revision)
            if entry.owner != self.instance and entry.prompt_id in self._own:
                # Adopted by another replica while our lease had lapsed: it is theirs to clean up.
                self._own.pop(entry.prompt_id, None)

    async def _adopt(self) -> None:
        """Take over the prompts of replicas whose lease is gone, where we have their backend."""
        assert self._leases is not None
        alive: dict[str, bool] = {}
        adopted: set[str] = set()
        for key, (entry, revision) in list(self._seen.items()):
            if entry.owner == self.instance:
                continue
            if entry.owner not in alive:
                alive[entry.owner] = await self._holds_lease(entry.owner)
            if alive[entry.owner]:
                continue
            if not attached(entry.backend):
                with contextlib.suppress(js_errors.KeyWrongLastSequenceError, js_errors.APIError):
                    await self._kv().delete(key, last=revision)
                continue
            if entry.backend not in self._backends or (
                on_loopback(entry.backend) and entry.host != self._host
            ):
                continue
            mine = dataclasses.replace(entry, owner=self.instance, pid=os.getpid(), host=self._host)
            try:
                new_revision = await self._kv().update(key, _encode(mine), last=revision)
            except js_errors.KeyWrongLastSequenceError:
                continue  # another replica took it first, or it was just removed
            self._seen[key] = (mine, new_revision)
            self._own[entry.prompt_id] = mine
            adopted.add(entry.backend)
            log.warning(
                "adopted prompt %s on %s from lapsed replica %s", entry.prompt_id, entry.backend, entry.owner
            )
        for backend in adopted:
            if self.on_orphans is not None:
                self.on_orphans(backend)

    async def _holds_lease(self, instance: str) -> bool:
        assert self._leases is not None
        try:
            await self._leases.get(instance)
        except js_errors.KeyNotFoundError:
            return False
        return True


async def _bucket(js: JetStreamContext, name: str, ttl: float, replicas: int) -> KeyValue:
    config = api.KeyValueConfig(
        bucket=name, history=1, ttl=ttl, replicas=replicas, storage=api.StorageType.FILE
    )
    try:
        return await js.create_key_value(config)
    except js_errors.BadRequestError:
        # It exists with another configuration (another replica's lease period): use it as it is.
        return await js.key_value(name)


def _encode(entry: Entry) -> bytes:
    return json.dumps(dataclasses.asdict(entry)).encode()


def _decode(raw: bytes | None) -> Entry | None:
    try:
        data = json.loads(raw or b"")
        return Entry(
            str(data["prompt_id"]),
            str(data["backend"]),
            str(data["owner"]),
            int(data["pid"]),
            str(data["host"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
