"""Who is calling: named callers, from bearer tokens or client certificates.

A service knows its callers by name. With tokens configured, the bearer token
names the caller: ``<P>AUTH_TOKENS_FILE`` holds one ``name:token`` (or
``name:token:admin``) a line, and the single ``<P>AUTH_TOKEN`` is the caller
``default``, an admin (it is what every caller shared before callers had names).
Several tokens may be valid at once, so a rotation has an overlap: add the new
line, move the clients, remove the old line. The file is re-read when it changes.
Without tokens but with mutual TLS, the subject common name of the client
certificate names the caller; ``<P>ADMIN_CALLERS`` lists the admin names. With
neither, every caller is ``anonymous`` and an admin: there is nobody to tell apart.

The caller of the call being served is in a context variable (:func:`current_caller`),
in every log line (``caller``) and in the ``mediagen_rpc_calls_by_caller_total``
metric, whose label is the name only for configured callers (token names,
admin and named callers), else ``other``, so a stream of certificates with new
names cannot grow the metric without bound.
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediagen.scaffold.watched import WatchedFiles

log = logging.getLogger("mediagen.callers")

NAME = re.compile(r"^[A-Za-z0-9_.@ -]{1,64}$")
DEFAULT_CALLER = "default"
ANONYMOUS_CALLER = "anonymous"
OTHER_LABEL = "other"


@dataclass(frozen=True)
class Caller:
    name: str
    admin: bool = False


ANONYMOUS = Caller(ANONYMOUS_CALLER, admin=True)

_current: contextvars.ContextVar[Caller] = contextvars.ContextVar("mediagen_caller", default=ANONYMOUS)


def current_caller() -> Caller:
    """The caller of the call being served (``anonymous`` outside a call or without auth)."""
    return _current.get()


def set_caller(caller: Caller) -> contextvars.Token[Caller]:
    return _current.set(caller)


def reset_caller(token: contextvars.Token[Caller]) -> None:
    """Undo :func:`set_caller`; a stream closed from another context has nothing to undo."""
    with contextlib.suppress(ValueError):
        _current.reset(token)


def parse_names(text: str) -> frozenset[str]:
    """``"a, b"`` → ``{"a", "b"}``; every name checked."""
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if not NAME.match(name):
            raise ValueError(f"caller name {name!r}: 1-64 of letters, digits, space and _.@-")
    return names


def parse_tokens(text: str) -> dict[str, Caller]:
    """Token → caller from a tokens file; a bad line is an error that names its number only."""
    tokens: dict[str, Caller] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        admin = rest.endswith(":admin")
        token = rest.removesuffix(":admin") if admin else rest
        if not sep or not token or not NAME.match(name):
            raise ValueError(f"tokens file line {number}: expected name:token or name:token:admin")
        if token in tokens:
            raise ValueError(f"tokens file line {number}: a token already given to another caller")
        tokens[token] = Caller(name, admin)
    return tokens


def _bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            supplied = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = supplied.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class CallerRegistry:
    """Turns a call's token or certificate into a :class:`Caller`, or None when it has none valid."""

    def __init__(
        self,
        token: str | None = None,
        tokens_file: Path | None = None,
        *,
        mutual_tls: bool = False,
        admin_callers: frozenset[str] = frozenset(),
        named_callers: frozenset[str] = frozenset(),
    ) -> None:
        self._env_token = token
        self._file = tokens_file
        self._watched = WatchedFiles(tokens_file) if tokens_file else None
        self._mutual_tls = mutual_tls
        self._admins = admin_callers
        self._named = named_callers
        self._tokens = self._load()

    def _load(self) -> dict[str, Caller]:
        tokens = parse_tokens(self._file.read_text()) if self._file else {}
        if self._env_token:
            tokens[self._env_token] = Caller(DEFAULT_CALLER, admin=True)
        return {
            token: Caller(caller.name, caller.admin or caller.name in self._admins)
            for token, caller in tokens.items()
        }

    def _refresh(self) -> None:
        if self._watched is None or not self._watched.changed():
            return
        try:
            self._tokens = self._load()
        except (OSError, ValueError) as exc:  # keep the tokens that worked until the file is fixed
            log.warning("tokens file not re-read: %s", exc)
            return
        log.info("tokens file re-read: %d callers", len({c.name for c in self._tokens.values()}))

    @property
    def uses_tokens(self) -> bool:
        return bool(self._env_token or self._file)

    @property
    def names_by_certificate(self) -> bool:
        """The client certificate names the caller (mutual TLS without tokens)."""
        return self._mutual_tls and not self.uses_tokens

    def identify(
        self, metadata: Sequence[tuple[str, str | bytes]] | None, common_names: Sequence[bytes] = ()
    ) -> Caller | None:
        """The caller of a call with this metadata and peer certificate names; None if refused."""
        if self.uses_tokens:
            self._refresh()
            supplied = _bearer(metadata)
            if supplied is None:
                return None
            found = None
            for token, caller in self._tokens.items():  # every token compared: the time says nothing
                if hmac.compare_digest(supplied.encode(), token.encode()):
                    found = caller
            return found
        if self._mutual_tls:
            if not common_names:
                return None
            name = common_names[0].decode(errors="replace")
            return Caller(name, name in self._admins)
        return ANONYMOUS

    def label(self, caller: Caller) -> str:
        """The caller's metric label: its name when configured, else ``other``."""
        known = caller.name in self._named or caller.name in self._admins or caller is ANONYMOUS
        if known or any(c.name == caller.name for c in self._tokens.values()):
            return caller.name
        return OTHER_LABEL
