"""HTTP plumbing every adapter shares: status-code classification and Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from providers.errors import (
    InvalidProviderRequestError,
    ProviderError,
    ProviderUnavailableError,
    RetryableProviderError,
)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


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


def error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "failure"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return str(body)[:500]


def raise_for_status(response: httpx.Response, provider: str) -> None:
    """Map a non-2xx answer onto the provider error hierarchy."""
    if response.is_success:
        return
    detail = f"{provider} answered {response.status_code}: {error_detail(response)}"
    if response.status_code in RETRYABLE_STATUS:
        raise RetryableProviderError(
            detail, provider=provider, retry_after=retry_after_seconds(response)
        )
    if response.status_code in (401, 403):
        # A rejected key is an operator problem, not the job's: keep retrying until fixed.
        raise ProviderUnavailableError(detail, provider=provider)
    raise InvalidProviderRequestError(detail, provider=provider)


def transport_error(exc: httpx.TransportError, provider: str) -> ProviderError:
    if isinstance(exc, httpx.ConnectError):
        return ProviderUnavailableError(f"{provider} unreachable: {exc}", provider=provider)
    return RetryableProviderError(f"{provider} transport error: {exc!r}", provider=provider)
