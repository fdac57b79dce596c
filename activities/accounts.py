"""Settling jobs in the ledger store, admitting the queued ones, and reaping reservations
whose job never started.

A job's settlement is one transaction (idempotent by job id: the reservation is charged once,
a replayed settle finds none), after which the jobs it freed slots for are admitted FIFO by
signalling their workflow's `admit`. Admitted jobs wait in the store's outbox until the API's
dispatcher starts them (`api.dispatch`); the reaper covers the reservations from before the
outbox: one whose workflow does not exist after the grace period is released.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from reelay.accounts import Settlement
from reelay.jobs import JobStatus
from reelay.store import LedgerStore

log = structlog.get_logger()

#: The job workflow's signal that a queued job has its slot (`VideoGenerationWorkflow.admit`).
ADMIT_SIGNAL = "admit"


class SettleJob(BaseModel):
    tenant_id: str
    settlement: Settlement


class JobEnd(BaseModel):
    """A job's end, taken by the worker that ran it: its settlement, when the job was
    admitted through the ledger store, and its count (`reelay_jobs_ended`, by the worker's
    activity interceptor)."""

    tenant_id: str
    model: str
    provider: str
    state: JobStatus
    settlement: Settlement | None = None


class AccountActivities:
    def __init__(self, client: Client, store: LedgerStore, grace: timedelta) -> None:
        self.client = client
        self.store = store
        self.grace = grace

    @activity.defn
    async def settle_job(self, request: SettleJob) -> None:
        """Charge the job's cost once, refund the rest, and admit the jobs now free to run."""
        # A retried attempt may have committed before failing to signal: signal every job
        # admitted from the queue again (`admit` is idempotent; a job not waiting ignores it).
        admitted = await self.store.settle(
            request.tenant_id,
            request.settlement,
            datetime.now(UTC),
            resignal=activity.info().attempt > 1,
        )
        await self._admit(request.tenant_id, admitted or [])

    @activity.defn
    async def end_job(self, end: JobEnd) -> None:
        """Settle the job (as `settle_job`) if it has a settlement to make."""
        if end.settlement is not None:
            await self.settle_job(SettleJob(tenant_id=end.tenant_id, settlement=end.settlement))

    async def _admit(self, tenant_id: str, job_ids: list[str]) -> None:
        pending = list(job_ids)
        while pending:
            job_id = pending.pop(0)
            try:
                await self.client.get_workflow_handle(job_id).signal(ADMIT_SIGNAL)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                # Not started yet (its submit admits it once started) or already closed.
                pending += await self._release_if_closed(tenant_id, job_id)

    async def _release_if_closed(self, tenant_id: str, job_id: str) -> list[str]:
        """Free the slot of a job that ended without settling (terminated by an operator);
        returns the jobs admitted in its place. A job never started is left to the reaper."""
        try:
            description = await self.client.get_workflow_handle(job_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []
            raise
        if description.status == WorkflowExecutionStatus.RUNNING:
            return []
        log.warning("job ended without settling; releasing it", job_id=job_id)
        settlement = Settlement(job_id=job_id, cost_micro_usd=0)
        admitted = await self.store.settle(tenant_id, settlement, datetime.now(UTC))
        return admitted or []

    async def reap(self) -> int:
        """One pass over the reservations older than the grace period not yet seen started
        and not in the outbox (those the dispatcher starts): confirm those whose workflow
        runs, release those with none or whose workflow ended unsettled. Returns how many
        it released."""
        released = 0
        for job in await self.store.unconfirmed(datetime.now(UTC) - self.grace):
            if job.pending_start is None:
                released += await self._reap_one(job.tenant_id, job.job_id)
        return released

    async def _reap_one(self, tenant_id: str, job_id: str) -> int:
        try:
            description = await self.client.get_workflow_handle(job_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            log.warning("reservation without a job; releasing it", job_id=job_id)
            await self._admit(tenant_id, await self.store.forget(tenant_id, job_id))
            return 1
        if description.status == WorkflowExecutionStatus.RUNNING:
            await self.store.mark_started(job_id)
            return 0
        await self._admit(tenant_id, await self._release_if_closed(tenant_id, job_id))
        return 1
