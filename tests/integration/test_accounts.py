"""Tenants, credits and limits end to end: real API and worker processes, real Temporal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelay.settings import Settings
from reelay.tenants import hash_key
from tests.support import MakeStack, wait_until

KEYS = {
    "rich": "rl_rich_key",  # covers exactly 50 jobs of $0.20
    "free": "rl_free_key",
    "queue": "rl_queue_key",
    "other": "rl_other_key",
}
ADMIN_KEY = "rl_admin_key"
TENANTS = f"""
[[tenants]]
id = "rich"
tier = "enterprise"
opening_balance_usd = 10.0
jobs_per_day = 1000
key_hashes = ["{hash_key(KEYS["rich"])}"]

[[tenants]]
id = "free"
tier = "free"
opening_balance_usd = 100.0
key_hashes = ["{hash_key(KEYS["free"])}"]

[[tenants]]
id = "queue"
tier = "free"
jobs_per_day = 100
opening_balance_usd = 100.0
key_hashes = ["{hash_key(KEYS["queue"])}"]

[[tenants]]
id = "other"
tier = "pro"
opening_balance_usd = 5.0
key_hashes = ["{hash_key(KEYS["other"])}", "{hash_key("rl_revoked_later")}"]
"""


@pytest.fixture(scope="module")
def tenants_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tenants") / "tenants.toml"
    path.write_text(TENANTS)
    return path


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack, tenants_file: Path) -> Settings:
    return make_stack(tenants_file=tenants_file, admin_api_key=ADMIN_KEY).settings


def client(stack: Settings, tenant: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.public_url,
        headers={"Authorization": f"Bearer {KEYS[tenant]}"},
        timeout=60,
        limits=httpx.Limits(max_connections=250),
    )


async def submit_retrying(http: httpx.AsyncClient, n: int) -> httpx.Response:
    """A $0.20 job, as a careful client sends it: with an Idempotency-Key, and retried once
    when the connection drops (the key makes a retry of an admitted job return that job)."""
    body = {"prompt": f"[emu gen=1] a quick sketch {n}", "duration_seconds": 2}
    headers = {"Idempotency-Key": f"sketch-{n}"}
    try:
        return await http.post("/v1/video/generations", json=body, headers=headers)
    except httpx.TransportError:
        return await http.post("/v1/video/generations", json=body, headers=headers)


async def job_status(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get(f"/v1/video/generations/{job_id}")).json()
    return body


async def finished(http: httpx.AsyncClient, job_ids: list[str]) -> bool:
    statuses = await asyncio.gather(*(job_status(http, j) for j in job_ids))
    return all(s["status"] in ("complete", "failed", "cancelled") for s in statuses)


async def test_a_balance_for_50_jobs_admits_exactly_50_of_200_and_balances(
    stack: Settings,
) -> None:
    async with client(stack, "rich") as http:
        responses = await asyncio.gather(*(submit_retrying(http, n) for n in range(200)))
        codes = [r.status_code for r in responses]
        assert codes.count(202) == 50
        assert codes.count(402) == 150
        refused = next(r for r in responses if r.status_code == 402).json()
        assert refused["error"]["type"] == "insufficient_credits"
        admitted = [r.json()["id"] for r in responses if r.status_code == 202]
        assert len(set(admitted)) == 50
        await wait_until(lambda: finished(http, admitted), within=240, interval=1)
        statuses = [await job_status(http, j) for j in admitted]
        assert {s["status"] for s in statuses} == {"complete"}
        account = (await http.get("/v1/account")).json()
    assert account["spent_usd"] == pytest.approx(10.0)
    assert account["reserved_usd"] == 0
    assert account["balance_usd"] == pytest.approx(0.0)
    assert account["usage_today"]["jobs"] == 50
    assert account["usage_today"]["seconds_of_video"] == pytest.approx(100.0)
    assert sum(s["perf"]["cost_usd"] for s in statuses) == pytest.approx(10.0)


async def test_free_tier_runs_one_job_queues_the_rest_in_order_and_caps_the_day(
    stack: Settings,
) -> None:
    async with client(stack, "free") as http:
        ids = []
        for n in range(3):
            response = await http.post(
                "/v1/video/generations", json={"prompt": f"[emu gen=2] free job {n}"}
            )
            assert response.status_code == 202
            ids.append(response.json()["id"])
        first, second, third = [await job_status(http, j) for j in ids]
        assert first["status"] in ("pending", "processing", "complete")
        assert first.get("queue_position") is None
        assert (second["status"], second["queue_position"]) == ("pending", 1)
        assert (third["status"], third["queue_position"]) == ("pending", 2)
        await wait_until(lambda: finished(http, ids), within=120, interval=0.5)
        done = [await job_status(http, j) for j in ids]
        assert [d["status"] for d in done] == ["complete"] * 3
        finished_at = [d["created_at"] for d in done]
        assert finished_at == sorted(finished_at)
        for n in range(2):
            ok = await http.post("/v1/video/generations", json={"prompt": f"[emu gen=1] more {n}"})
            assert ok.status_code == 202
        sixth = await http.post("/v1/video/generations", json={"prompt": "one too many"})
    assert sixth.status_code == 429
    assert sixth.json()["error"]["type"] == "daily_quota_exceeded"
    assert 0 < int(sixth.headers["retry-after"]) <= 86400 + 1


async def test_cancelling_a_queued_job_frees_its_place_and_refunds_it(stack: Settings) -> None:
    async with client(stack, "queue") as http:
        before = (await http.get("/v1/account")).json()
        running = (
            await http.post("/v1/video/generations", json={"prompt": "[emu gen=60] long one"})
        ).json()
        waiting = (
            await http.post("/v1/video/generations", json={"prompt": "[emu gen=1] waits"})
        ).json()
        assert (await job_status(http, waiting["id"]))["queue_position"] == 1
        assert (await http.post(f"/v1/video/generations/{waiting['id']}/cancel")).status_code == 202
        await wait_until(lambda: finished(http, [waiting["id"]]))
        assert (await job_status(http, waiting["id"]))["status"] == "cancelled"
        assert (await http.post(f"/v1/video/generations/{running['id']}/cancel")).status_code == 202
        await wait_until(lambda: finished(http, [running["id"]]))
        again = await http.post(f"/v1/video/generations/{running['id']}/cancel")
        assert again.status_code == 409

        async def refunded() -> bool:
            account = (await http.get("/v1/account")).json()
            return bool(account["reserved_usd"] == 0 and account["running_jobs"] == 0)

        await wait_until(refunded)
        after = (await http.get("/v1/account")).json()
    assert after["available_usd"] == pytest.approx(before["available_usd"])
    assert after["spent_usd"] == pytest.approx(before["spent_usd"])


async def test_another_tenants_key_gets_404_for_every_job_endpoint(stack: Settings) -> None:
    async with client(stack, "queue") as owner, client(stack, "other") as stranger:
        job = (
            await owner.post("/v1/video/generations", json={"prompt": "[emu gen=1] mine only"})
        ).json()
        await wait_until(lambda: finished(owner, [job["id"]]))
        for response in (
            await stranger.get(f"/v1/video/generations/{job['id']}"),
            await stranger.get(f"/v1/video/generations/{job['id']}/content"),
            await stranger.post(f"/v1/video/generations/{job['id']}/cancel"),
        ):
            assert response.status_code == 404
            assert response.json()["error"]["type"] == "not_found"
        listed = (await stranger.get("/v1/video/generations")).json()
        assert job["id"] not in {j["id"] for j in listed["data"]}


async def test_admin_top_up_is_idempotent_and_needs_the_admin_key(stack: Settings) -> None:
    async with httpx.AsyncClient(base_url=stack.public_url, timeout=30) as http:
        url = "/v1/admin/tenants/other/credits"
        body = {"amount_usd": 2.5, "reference": "invoice-42"}
        assert (await http.post(url, json=body)).status_code == 401
        wrong = {"Authorization": f"Bearer {KEYS['other']}"}
        assert (await http.post(url, json=body, headers=wrong)).status_code == 401
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        first = (await http.post(url, json=body, headers=admin)).json()
        second = (await http.post(url, json=body, headers=admin)).json()
        assert first["balance_usd"] == second["balance_usd"] == pytest.approx(7.5)
        missing = await http.post("/v1/admin/tenants/nobody/credits", json=body, headers=admin)
        assert missing.status_code == 404


async def test_removing_a_key_from_the_file_revokes_it_without_a_restart(
    stack: Settings, tenants_file: Path
) -> None:
    headers = {"Authorization": "Bearer rl_revoked_later"}
    async with httpx.AsyncClient(base_url=stack.public_url, headers=headers) as http:
        assert (await http.get("/v1/account")).status_code == 200
        revoked_file = TENANTS.replace(f', "{hash_key("rl_revoked_later")}"', "")
        await asyncio.to_thread(tenants_file.write_text, revoked_file)

        async def revoked() -> bool:
            return (await http.get("/v1/account")).status_code == 401

        await wait_until(revoked, within=10)


async def test_listing_is_newest_first_filtered_and_paginated(stack: Settings) -> None:
    async with client(stack, "other") as http:
        made = []
        for model in ("runway-gen3", "pika", "runway-gen3"):
            body = {"prompt": "[emu gen=1] listed", "model": model, "duration_seconds": 2}
            made.append((await http.post("/v1/video/generations", json=body)).json()["id"])

        async def listed() -> list[str]:
            page = (await http.get("/v1/video/generations", params={"limit": 50})).json()
            ids = [job["id"] for job in page["data"]]
            return ids if set(made) <= set(ids) else []

        ids = await wait_until(listed)
        assert [i for i in ids if i in made] == made[::-1]  # newest first
        pika = (await http.get("/v1/video/generations", params={"model": "pika"})).json()
        assert [job["id"] for job in pika["data"]] == [made[1]]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 1, "model": "runway-gen3"}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/v1/video/generations", params=params)).json()
            seen += [job["id"] for job in page["data"]]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert [i for i in seen if i in made] == [made[2], made[0]]
        bad = await http.get("/v1/video/generations", params={"status": "sleeping"})
        assert bad.status_code == 400
