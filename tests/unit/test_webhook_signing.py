"""Outgoing webhooks' Standard Webhooks signatures and names (pure, no servers).

Every signature is checked with the `standardwebhooks` library, as a client would.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from reelay.webhooks import encode_body, new_delivery, sign, signed_headers, tenant_secret
from tests.conftest import isolated_settings

TENANT = "tenant-a"
JOB_DATA = {"id": "job_vid_x", "status": "complete", "video_url": "https://cdn.example/v.mp4"}


def test_tenant_secrets_are_derived_per_tenant_and_rotate_with_the_seed() -> None:
    seeded = isolated_settings(webhook_secret_seed=SecretStr("seed-1"))
    secret = tenant_secret(seeded, TENANT)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert tenant_secret(seeded, TENANT) == secret
    assert tenant_secret(seeded, "tenant-b") != secret
    rotated = isolated_settings(webhook_secret_seed=SecretStr("seed-2"))
    assert tenant_secret(rotated, TENANT) != secret
    unseeded = isolated_settings(url_signing_secret=SecretStr("signing"))
    assert tenant_secret(unseeded, TENANT) != secret
    assert tenant_secret(unseeded, TENANT) == tenant_secret(
        isolated_settings(url_signing_secret=SecretStr("signing")), TENANT
    )


def test_signatures_verify_with_the_standard_webhooks_library() -> None:
    secret = tenant_secret(isolated_settings(webhook_secret_seed=SecretStr("s")), TENANT)
    at = datetime.now(UTC)
    delivery = new_delivery(
        job_id="job_vid_1", tenant_id=TENANT, url="https://x", event="failed", data=JOB_DATA, at=at
    )
    body = encode_body(delivery.payload)
    headers = signed_headers(secret, delivery.message_id, int(at.timestamp()), body)
    assert Webhook(secret).verify(body, headers) == {
        "type": "video.failed",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": JOB_DATA,
    }
    assert headers["webhook-signature"] == Webhook(secret).sign(
        delivery.message_id, at, body.decode()
    )
    assert sign(secret, "msg_1", 1_700_000_000, b"{}") != sign(
        secret, "msg_2", 1_700_000_000, b"{}"
    )
    other = tenant_secret(isolated_settings(webhook_secret_seed=SecretStr("s")), "tenant-b")
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_deliveries_are_named_by_job_event_and_sequence() -> None:
    at = datetime.now(UTC)
    progress = new_delivery(
        job_id="job_vid_9",
        tenant_id=TENANT,
        url="https://x",
        event="progress",
        data={},
        at=at,
        sequence=3,
    )
    assert progress.workflow_id == "job_vid_9:webhook:progress:3"
    assert progress.message_id == "msg_job_vid_9_progress_3"
    done = new_delivery(
        job_id="job_vid_9", tenant_id=TENANT, url="https://x", event="completed", data={}, at=at
    )
    assert (done.workflow_id, done.message_id) == (
        "job_vid_9:webhook:completed",
        "msg_job_vid_9_completed",
    )
