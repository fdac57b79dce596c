"""The one exception hierarchy every adapter raises.

Activities turn these into Temporal retry decisions: `RetryableProviderError` retries with
backoff (honouring `retry_after`), everything under `PermanentProviderError` fails the job.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class. `provider` names the adapter that raised it."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider


class RetryableProviderError(ProviderError):
    """Timeouts, connection errors, 429 and 5xx: try again, after `retry_after` if given."""

    def __init__(
        self, message: str, *, provider: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class ProviderUnavailableError(RetryableProviderError):
    """The provider cannot be reached at all (connection refused, DNS, TLS)."""


class PermanentProviderError(ProviderError):
    """Retrying cannot help; the job fails with this message."""

    code = "provider_error"


class ContentRefusedError(PermanentProviderError):
    """The provider's content policy refused the prompt or image."""

    code = "content_policy_violation"


class InvalidProviderRequestError(PermanentProviderError):
    """The provider rejected the request as malformed or unsupported."""

    code = "invalid_request"
