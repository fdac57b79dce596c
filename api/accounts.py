"""Talking to a tenant's `AccountWorkflow`: submits, balance, top-ups, queue positions."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from reelay import idempotency
from reelay.accounts import AccountSnapshot, SubmitJob, SubmitOutcome, TopUp
from reelay.jobs import JobSpec
from reelay.settings import Settings
from reelay.tenants import Tenant
from workflows.account import AccountInput, AccountWorkflow, account_workflow_id

QUERY_TIMEOUT = timedelta(seconds=5)
IN_FLIGHT_PER_ACCOUNT = 8
UPDATE_ATTEMPTS = 8
_GATES: dict[str, asyncio.Semaphore] = {}


def _account_input(tenant: Tenant) -> AccountInput:
    return AccountInput(
        tenant_id=tenant.id, opening_balance_micro_usd=tenant.opening_balance_micro_usd
    )


def _start(settings: Settings, tenant: Tenant) -> WithStartWorkflowOperation[AccountWorkflow, None]:
    """Start the tenant's account on first use; afterwards, use the running one."""
    return WithStartWorkflowOperation(
        AccountWorkflow.run,
        _account_input(tenant),
        id=account_workflow_id(tenant.id, settings.task_queue),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def submit(
    client: Client, settings: Settings, tenant: Tenant, spec: JobSpec
) -> SubmitOutcome:
    """Reserve, count and start (or queue) a job; raises WorkflowUpdateFailedError on refusal."""
    request = SubmitJob(
        spec=spec,
        limits=tenant.limits,
        queue_cap=settings.tenant_queue_cap,
        request_hash=spec.request_hash,
    )
    attempt = 0
    async with _gate(tenant.id):
        while True:
            try:
                outcome: SubmitOutcome = await client.execute_update_with_start_workflow(
                    AccountWorkflow.submit,
                    request,
                    start_workflow_operation=_start(settings, tenant),
                    id=idempotency.update_id(spec.job_id, spec.request_hash),
                )
                return outcome
            except RPCError as exc:
                # Temporal caps in-flight updates per workflow; wait for the account to catch up.
                attempt += 1
                if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED or attempt >= UPDATE_ATTEMPTS:
                    raise
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))


def _gate(tenant_id: str) -> asyncio.Semaphore:
    """Bounds this process's concurrent updates to one account below Temporal's in-flight cap."""
    gate = _GATES.get(tenant_id)
    if gate is None:
        gate = _GATES[tenant_id] = asyncio.Semaphore(IN_FLIGHT_PER_ACCOUNT)
    return gate


async def top_up(
    client: Client, settings: Settings, tenant: Tenant, top_up: TopUp
) -> AccountSnapshot:
    snapshot: AccountSnapshot = await client.execute_update_with_start_workflow(
        AccountWorkflow.top_up,
        top_up,
        start_workflow_operation=_start(settings, tenant),
        id=f"top-up:{top_up.reference}",
    )
    return snapshot


async def snapshot(client: Client, settings: Settings, tenant: Tenant) -> AccountSnapshot:
    """The account as it stands (opened on first use with the tenant's opening balance)."""
    handle = await client.start_workflow(
        AccountWorkflow.run,
        _account_input(tenant),
        id=account_workflow_id(tenant.id, settings.task_queue),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result: AccountSnapshot = await handle.query(
        AccountWorkflow.snapshot, rpc_timeout=QUERY_TIMEOUT
    )
    return result


async def queue_position(client: Client, account_id: str, job_id: str) -> int | None:
    handle = client.get_workflow_handle_for(AccountWorkflow.run, account_id)
    try:
        position: int | None = await handle.query(
            AccountWorkflow.queue_position, job_id, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError:
        return None
    return position
