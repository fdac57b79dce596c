"""HTTP plumbing every adapter shares: status-code classification, Retry-After, one API
client per provider, and the wording rules that classify a provider's failure text."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from providers.base import FailureKind, Resume
from providers.errors import (
    ContentRefusedError,
    InvalidProviderRequestError,
    ProviderError,
    ProviderUnavailableError,
    RetryableProviderError,
)
from reelay.tracing import trace_http_client

# As both official SDK families retry (runwayml/lumaai's Stainless clients, replicate):
# these, and every status >= 500.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
MAX_REDIRECTS = 5
#: API requests one worker has open to one provider at once; the others wait their turn in
#: a FIFO (a semaphore's queue costs nothing per waiter, where a pool's queue is scanned).
API_CONNECTIONS = 32


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Parse `Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def detail_text(value: Any) -> str | None:
    """A readable message from the usual error shapes: a string, `{message}`, or a list of
    `{msg}` / `{message}` items (FastAPI-style validation details, as fal sends)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("message", "msg", "detail"):
            if isinstance(value.get(key), str):
                return str(value[key])
    if isinstance(value, list):
        parts = [text for item in value if (text := detail_text(item))]
        return "; ".join(parts) or None
    return None


def error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "failure"):
            if (text := detail_text(body.get(key))) is not None:
                return text[:500]
    return str(body)[:500]


def raise_for_status(response: httpx.Response, provider: str) -> None:
    """Map a non-2xx answer onto the provider error hierarchy."""
    if response.is_success:
        return
    detail = f"{provider} answered {response.status_code}: {error_detail(response)}"
    if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
        raise RetryableProviderError(
            detail, provider=provider, retry_after=retry_after_seconds(response)
        )
    if response.status_code in (401, 403):
        # A rejected key is an operator problem, not the job's: keep retrying until fixed.
        raise ProviderUnavailableError(detail, provider=provider)
    if classify_failure(detail) is FailureKind.CONTENT_REFUSED:
        # Refused at submit (not only as a failed task): never resubmitted, never failed over.
        raise ContentRefusedError(detail, provider=provider)
    raise InvalidProviderRequestError(detail, provider=provider)


def transport_error(exc: httpx.TransportError, provider: str) -> ProviderError:
    if isinstance(exc, httpx.ConnectError):
        return ProviderUnavailableError(f"{provider} unreachable: {exc}", provider=provider)
    return RetryableProviderError(f"{provider} transport error: {exc!r}", provider=provider)


_REFUSAL = re.compile(
    r"safety|moderat|content.?policy|nsfw|sensitive|flagged|prohibited|not allowed|"
    r"responsible ai|\brai\b|blocked",
    re.IGNORECASE,
)
_INVALID = re.compile(
    r"invalid|must be|not supported|unsupported|too long|too large|validation|"
    r"bad request|could not (?:load|download|fetch)",
    re.IGNORECASE,
)


def classify_failure(*texts: str | None) -> FailureKind:
    """Content refusal, invalid input or internal error, from a provider's free-text reason.

    Providers without failure codes (Luma, Replicate, parts of fal and Gemini) only say why
    in words; refusal words win because a refused prompt must never be resubmitted."""
    text = " ".join(t for t in texts if t)
    if _REFUSAL.search(text):
        return FailureKind.CONTENT_REFUSED
    if _INVALID.search(text):
        return FailureKind.INVALID_REQUEST
    return FailureKind.INTERNAL


_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")


def progress_from_logs(logs: str) -> float | None:
    """The last percentage in a log text (tqdm-style progress lines), as 0..1."""
    found = _PERCENT.findall(logs)
    if not found:
        return None
    return min(float(found[-1]), 100.0) / 100.0


class ProviderHttp:
    """One provider's API client: auth headers on API calls, every error mapped.

    Downloads go through a second client without the API headers (output URLs are
    usually pre-signed and must not receive our key); `download_headers` are added only
    to URLs on the API's own host, checked again after each redirect. `auth` signs the
    API calls (a bearer token that changes, where a fixed header will not do).

    The API calls (every poll of every job in flight) go over aiohttp's connection pool
    (`httpx_aiohttp`): httpcore's pool checks each of its connections on every request it
    starts and ends, which at 10,000 jobs in flight was most of a worker's CPU
    (`bench.provider_client` measures both). Downloads, one per job, keep httpx's own.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        download_headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.provider = provider
        limits = httpx.Limits(
            max_connections=API_CONNECTIONS, max_keepalive_connections=API_CONNECTIONS
        )
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            timeout=timeout,
            transport=transport or AiohttpTransport(limits=limits),
            auth=auth,
        )
        if transport is None:
            trace_http_client(self._client)
        self._turns = asyncio.Semaphore(API_CONNECTIONS)
        self._downloads = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, read=120.0), transport=transport
        )
        self._api_host = httpx.URL(base_url).host
        self._download_headers = dict(download_headers or {})

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._downloads.aclose()

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The raw answer (any status); transport errors mapped."""
        try:
            async with self._turns:
                return await self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.provider) from exc

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A 2xx answer, or the mapped error."""
        response = await self.send(method, url, **kwargs)
        raise_for_status(response, self.provider)
        return response

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RetryableProviderError(
                f"{self.provider} answered {response.status_code} without a JSON object",
                provider=self.provider,
            )
        return body

    @asynccontextmanager
    async def download(
        self, url: str, *, auth: httpx.Auth | None = None, resume: Resume | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Stream a GET of `url`; `auth` signs it on that URL's own host only. With `resume`,
        ask for the rest of a partial download (`Range`, and `If-Range` so a changed file
        comes back whole: a 200 instead of a 206)."""
        target = httpx.URL(url)
        auth_host = target.host
        try:
            for _ in range(MAX_REDIRECTS + 1):
                headers = dict(self._download_headers) if target.host == self._api_host else {}
                if resume is not None:
                    headers["Range"] = f"bytes={resume.offset}-"
                    if resume.validator:
                        headers["If-Range"] = resume.validator
                request = self._downloads.build_request("GET", target, headers=headers)
                signer = auth if target.host == auth_host else None
                response = await self._downloads.send(request, stream=True, auth=signer)
                if response.is_redirect and "location" in response.headers:
                    await response.aclose()
                    target = target.join(response.headers["location"])
                    continue
                try:
                    if not response.is_success:
                        await response.aread()
                    raise_for_status(response, self.provider)
                    yield response
                finally:
                    await response.aclose()
                return
        except httpx.TransportError as exc:
            raise transport_error(exc, self.provider) from exc
        raise RetryableProviderError(
            f"{self.provider} download redirected more than {MAX_REDIRECTS} times",
            provider=self.provider,
        )


class HttpAdapter:
    """What every adapter built on `ProviderHttp` shares: output downloads and shutdown."""

    _http: ProviderHttp

    async def aclose(self) -> None:
        await self._http.aclose()

    def download(
        self, url: str, *, resume: Resume | None = None
    ) -> AbstractAsyncContextManager[httpx.Response]:
        return self._http.download(url, resume=resume)
