"""A tenant's account in the ledger store: submits, releases, balance, top-ups, positions.

Each call is one short transaction on the tenant's row (`reelay.store`) running the pure
`Ledger`; it raises `Refusal` (nothing changed) or `StoreUnavailable` (the API's 503).
Jobs started by the former `AccountWorkflow` keep reading their queue position from it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from reelay.accounts import (
    AccountSnapshot,
    Ledger,
    SubmitJob,
    SubmitOutcome,
    TopUp,
    is_ledger_account,
)
from reelay.jobs import JobSpec
from reelay.settings import Settings, get_settings
from reelay.store import LedgerStore
from reelay.tenants import Tenant
from workflows.account import AccountWorkflow

QUERY_TIMEOUT = timedelta(seconds=5)
# One store per database URL and event loop (an engine's connections belong to one loop).
_STORES: dict[tuple[str, int], LedgerStore] = {}
_OPENING = asyncio.Lock()


async def ledger(settings: Settings) -> LedgerStore:
    """This process's store for `settings` (opened, and its schema created, on first use)."""
    key = (settings.ledger_database_url, id(asyncio.get_running_loop()))
    store = _STORES.get(key)
    if store is None:
        async with _OPENING:
            store = _STORES.get(key)
            if store is None:
                store = await LedgerStore.open(key[0], settings.database_timeout_seconds)
                _STORES[key] = store
    return store


async def submit(settings: Settings, tenant: Tenant, spec: JobSpec) -> SubmitOutcome:
    """Reserve the estimate, count the job and give it a slot or a place in the queue."""
    request = SubmitJob(
        spec=spec,
        limits=tenant.limits,
        queue_cap=settings.tenant_queue_cap,
        request_hash=spec.request_hash,
    )
    store = await ledger(settings)
    now = datetime.now(UTC)
    return await store.change(
        tenant.id, tenant.opening_balance_micro_usd, lambda ledger: ledger.reserve(request, now)
    )


async def release(settings: Settings, tenant: Tenant, job_id: str) -> None:
    """Undo the reservation of a job that could not be started."""
    store = await ledger(settings)
    await store.change(
        tenant.id, tenant.opening_balance_micro_usd, lambda ledger: ledger.forget(job_id)
    )


async def top_up(settings: Settings, tenant: Tenant, top_up: TopUp) -> AccountSnapshot:
    store = await ledger(settings)
    now = datetime.now(UTC)

    def add(ledger: Ledger) -> AccountSnapshot:
        ledger.top_up(top_up, now)
        return ledger.snapshot()

    return await store.change(tenant.id, tenant.opening_balance_micro_usd, add)


async def snapshot(settings: Settings, tenant: Tenant) -> AccountSnapshot:
    """The account as it stands (a new one has the tenant's opening balance)."""
    store = await ledger(settings)
    account = await store.read(tenant.id, tenant.opening_balance_micro_usd)
    account.roll(datetime.now(UTC))
    return account.snapshot()


async def queue_position(
    client: Client, tenant_id: str, account_id: str, job_id: str
) -> int | None:
    """Where a queued job waits: from the store, or from the account workflow that started it."""
    if is_ledger_account(account_id):
        return (await (await _this_process_store()).read(tenant_id, 0)).position(job_id)
    handle = client.get_workflow_handle_for(AccountWorkflow.run, account_id)
    try:
        position: int | None = await handle.query(
            AccountWorkflow.queue_position, job_id, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError:
        return None
    return position


async def _this_process_store() -> LedgerStore:
    """The store this process submits to (reads of a job carry no settings)."""
    loop = id(asyncio.get_running_loop())
    for (_, opened_in), store in reversed(_STORES.items()):
        if opened_in == loop:
            return store
    return await ledger(get_settings())
