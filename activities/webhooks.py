"""One webhook delivery attempt. The workflow decides about retries from what it returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from temporalio import activity

from reelay.settings import Settings
from reelay.ssrf import Resolver, UnsafeURLError, check_url, pinned_stream
from reelay.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    encode_body,
    signed_headers,
    tenant_secret,
)

PayloadRenderer = Callable[[dict[str, Any]], dict[str, Any]]


class WebhookActivities:
    """`render` turns an event's `data` into what the receiver gets (the worker renders the
    job's view in the job's dialect); by default `data` is sent as it is."""

    def __init__(
        self,
        settings: Settings,
        resolver: Resolver | None = None,
        render: PayloadRenderer | None = None,
    ) -> None:
        self._settings = settings
        self._resolver = resolver
        self._render: PayloadRenderer = render or (lambda data: data)

    @activity.defn
    async def deliver_webhook(self, delivery: WebhookDelivery) -> WebhookAttempt:
        """POST the signed event once: same `webhook-id` on every attempt, fresh signature.

        The URL is checked again (DNS may have changed since submit) and the request goes to
        the checked address. Any 2xx is delivered; anything else, a redirect included, is not.
        """
        try:
            checked = await check_url(
                delivery.url, self._settings, field="webhook_url", resolver=self._resolver
            )
        except UnsafeURLError as exc:
            return WebhookAttempt(error=str(exc), refused=True)
        # Rendered now (the job in its dialect): signed links are fresh and stay out of history.
        data = delivery.payload["data"]
        if delivery.subject == "video":
            data = self._render(data)
        body = encode_body({**delivery.payload, "data": data})
        secret = tenant_secret(self._settings, delivery.tenant_id)
        headers = signed_headers(secret, delivery.message_id, int(time.time()), body)
        try:
            async with pinned_stream(
                checked,
                "POST",
                time_limit=self._settings.webhook_timeout_seconds,
                headers=headers,
                content=body,
            ) as response:
                return WebhookAttempt(status_code=response.status_code)
        except TimeoutError:
            return WebhookAttempt(
                error=f"no response within {self._settings.webhook_timeout_seconds:g} s"
            )
        except httpx.HTTPError as exc:
            return WebhookAttempt(error=f"{type(exc).__name__}: {exc}".rstrip(": "))
