"""Run in child processes by test_ledger_store.py: submits on a connection pool of their own.

Imports only the store and the ledger, so a spawned process starts quickly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from reelay.accounts import Refusal, SubmitJob, SubmitOutcome
from reelay.store import LedgerStore


async def _submit_all(url: str, requests: list[str], opening: int) -> list[str]:
    store = await LedgerStore.open(url, timeout_seconds=60)

    async def one(raw: str) -> str:
        request = SubmitJob.model_validate_json(raw)
        try:
            outcome: SubmitOutcome = await store.reserve("hot", opening, request, datetime.now(UTC))
        except Refusal as refusal:
            return refusal.kind
        return "queued" if outcome.queue_position else "running"

    try:
        return await asyncio.gather(*(one(raw) for raw in requests))
    finally:
        await store.close()


def submit_all(url: str, requests: list[str], opening: int) -> list[str]:
    """Every request at once; the outcome of each ("running", "queued" or the refusal)."""
    return asyncio.run(_submit_all(url, requests, opening))
