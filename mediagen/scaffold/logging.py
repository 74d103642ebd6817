"""Structured logs that carry the ids of the work they describe.

Request, run and prompt ids live in context variables, so every log line
written while a call is being served carries them without being passed down
through every function; with tracing on, so does the trace id of the current
span. Secrets never reach the formatter: settings hold them as ``SecretStr``
and call metadata is never logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from mediagen.scaffold import tracing

# Read-only mapping: every change sets a new dict, so the shared default is never mutated.
_ids: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "mediagen_log_ids", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**ids: str) -> Iterator[None]:
    """Attach ids (request_id, run_id, prompt_id ...) to every log line in this block."""
    merged = {**_ids.get(), **{k: v for k, v in ids.items() if v}}
    token = _ids.set(merged)
    try:
        yield
    finally:
        _ids.reset(token)


def bind_log_ids(**ids: str) -> None:
    """Add ids to the current context for the rest of the current task."""
    _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v}})


def current_log_ids() -> dict[str, str]:
    return dict(_ids.get())


def _ids_with_trace() -> Mapping[str, str]:
    """The bound ids, and the current trace id when tracing is on (to find the run's trace)."""
    ids = _ids.get()
    trace_id = tracing.current_trace_id()
    return {**ids, "trace_id": trace_id} if trace_id else ids


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **_ids_with_trace(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in _ids_with_trace().items())
        extra = getattr(record, "fields", None)
        fields = " ".join(f"{k}={v}" for k, v in extra.items()) if isinstance(extra, dict) else ""
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        line = " ".join(part for part in (line, ids, fields) if part)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send logs to stderr in the chosen format; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "websockets", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
