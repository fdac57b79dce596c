"""Outgoing webhooks per the Standard Webhooks spec: secrets, signatures, envelope, delivery.

Each tenant's secret (`whsec_<base64>`) is derived from `webhook_secret_seed` (else the
URL-signing key) and the tenant id, so nothing is stored and rotating the seed rotates all.
Secrets never cross the Temporal boundary: the delivery activity derives them at send time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from reelay.settings import Settings

SECRET_PREFIX = "whsec_"
WebhookEvent = Literal["progress", "completed", "failed", "cancelled"]
#: A batch's own events (`batch.<event>`; OpenAI's batch event names where it has them).
BatchEvent = Literal["in_progress", "paused", "completed", "failed", "cancelled"]
Subject = Literal["video", "batch"]


class WebhookDelivery(BaseModel):
    """The input of `WebhookDeliveryWorkflow`: one event for one endpoint. No secrets."""

    job_id: str = Field(description="the job's id (a batch's for subject `batch`)")
    tenant_id: str
    event: WebhookEvent | BatchEvent
    subject: Subject = Field(
        default="video",
        description="`video`: data is a job view, rendered in its dialect at send time; "
        "`batch`: data is the batch as the API shows it, sent as it is",
    )
    sequence: int | None = Field(default=None, description="numbers repeated progress events")
    url: str
    payload: dict[str, Any] = Field(description="the envelope, see `envelope()`")
    message_id: str = Field(description="`webhook-id`: the same on every retry")
    # Retry schedule: exponential backoff from `first_retry_seconds` up to
    # `max_retry_seconds` between attempts, for at most `give_up_after_seconds`.
    first_retry_seconds: float = 2.0
    max_retry_seconds: float = 3600.0
    give_up_after_seconds: float = 24 * 3600.0

    @property
    def workflow_id(self) -> str:
        suffix = f":{self.sequence}" if self.sequence is not None else ""
        return f"{self.job_id}:webhook:{self.event}{suffix}"


class WebhookAttempt(BaseModel):
    """What one delivery attempt got: a status code, or why there was none."""

    status_code: int | None = None
    error: str | None = None
    refused: bool = Field(default=False, description="the URL failed the SSRF check")

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDeliveryStatus(BaseModel):
    """The `status` query of a delivery: shown with the job."""

    message_id: str
    event: WebhookEvent | BatchEvent
    state: Literal["delivering", "delivered", "failed"] = "delivering"
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


def new_delivery(
    *,
    job_id: str,
    tenant_id: str,
    url: str,
    event: WebhookEvent | BatchEvent,
    data: dict[str, Any],
    at: datetime,
    sequence: int | None = None,
    subject: Subject = "video",
) -> WebhookDelivery:
    """A delivery of `event` with `data` (the job already rendered in its dialect)."""
    suffix = f"_{sequence}" if sequence is not None else ""
    return WebhookDelivery(
        job_id=job_id,
        tenant_id=tenant_id,
        event=event,
        subject=subject,
        sequence=sequence,
        url=url,
        payload=envelope(event, data, at, subject),
        message_id=f"msg_{job_id}_{event}{suffix}",
    )


def envelope(
    event: WebhookEvent | BatchEvent,
    data: dict[str, Any],
    at: datetime,
    subject: Subject = "video",
) -> dict[str, Any]:
    """`{"type": "<subject>.<event>", "timestamp": <ISO 8601, UTC>, "data": ...}`."""
    timestamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"type": f"{subject}.{event}", "timestamp": timestamp, "data": data}


def tenant_secret(settings: Settings, tenant_id: str) -> str:
    """The tenant's signing secret, as it is shown to the tenant: `whsec_<base64>`."""
    seed = settings.webhook_secret_seed.get_secret_value().encode() or settings.signing_key()
    key = hmac.new(seed, f"reelay-webhook-secret:{tenant_id}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `{msg_id}.{timestamp}.{body}`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Reelay-Webhooks/1.0",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
