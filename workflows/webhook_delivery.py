"""`WebhookDeliveryWorkflow`: one event to one endpoint, retried with backoff for up to a day.

Each attempt is one activity execution, so the `status` query can show attempts and the
last response while retries go on. A job starts one delivery per event as an abandoned child
(`start_webhook_delivery`): a failing endpoint never blocks or fails the job, and delivery
goes on after the job closes.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from reelay.webhooks import WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus
    from workflows import console

# Covers DNS, the SSRF check and the request (itself bounded by `webhook_timeout_seconds`).
ATTEMPT_TIMEOUT = timedelta(seconds=60)
UNDELIVERABLE_TYPE = "webhook_undeliverable"


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.init
    def __init__(self, delivery: WebhookDelivery) -> None:
        self._status = WebhookDeliveryStatus(message_id=delivery.message_id, event=delivery.event)

    @workflow.query
    def status(self) -> WebhookDeliveryStatus:
        return self._status

    @workflow.run
    async def run(self, delivery: WebhookDelivery) -> WebhookDeliveryStatus:
        give_up_at = workflow.now() + timedelta(seconds=delivery.give_up_after_seconds)
        delay = delivery.first_retry_seconds
        status = self._status
        while True:
            self._show()
            attempt = await self._attempt(delivery)
            self._record(attempt)
            if attempt.delivered:
                status.state = "delivered"
                status.delivered_at = workflow.now()
                self._show()
                return status
            next_at = workflow.now() + timedelta(seconds=delay)
            if attempt.refused or next_at > give_up_at:
                break
            status.next_attempt_at = next_at
            self._show()
            await workflow.sleep(delay)
            status.next_attempt_at = None
            delay = min(delay * 2, delivery.max_retry_seconds)
        status.state = "failed"
        self._show()
        raise ApplicationError(
            f"webhook {delivery.message_id} not delivered after {status.attempts} attempt(s): "
            f"{status.last_error}",
            status,
            type=UNDELIVERABLE_TYPE,
            non_retryable=True,
        )

    def _show(self) -> None:
        workflow.set_current_details(console.webhook_current_details(self._status))

    def _record(self, attempt: WebhookAttempt) -> None:
        self._status.attempts += 1
        self._status.last_status_code = attempt.status_code
        self._status.last_error = attempt.error
        if attempt.status_code is not None and not attempt.delivered:
            redirect = 300 <= attempt.status_code < 400
            note = " (redirects are not followed)" if redirect else ""
            self._status.last_error = f"HTTP {attempt.status_code}{note}"

    async def _attempt(self, delivery: WebhookDelivery) -> WebhookAttempt:
        try:
            return await workflow.execute_activity_method(
                WebhookActivities.deliver_webhook,
                delivery,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=console.webhook_attempt_summary(delivery, self._status.attempts + 1),
            )
        except ActivityError as exc:  # the worker died or the attempt timed out
            return WebhookAttempt(error=str(exc.cause or exc))


async def start_webhook_delivery(delivery: WebhookDelivery) -> None:
    """From workflow code: start `delivery` as a child that outlives its parent.

    Starting the same delivery twice (a replay, a retried job) is a no-op: the workflow id
    is `delivery.workflow_id` and is never reused.
    """
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            WebhookDeliveryWorkflow.run,
            delivery,
            id=delivery.workflow_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=console.webhook_summary(delivery),
            static_details=console.webhook_details(delivery),
        )
