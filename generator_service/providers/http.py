"""HTTP to a provider: the bearer key, 429 retries inside the deadline, statuses for failures.

A 429 is retried after the provider's ``retry-after`` (``retry-after-ms`` when given) as long as
the retry would still start before the job's deadline with the time a successful attempt
usually takes on this backend left over; otherwise the job ends at once with RESOURCE_EXHAUSTED
carrying the provider's advice, so no request is ever sent after the deadline and a retry is
not sent just to end DEADLINE_EXCEEDED. 5xx and transport failures are UNAVAILABLE. Other
refusals are described by the kind (its error bodies differ). The key is sent only to the
provider's own base URL (output URLs on delivery hosts get no ``Authorization``) and never
appears in logs, errors or records.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx

from generator_service.providers.base import RemoteBackend, RunContext
from generator_service.providers.request_ids import RequestIds
from mediagen.scaffold import ServiceError, tracing

MAX_ERROR_BODY = 64 * 1024
DEFAULT_RETRY_AFTER = 1.0

Describe = Callable[[int, Any, RequestIds], ServiceError]
"""Turns a refusal (HTTP status, parsed body, ids) into the status the caller gets."""


class HttpBackend(RemoteBackend):
    """A remote backend spoken to over HTTP with a bearer key.

    Its one client is what ``probe`` asks (at ``probe_path``, a cheap authenticated request of
    the kind's API) and is closed with the backend, once its background work is done.
    """

    probe_path: str

    def __init__(
        self,
        name: str,
        url: str,
        *,
        key: str,
        capacity: int,
        http_timeout: float,
        read_timeout: float | None = None,
    ) -> None:
        super().__init__(name, url, capacity)
        self.http = ProviderHttp(url, key, http_timeout, name, read_timeout)

    async def probe(self) -> None:
        await self.http.probe(self.probe_path)

    async def close(self) -> None:
        await super().close()
        await self.http.close()


class ProviderHttp:
    def __init__(
        self, base_url: str, key: str, timeout: float, backend: str, read_timeout: float | None = None
    ) -> None:
        """``read_timeout`` None: a read may wait as long as the job's deadline allows (an image
        API answers only once the image is made, which can take minutes)."""
        self.base_url = base_url.rstrip("/")
        self.backend = backend
        self._auth = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0), read=read_timeout)
        self._client = httpx.AsyncClient(timeout=limits)
        tracing.instrument_httpx(self._client)

    def __repr__(self) -> str:  # never the key
        return f"ProviderHttp({self.base_url!r})"

    async def close(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def send(
        self,
        method: str,
        path: str,
        context: RunContext,
        describe: Describe,
        ids: RequestIds,
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """A 2xx response, its body not read yet; 429s retried while the deadline allows."""
        attempts = 0
        while True:
            attempts += 1
            context.attempt_started = asyncio.get_running_loop().time()
            response = await self._open(method, self.base_url + path, ids, self._auth, **dict(kwargs))
            try:
                if response.status_code < 400:
                    yield response
                    return
                body = await read_error_body(response)
            finally:
                await response.aclose()
            await self.wait_or_raise(
                response.status_code,
                response.headers,
                body,
                context=context,
                describe=describe,
                ids=ids,
                attempts=attempts,
                what=f"{method} {path}",
            )

    async def exchange(
        self, method: str, path: str, ids: RequestIds, **kwargs: Any
    ) -> tuple[int, httpx.Headers, Any]:
        """One authenticated request, its (small, JSON) answer read whole: status, headers, body."""
        response = await self._open(method, self.base_url + path, ids, self._auth, **kwargs)
        try:
            if response.status_code >= 400:
                return response.status_code, response.headers, await read_error_body(response)
            try:
                data = await response.aread()
            except httpx.HTTPError as exc:
                raise unavailable(
                    f"{method} {path}: the answer broke off ({type(exc).__name__})", ids
                ) from None
        finally:
            await response.aclose()
        try:
            return response.status_code, response.headers, json.loads(data)
        except ValueError:
            raise unavailable(
                f"{method} {path}: the provider's answer is not JSON", ids, "PROVIDER_BAD_ANSWER"
            ) from None

    @staticmethod
    async def wait_or_raise(
        status: int,
        headers: httpx.Headers,
        body: Any,
        *,
        context: RunContext,
        describe: Describe,
        ids: RequestIds,
        attempts: int,
        what: str,
    ) -> None:
        """After a refusal: sleep out a 429 that the deadline leaves room to retry, else raise."""
        if status != 429:
            raise refusal(status, body, describe, ids, what)
        wait = retry_after(headers)
        if asyncio.get_running_loop().time() + wait + context.reserve >= context.deadline:
            raise rate_limited(wait, body, attempts, ids)
        await asyncio.sleep(wait)

    async def probe(self, path: str) -> None:
        """An authenticated GET that must answer (a 429 counts: the provider is there, just busy)."""
        response = await self._open("GET", self.base_url + path, RequestIds(self.backend), self._auth)
        await response.aclose()
        if response.status_code >= 400 and response.status_code != 429:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")

    @asynccontextmanager
    async def get_unauthenticated(self, url: str, ids: RequestIds) -> AsyncIterator[httpx.Response]:
        """A GET of an output URL: another host, so no key goes with it. Asked for unencoded
        bytes, so ``Content-Length`` counts the bytes that are passed on."""
        response = await self._open("GET", url, ids, {}, headers={"Accept-Encoding": "identity"})
        try:
            yield response
        finally:
            await response.aclose()

    async def _open(
        self, method: str, url: str, ids: RequestIds, auth: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}), **auth}
        request = self._client.build_request(method, url, headers=headers, **kwargs)
        try:
            return await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise unavailable(
                f"{method} {request.url.path}: {type(exc).__name__} {exc}".strip(), ids
            ) from None


async def read_error_body(response: httpx.Response) -> Any:
    """The error body (bounded), parsed when it is JSON, else its text."""
    data = b""
    try:
        async for piece in response.aiter_bytes():
            data += piece
            if len(data) >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass
    try:
        return json.loads(data)
    except ValueError:
        return data[:500].decode("utf-8", "replace")


def retry_after(headers: httpx.Headers) -> float:
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    if parsed is not None:
        return max(parsed.timestamp() - time.time(), 0.0)
    return DEFAULT_RETRY_AFTER


def refusal(status: int, body: Any, describe: Describe, ids: RequestIds, what: str) -> ServiceError:
    if status >= 500:
        return unavailable(f"{what}: the provider answered HTTP {status}", ids, "PROVIDER_UNAVAILABLE")
    if status in (401, 403):
        return unavailable(
            f"{what}: the provider refused the configured key (HTTP {status})", ids, "PROVIDER_UNAUTHORIZED"
        )
    return describe(status, body, ids)


def rate_limited(wait: float, body: Any, attempts: int, ids: RequestIds) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the provider is rate limiting ({attempts} attempt(s)); it asks to retry after {wait:g}s, "
        "which is past this job's deadline",
        "PROVIDER_RATE_LIMITED",
        ids.metadata(
            retry_after_seconds=f"{wait:g}", attempts=str(attempts), provider_code=provider_code(body)
        ),
    )


def unavailable(why: str, ids: RequestIds, reason: str = "PROVIDER_UNAVAILABLE") -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, why[:500], reason, ids.metadata())


def provider_code(body: Any) -> str:
    """The provider's machine-readable code, from either error body shape."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or "")
        return str(body.get("title") or body.get("code") or "")
    return ""
