"""Webhook fields of a request (native `webhook_url`/`webhook_events`, seed 002
`webhookUrl`/`webhookEvents`) checked into a `WebhookTarget`; delivery is not done here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import httpx
from pydantic import WithJsonSchema

from api.problem import APIError
from reelay.errors import ErrorCode
from reelay.jobs import WebhookTarget
from reelay.settings import Settings
from reelay.ssrf import check_webhook_host

EVENTS = ("progress", "completed", "failed", "cancelled")
# Without a list of events a webhook gets the job's end, whichever it is.
DEFAULT_EVENTS = ("completed", "failed", "cancelled")

# The fields' types, documented as `webhook_target` checks them.
WebhookUrl = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[hH][tT][tT][pP][sS]?://",
            "description": "https URL told of the job's events (http only for allowed hosts)",
        }
    ),
]
WebhookEvents = Annotated[
    list[str],
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": list(EVENTS)},
            "description": "default: the job's end (completed, failed, cancelled)",
        }
    ),
]


async def webhook_target(
    url: str | None,
    events: Sequence[str] | None,
    settings: Settings,
    *,
    url_field: str,
    events_field: str,
) -> WebhookTarget | None:
    if url is None:
        if events:
            raise _invalid(f"{events_field} needs {url_field}", events_field)
        return None
    unknown = [event for event in events or () if event not in EVENTS]
    if unknown:
        raise _invalid(
            f"{events_field} must be among {', '.join(EVENTS)} (got {', '.join(unknown)})",
            events_field,
        )
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL as exc:
        raise _invalid(f"{url_field} is not a valid URL: {exc}", url_field) from exc
    if scheme not in ("http", "https"):
        raise _invalid(f"{url_field} must be an http(s) URL", url_field)
    try:
        await check_webhook_host(url, settings, field=url_field)
    except ValueError as exc:
        raise _invalid(str(exc), url_field) from exc
    return WebhookTarget(url=url, events=list(dict.fromkeys(events or DEFAULT_EVENTS)))


def _invalid(message: str, field: str) -> APIError:
    return APIError(ErrorCode.INVALID_REQUEST, message, param=field)
