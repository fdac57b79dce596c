"""A tenant's account in the ledger store: submits, balance, top-ups, queue positions.

Each change is one short transaction on the tenant's rows (`reelay.store`); it raises
`Refusal` (nothing changed) or `StoreUnavailable` (the API's 503).
Jobs started by the former `AccountWorkflow` keep reading their queue position from it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from reelay.accounts import (
    AccountSnapshot,
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
    # Keyed by what the URL is made of: resolving the default's path costs a system call.
    key = (settings.database_url or str(settings.data_dir), id(asyncio.get_running_loop()))
    store = _STORES.get(key)
    if store is None:
        async with _OPENING:
            store = _STORES.get(key)
            if store is None:
                url = settings.ledger_database_url
                store = await LedgerStore.open(url, settings.database_timeout_seconds)
                _STORES[key] = store
    return store


async def submit(
    settings: Settings, tenant: Tenant, spec: JobSpec, pending_start: str | None = None
) -> SubmitOutcome:
    """Reserve the estimate, count the job and give it a slot or a place in the queue; keep
    `pending_start` (the spec to start it from) in the store's outbox, in the same commit."""
    request = SubmitJob(
        spec=spec,
        limits=tenant.limits,
        queue_cap=settings.tenant_queue_cap,
        request_hash=spec.request_hash,
    )
    store = await ledger(settings)
    return await store.reserve(
        tenant.id, tenant.opening_balance_micro_usd, request, datetime.now(UTC), pending_start
    )


async def top_up(settings: Settings, tenant: Tenant, top_up: TopUp) -> AccountSnapshot:
    store = await ledger(settings)
    now = datetime.now(UTC)
    return await store.top_up(tenant.id, tenant.opening_balance_micro_usd, top_up, now)


async def snapshot(settings: Settings, tenant: Tenant) -> AccountSnapshot:
    """The account as it stands (a new one has the tenant's opening balance)."""
    store = await ledger(settings)
    return await store.snapshot(tenant.id, tenant.opening_balance_micro_usd)


async def queue_position(
    client: Client, tenant_id: str, account_id: str, job_id: str
) -> int | None:
    """Where a queued job waits: from the store, or from the account workflow that started it."""
    if is_ledger_account(account_id):
        return await (await _this_process_store()).position(job_id)
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
