"""SIGKILL the worker while jobs poll and store, or the API mid-burst: nothing lost, submitted
twice, stored twice or charged twice."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelay import devstack
from reelay.jobs import JobStatus
from reelay.settings import Settings
from reelay.storage import s3_client
from reelay.temporal import connect
from reelay.tenants import hash_key
from tests.conftest import clean_env
from tests.support import (
    all_emulator_submissions,
    emulator_submissions,
    is_storing,
    job_spec,
    start,
    status_is,
    unique_prompt,
    wait_until,
)


async def test_sigkill_during_poll_and_store_loses_nothing(
    settings: Settings, stack_dir: Path, tmp_path: Path
) -> None:
    logs = stack_dir / "logs"
    # Small files in the tests: throttle the download so the store step is caught mid-way.
    storing_prompt = unique_prompt("[emu gen=1 slow=4000] a waterfall")
    polling_prompts = [unique_prompt("[emu gen=5] a city at night") for _ in range(3)]
    client = await connect(settings)
    worker = devstack.start_worker(settings, log_path=logs / "crash-worker-1.log", env=clean_env())
    try:
        specs = [
            job_spec(settings, p, duration_seconds=4) for p in [storing_prompt, *polling_prompts]
        ]
        handles = [await start(client, settings, spec) for spec in specs]
        await wait_until(lambda: is_storing(handles[0]))
        for handle in handles[1:]:
            assert await status_is(handle, JobStatus.PROCESSING, JobStatus.QUEUED)
        worker.kill()
    finally:
        worker.stop()

    replacement = devstack.start_worker(
        settings, log_path=logs / "crash-worker-2.log", env=clean_env()
    )
    try:
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
    finally:
        replacement.stop()

    s3 = s3_client(settings)
    for prompt, result in zip([storing_prompt, *polling_prompts], results, strict=True):
        assert result.status is JobStatus.COMPLETED
        assert result.video is not None
        assert len(await emulator_submissions(settings, prompt)) == 1
        local = tmp_path / f"{result.job_id}.mp4"
        s3.fget_object(settings.s3_bucket, result.video.key, str(local))
        assert hashlib.sha256(local.read_bytes()).hexdigest() == result.video.sha256
        versions = list(s3.list_objects(settings.s3_bucket, prefix=result.video.key))
        assert len(versions) == 1


def _with_tenant(
    settings: Settings, tmp_path: Path, tenant_id: str, *, tier: str, balance_usd: float, key: str
) -> Settings:
    """`settings` for an API of its own (a free port) whose one tenant is `tenant_id`."""
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(
        f'[[tenants]]\nid = "{tenant_id}"\ntier = "{tier}"\n'
        f'opening_balance_usd = {balance_usd}\nkey_hashes = ["{hash_key(key)}"]\n'
    )
    api_port = devstack.free_port()
    return settings.model_copy(
        update={
            "tenants_file": tenants,
            "api_port": api_port,
            "public_url": f"http://127.0.0.1:{api_port}",
        }
    )


async def test_sigkill_around_settlement_settles_every_job_exactly_once(
    settings: Settings, stack_dir: Path, tmp_path: Path
) -> None:
    """Jobs finish and settle while the worker is killed again and again; the ledger holds."""
    key = "rl_crash_key"
    settings = _with_tenant(settings, tmp_path, "crash", tier="pro", balance_usd=20.0, key=key)
    logs = stack_dir / "logs"
    worker = devstack.start_worker(settings, log_path=logs / "settle-worker-0.log", env=clean_env())
    with devstack.start_api(settings, log_path=logs / "settle-api.log", env=clean_env()):
        async with httpx.AsyncClient(
            base_url=settings.public_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            ids = []
            for n in range(5):
                response = await http.post(
                    "/v1/video/generations",
                    json={"prompt": f"[emu gen={1 + n % 3}] settle {n}", "duration_seconds": 2},
                )
                assert response.status_code == 202
                ids.append(response.json()["id"])

            async def completed(at_least: int) -> bool:
                bodies = [(await http.get(f"/v1/video/generations/{j}")).json() for j in ids]
                return sum(b["status"] == "complete" for b in bodies) >= at_least

            try:
                # Crash just as jobs finish, i.e. while they settle with the account.
                for round_, target in enumerate((1, 3), start=1):
                    await wait_until(lambda t=target: completed(t), within=120, interval=0.05)
                    worker.kill()
                    worker.stop()
                    worker = devstack.start_worker(
                        settings, log_path=logs / f"settle-worker-{round_}.log", env=clean_env()
                    )

                await wait_until(lambda: completed(len(ids)), within=180, interval=0.5)
                costs = [
                    (await http.get(f"/v1/video/generations/{j}")).json()["perf"]["cost_usd"]
                    for j in ids
                ]

                async def settled() -> dict[str, Any] | None:
                    response = await http.get("/v1/account")
                    if response.status_code != 200:  # a worker is still coming back
                        return None
                    account: dict[str, Any] = response.json()
                    return account if account["reserved_usd"] == 0 else None

                account = await wait_until(settled)
            finally:
                worker.stop()
    assert account["spent_usd"] == pytest.approx(sum(costs)) == pytest.approx(5 * 0.20)
    assert account["balance_usd"] + account["spent_usd"] == pytest.approx(20.0)
    assert account["usage_today"]["jobs"] == 5


async def test_sigkill_of_the_api_mid_burst_loses_no_job_and_charges_each_once(
    settings: Settings, stack_dir: Path, tmp_path: Path
) -> None:
    """The API dies while a burst of submits is in flight, between commits, answers and starts.

    Clients retry what got no answer with the same `Idempotency-Key` against the API that
    replaces it. Every key must end as one job that was submitted to the provider once,
    completed and charged once (a job the dead API admitted but never started is started by
    the retry's read of the outbox, or by the sweep); nothing is left reserved.
    """
    key, burst = "rl_api_crash_key", 60
    settings = _with_tenant(
        settings, tmp_path, "api-crash", tier="enterprise", balance_usd=100.0, key=key
    )
    logs = stack_dir / "logs"
    prompts = {f"burst-{n}": unique_prompt(f"[emu gen={n % 2}] burst {n}") for n in range(burst)}
    answered: dict[str, str] = {}
    enough_answered = asyncio.Event()

    async def submit(http: httpx.AsyncClient, idempotency_key: str) -> None:
        response = await http.post(
            "/v1/video/generations",
            json={"prompt": prompts[idempotency_key], "duration_seconds": 2},
            headers={"Idempotency-Key": idempotency_key},
        )
        assert response.status_code == 202, response.text
        answered[idempotency_key] = response.json()["id"]
        if len(answered) >= 10:
            enough_answered.set()

    async def submit_all(http: httpx.AsyncClient, keys: list[str]) -> None:
        slots = asyncio.Semaphore(16)

        async def one(idempotency_key: str) -> None:
            # A request the API died under is retried below.
            async with slots:
                with contextlib.suppress(httpx.TransportError):
                    await submit(http, idempotency_key)

        await asyncio.gather(*(one(k) for k in keys))

    worker = devstack.start_worker(
        settings, log_path=logs / "api-crash-worker.log", env=clean_env()
    )
    api = devstack.start_api(settings, log_path=logs / "api-crash-api-1.log", env=clean_env())
    try:
        async with httpx.AsyncClient(
            base_url=settings.public_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            burst_task = asyncio.create_task(submit_all(http, list(prompts)))
            await asyncio.wait_for(enough_answered.wait(), 60)
            api.kill()
            await burst_task
            unanswered = [k for k in prompts if k not in answered]
            assert unanswered, "the kill landed after the whole burst was answered"
            first_answers = dict(answered)
            api.stop()
            api = devstack.start_api(
                settings, log_path=logs / "api-crash-api-2.log", env=clean_env()
            )
            for idempotency_key in prompts:  # a retry of an answered submit is answered alike
                await submit(http, idempotency_key)
            assert {k: answered[k] for k in first_answers} == first_answers
            assert len(set(answered.values())) == burst

            async def all_complete() -> list[dict[str, Any]] | None:
                bodies = [
                    (await http.get(f"/v1/video/generations/{job_id}")).json()
                    for job_id in answered.values()
                ]
                return bodies if all(b["status"] == "complete" for b in bodies) else None

            jobs = await wait_until(all_complete, within=240, interval=1.0)

            async def settled() -> dict[str, Any] | None:
                account: dict[str, Any] = (await http.get("/v1/account")).json()
                return account if account["reserved_usd"] == 0 else None

            account = await wait_until(settled)
    finally:
        api.stop()
        worker.stop()
    submitted = Counter(s["prompt"] for s in await all_emulator_submissions(settings))
    assert all(submitted[prompt] == 1 for prompt in prompts.values())
    assert account["spent_usd"] == pytest.approx(sum(j["perf"]["cost_usd"] for j in jobs))
    assert account["balance_usd"] + account["spent_usd"] == pytest.approx(100.0)
    assert (account["running_jobs"], account["queued_jobs"]) == (0, 0)
    assert account["usage_today"]["jobs"] == burst
