"""Turns provider exceptions into Temporal retry decisions, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from providers.errors import PermanentProviderError, ProviderError, RetryableProviderError

RETRYABLE_TYPE = "ProviderRetryable"
UNAVAILABLE_TYPE = "ProviderUnavailable"
# Object storage failed (retried until the job's deadline). Its message is client-facing, so
# it never names the S3 host, bucket or key (those go to the worker's log).
STORAGE_TYPE = "storage_unavailable"
#: A local submit found every one of its provider's turns in this worker taken: the job's
#: workflow submits through the provider's queue instead (`workflows.clip`), rather than
#: keep its workflow task, and the worker's slot for it, open while it waits.
TURNS_TAKEN_TYPE = "SubmitTurnsTaken"


@contextmanager
def provider_errors() -> Iterator[None]:
    try:
        yield
    except PermanentProviderError as exc:
        raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from exc
    except RetryableProviderError as exc:
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
        raise ApplicationError(exc.message, type=RETRYABLE_TYPE, next_retry_delay=delay) from exc
    except ProviderError as exc:
        raise ApplicationError(exc.message, type=UNAVAILABLE_TYPE) from exc


def error_label(exc: BaseException) -> str:
    """An activity failure's label in metrics: its application error type, else its class."""
    return exc.type if isinstance(exc, ApplicationError) and exc.type else type(exc).__name__
