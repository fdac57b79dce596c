"""`AccountWorkflow`: one long-lived workflow per tenant holding its ledger and job queue.

No longer started: the API admits jobs through the ledger store (`reelay.store`) and jobs
settle there. It stays registered for the runs still open, the jobs settling with them, and
its recorded histories; remove it once no run of it is open. How it worked:

Submits arrive as updates (validated, so a refusal changes nothing and starts nothing) that
reserve the estimate and start the job as a child workflow; jobs report back with a
`settle` signal exactly once (deduplicated by job id; declared in `workflows.contracts` so
jobs need not import this module). Temporal serialises every change to
one tenant's account, so credits and limits hold under any concurrency.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from reelay.accounts import (
        AccountSnapshot,
        AccountState,
        Ledger,
        Refusal,
        Settlement,
        SubmitJob,
        SubmitOutcome,
        TopUp,
    )
    from reelay.jobs import JobView
    from workflows import console, search_attributes
    from workflows.clip import MEMO_VIEW
    from workflows.contracts import AccountHandlers
    from workflows.video_generation import VideoGenerationWorkflow


class AccountInput(BaseModel):
    tenant_id: str
    opening_balance_micro_usd: int
    state: AccountState | None = None


def account_workflow_id(tenant_id: str, task_queue: str) -> str:
    """One account per tenant and deployment (its task queue), so deployments that share a
    Temporal namespace keep separate ledgers."""
    return f"account:{task_queue}:{tenant_id}"


@workflow.defn
class AccountWorkflow(AccountHandlers):
    @workflow.init
    def __init__(self, account: AccountInput) -> None:
        if account.state is not None:
            self._ledger = Ledger(account.state)
        else:
            self._ledger = Ledger.open(
                account.tenant_id, account.opening_balance_micro_usd, workflow.now()
            )

    @workflow.run
    async def run(self, account: AccountInput) -> None:
        workflow.set_current_details(
            console.account_details(account.tenant_id, account.opening_balance_micro_usd)
        )
        # Nothing to do but serve handlers; roll over to a fresh history when it grows long.
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            AccountInput(
                tenant_id=account.tenant_id,
                opening_balance_micro_usd=account.opening_balance_micro_usd,
                state=self._ledger.state,
            )
        )

    @workflow.update
    async def submit(self, request: SubmitJob) -> SubmitOutcome:
        outcome = self._ledger.reserve(request, workflow.now())
        if outcome.duplicate:
            return outcome
        spec = request.spec.model_copy(
            update={
                "account_id": workflow.info().workflow_id,
                "queued": outcome.queue_position is not None,
            }
        )
        try:
            await workflow.start_child_workflow(
                VideoGenerationWorkflow.run,
                spec,
                id=spec.job_id,
                task_queue=workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search_attributes.for_new_job(spec),
                memo={MEMO_VIEW: JobView.from_spec(spec)},
                static_summary=console.job_summary(spec),
                static_details=console.job_details(spec),
            )
        except WorkflowAlreadyStartedError:
            self._ledger.forget(spec.job_id)
            raise ApplicationError(
                f"job {spec.job_id} already exists", type="idempotency_conflict"
            ) from None
        return outcome

    @submit.validator
    def validate_submit(self, request: SubmitJob) -> None:
        try:
            self._ledger.check(request, workflow.now())
        except Refusal as refusal:
            raise ApplicationError(
                refusal.message, {"retry_after": refusal.retry_after}, type=refusal.kind
            ) from None

    @workflow.signal
    async def settle(self, settlement: Settlement) -> None:
        for job_id in self._ledger.settle(settlement, workflow.now()):
            await self._admit(job_id)

    async def _admit(self, job_id: str) -> None:
        try:
            await workflow.get_external_workflow_handle(job_id).signal(
                VideoGenerationWorkflow.admit
            )
        except FailureError:
            # The job is gone without settling (terminated by an operator): free its slot.
            workflow.logger.warning("job %s vanished while queued; releasing it", job_id)
            await self.settle(Settlement(job_id=job_id, cost_micro_usd=0))

    @workflow.update
    def top_up(self, top_up: TopUp) -> AccountSnapshot:
        self._ledger.top_up(top_up, workflow.now())
        return self._ledger.snapshot()

    @workflow.query
    def snapshot(self) -> AccountSnapshot:
        return self._ledger.snapshot()

    @workflow.query
    def queue_position(self, job_id: str) -> int | None:
        return self._ledger.position(job_id)
