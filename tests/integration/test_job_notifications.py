"""A job's own webhooks and its provider's callbacks, end to end through API and worker."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from reelay.callbacks import callback_token
from reelay.settings import Settings
from tests.conftest import DEV_API_KEY
from tests.support import MakeStack, Receiver, Reply, unique_prompt

AUTH = {"Authorization": f"Bearer {DEV_API_KEY}"}


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack) -> Settings:
    # Hour-long poll intervals: only a provider callback can finish a job in time.
    return make_stack(
        webhook_allow_hosts=["127.0.0.1"], poll_min_seconds=3600.0, poll_max_seconds=3600.0
    ).settings


def wait_for(check: Any, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


def test_a_signed_completed_webhook_is_retried_with_the_same_id(stack: Settings) -> None:
    with (
        httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as api,
        Receiver([Reply(status=500)]) as receiver,
    ):
        secret = api.get("/v1/account").json()["webhook_secret"]
        job = api.post(
            "/v1/video/generations",
            json={
                "prompt": unique_prompt("[emu gen=1] hooks"),
                "model": "luma-dream-machine",  # Luma calls back at once
                "duration_seconds": 5,
                "webhook_url": receiver.url(),
                "webhook_events": ["completed"],
            },
        ).json()
        wait_for(lambda: len(receiver.requests) >= 2)
        first, second = receiver.requests[:2]
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        verified = Webhook(secret).verify(second.body, second.headers)
        assert verified["type"] == "video.completed"
        assert verified["data"]["id"] == job["id"]
        assert verified["data"]["status"] == "complete"
        assert verified["data"]["video_url"].startswith(stack.public_url)
        status = wait_for(
            lambda: (
                (body := api.get(f"/v1/video/generations/{job['id']}").json()).get("webhooks")
                and body["webhooks"][0]["state"] == "delivered"
                and body
            )
        )
        assert status["webhooks"][0]["attempts"] == 2
        assert status["webhooks"][0]["last_status_code"] == 204


def test_seed_002_webhooks_arrive_in_its_own_dialect(stack: Settings) -> None:
    with httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as api, Receiver() as r:
        job = api.post(
            "/v2/videos/generate",
            json={
                "prompt": unique_prompt("[emu gen=1] v2 hooks"),
                "model": "luma-ray-2",
                "webhookUrl": r.url(),
                "webhookEvents": ["completed"],
            },
        ).json()
        wait_for(lambda: r.requests)
        event = json.loads(r.requests[0].body)
    assert event["type"] == "video.completed"
    assert event["data"]["jobId"] == job["jobId"]
    assert event["data"]["status"] == "COMPLETED"


def test_webhooks_to_private_addresses_are_refused_at_submit(stack: Settings) -> None:
    with httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as api:
        for url in (
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest",
            "https://[::1]/hook",
            "http://127.0.0.2:9/hook",
        ):
            response = api.post("/v1/video/generations", json={"prompt": "x", "webhook_url": url})
            assert response.status_code == 400, url
            assert "webhook_url" in response.json()["error"]["message"]


def test_provider_callbacks_wake_the_job_and_forgeries_change_nothing(stack: Settings) -> None:
    with httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as api:
        job = api.post(
            "/v1/video/generations",
            json={
                "prompt": unique_prompt("[emu gen=1] woken"),
                "model": "luma-dream-machine",
                "duration_seconds": 5,
            },
        ).json()
        done = wait_for(
            lambda: (
                (b := api.get(f"/v1/video/generations/{job['id']}").json())["status"] == "complete"
                and b
            ),
            within=60,
        )
        assert done["perf"]["model_used"] == "ray-2"
        base = f"/v1/providers/luma/callbacks/{job['id']}"
        forged = api.post(f"{base}?token=not-the-token", json={"id": "x", "state": "completed"})
        assert forged.status_code == 404
        unknown = api.post(f"/v1/providers/nobody/callbacks/{job['id']}?token=x", json={})
        assert unknown.status_code == 404


def test_a_replayed_callback_is_refused(stack: Settings) -> None:
    with httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as api:
        job = api.post(
            "/v1/video/generations",
            json={
                "prompt": unique_prompt("[emu gen=60] replayed"),
                "model": "luma-dream-machine",
                "duration_seconds": 5,
            },
        ).json()
        wait_for(
            lambda: api.get(f"/v1/video/generations/{job['id']}").json()["status"] == "processing"
        )
        url = f"/v1/providers/luma/callbacks/{job['id']}?token={callback_token(stack, job['id'])}"
        body = {"id": "generation-1", "state": "dreaming"}
        assert api.post(url, json=body).status_code == 200
        replayed = api.post(url, json=body)
        assert replayed.status_code == 409
        api.post(f"/v1/video/generations/{job['id']}/cancel")
