"""Reelay's error codes: one vocabulary for the API, the workflows and the activities.

Every error a client or an operator sees carries one `ErrorCode`; `HTTP_STATUS` says which
HTTP status the API answers it with, and each dialect renders it in its own shape (see
`api.errors`). The exceptions that carry these codes, by layer:

* `api.problem.APIError(code, message, param=...)` - an error a client gets. Status from
  `HTTP_STATUS`; `param` names the request field at fault.
    - 4xx codes (`INVALID_REQUEST`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, `CONFLICT`,
      `IDEMPOTENCY_CONFLICT`, `PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`,
      `INSUFFICIENT_CREDITS`, `DAILY_QUOTA_EXCEEDED`, `QUEUE_FULL`, `RATE_LIMITED`, ...):
      permanent for that request; the client must change it (429s may be retried after
      `Retry-After`).
    - `SERVICE_UNAVAILABLE` (503, with `Retry-After`): a dependency (Temporal, S3) is down;
      retryable.
    - `INTERNAL_ERROR` (500): a bug; never expected.
* `reelay.accounts.Refusal(kind, ...)` - the account workflow refuses a submit; `kind` is
  one of `INSUFFICIENT_CREDITS`, `DAILY_QUOTA_EXCEEDED`, `QUEUE_FULL`,
  `IDEMPOTENCY_CONFLICT`, and reaches the API as a Temporal `ApplicationError` of that type.
* `providers.errors.ProviderError` - raised by adapters:
    - `RetryableProviderError` (timeouts, 429, 5xx; retryable, `PROVIDER_RETRYABLE` in
      Temporal) and its `ProviderUnavailableError` (`PROVIDER_UNAVAILABLE`: cannot be reached;
      retryable, then failover to the next route);
    - `PermanentProviderError` (`PROVIDER_ERROR`), `ContentRefusedError`
      (`CONTENT_POLICY_VIOLATION`), `InvalidProviderRequestError` (`INVALID_REQUEST`): the
      job fails with that code.
* Job failures (`JobView.error.code`): `PROVIDER_ERROR`, `PROVIDER_UNAVAILABLE`,
  `CONTENT_POLICY_VIOLATION`, `INVALID_REQUEST`, `DEADLINE_EXCEEDED`, `CANCELLED`.
* `WEBHOOK_UNDELIVERABLE`: a webhook delivery that gave up (permanent).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    RATE_LIMITED = "rate_limited"
    DAILY_QUOTA_EXCEEDED = "daily_quota_exceeded"
    QUEUE_FULL = "queue_full"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    # Job failures and provider outcomes.
    PROVIDER_ERROR = "provider_error"
    PROVIDER_RETRYABLE = "provider_retryable"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    CONTENT_POLICY_VIOLATION = "content_policy_violation"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    WEBHOOK_UNDELIVERABLE = "webhook_undeliverable"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.INSUFFICIENT_CREDITS: 402,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.DAILY_QUOTA_EXCEEDED: 429,
    ErrorCode.QUEUE_FULL: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.PROVIDER_ERROR: 502,
    ErrorCode.CONTENT_POLICY_VIOLATION: 400,
    ErrorCode.PROVIDER_RETRYABLE: 503,
    ErrorCode.PROVIDER_UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.CANCELLED: 409,
    ErrorCode.WEBHOOK_UNDELIVERABLE: 502,
}

# Codes a caller may retry as is (after `Retry-After` where given).
RETRYABLE: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.QUEUE_FULL,
        ErrorCode.DAILY_QUOTA_EXCEEDED,
        ErrorCode.SERVICE_UNAVAILABLE,
        ErrorCode.PROVIDER_RETRYABLE,
        ErrorCode.PROVIDER_UNAVAILABLE,
    }
)


def code_for_status(status: int) -> ErrorCode:
    """The generic code of an HTTP status (for errors Starlette raises itself)."""
    return next(
        (code for code, mapped in HTTP_STATUS.items() if mapped == status),
        ErrorCode.INTERNAL_ERROR if status >= 500 else ErrorCode.INVALID_REQUEST,
    )
