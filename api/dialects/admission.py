"""Submitting a request: the webhook and image checks, then admission through
`api.jobs.start_job`. Free of FastAPI: the routes and the worker's batch activities share it."""

from __future__ import annotations

from minio import Minio
from temporalio.client import Client

from api import jobs
from api.dialects.submission import Submission
from api.dialects.webhooks import webhook_target
from api.problem import invalid
from providers.catalog import ResolvedRequest
from reelay import idempotency
from reelay.jobs import ImageRef, WebhookTarget
from reelay.media import resolve_image
from reelay.settings import Settings
from reelay.tenants import Tenant


async def submit(
    client: Client,
    settings: Settings,
    tenant: Tenant,
    resolved: ResolvedRequest,
    *,
    dialect: str,
    app_id: str | None = None,
    image: ImageRef | None = None,
    webhook: WebhookTarget | None = None,
    idempotency_key: str | None = None,
    batch_id: str | None = None,
) -> jobs.Admission:
    """Start the job. With an `Idempotency-Key`, the same key and request from the same
    tenant return the first job (no second charge); the same key with another request is
    a 409."""
    fingerprint = None
    if idempotency_key:
        try:
            idempotency.check_key(idempotency_key)
        except idempotency.InvalidKeyError as exc:
            raise invalid(str(exc), "Idempotency-Key") from exc
        fingerprint = idempotency.fingerprint(
            dialect,
            {
                "request": resolved.model_dump(mode="json", exclude={"model"}),
                "app_id": app_id,
                "image": image is not None,
                "webhook": webhook.model_dump(mode="json") if webhook else None,
            },
        )
    spec = jobs.build_spec(
        resolved,
        tenant,
        settings,
        job_id=jobs.new_job_id(tenant, idempotency_key),
        request_id=jobs.new_request_id(),
        dialect=dialect,
        app_id=app_id,
        image=image,
        webhook=webhook,
        request_hash=fingerprint,
        batch_id=batch_id,
    )
    return await jobs.start_job(client, settings, spec, tenant)


async def admit(
    submission: Submission,
    client: Client,
    s3: Minio,
    settings: Settings,
    tenant: Tenant,
    *,
    idempotency_key: str | None,
    app_id: str | None = None,
    batch_id: str | None = None,
) -> jobs.Admission:
    """The webhook and image checks of a parsed submit body, then `submit`."""
    url_field, events_field = submission.webhook_fields
    webhook = await webhook_target(
        submission.webhook_url,
        submission.webhook_events,
        settings,
        url_field=url_field,
        events_field=events_field,
    )
    image_field, media_field = submission.image_fields
    image = await resolve_image(
        s3,
        settings,
        tenant.id,
        image_url=submission.image_url,
        media_id=submission.media_id,
        image_field=image_field,
        media_field=media_field,
    )
    return await submit(
        client,
        settings,
        tenant,
        submission.resolved,
        dialect=submission.dialect,
        app_id=app_id or submission.app_id,
        image=image,
        webhook=webhook,
        idempotency_key=idempotency_key,
        batch_id=batch_id,
    )
