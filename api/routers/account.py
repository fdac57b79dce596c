"""`GET /v1/account` for tenants; `POST /v1/admin/tenants/{id}/credits` for operators."""

from __future__ import annotations

import hmac
import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api import accounts
from api.deps import CurrentTenant, SettingsDep, api_key_from
from api.dialects.bodies import json_object, parse, request_body_doc
from api.errors import errors
from api.problem import APIError, unavailable
from reelay.accounts import AccountSnapshot, TopUp, Usage
from reelay.errors import ErrorCode
from reelay.jobs import micro_usd_to_usd
from reelay.settings import Settings
from reelay.store import StoreUnavailable
from reelay.tenants import Limits, TenantDirectory
from reelay.webhooks import tenant_secret

router = APIRouter(tags=["account"])


class UsageOut(BaseModel):
    jobs: int
    seconds_of_video: float
    usd: float

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls(
            jobs=usage.jobs,
            seconds_of_video=round(usage.seconds, 3),
            usd=micro_usd_to_usd(usage.micro_usd),
        )


class Account(BaseModel):
    tenant_id: str
    tier: str
    limits: Limits
    balance_usd: float = Field(description="deposits minus spent")
    reserved_usd: float = Field(description="held for jobs that have not finished")
    available_usd: float = Field(description="balance minus reserved: what new jobs can use")
    spent_usd: float
    running_jobs: int
    queued_jobs: int
    usage_today: UsageOut
    usage_today_by_app: dict[str, UsageOut]
    day: str
    webhook_secret: str = Field(description="verifies this tenant's webhooks (Standard Webhooks)")


def render(
    tenant_id: str, tier: str, limits: Limits, snap: AccountSnapshot, settings: Settings
) -> Account:
    return Account(
        webhook_secret=tenant_secret(settings, tenant_id),
        tenant_id=tenant_id,
        tier=tier,
        limits=limits,
        balance_usd=micro_usd_to_usd(snap.balance_micro_usd),
        reserved_usd=micro_usd_to_usd(snap.reserved_micro_usd),
        available_usd=micro_usd_to_usd(snap.available_micro_usd),
        spent_usd=micro_usd_to_usd(snap.spent_micro_usd),
        running_jobs=snap.running,
        queued_jobs=snap.queued,
        usage_today=UsageOut.of(snap.today),
        usage_today_by_app={
            app or "(none)": UsageOut.of(u) for app, u in snap.today.by_app.items()
        },
        day=snap.today.day,
    )


@router.get("/v1/account", responses=errors(401, 503))
async def get_account(tenant: CurrentTenant, settings: SettingsDep) -> Account:
    try:
        snap = await accounts.snapshot(settings, tenant)
    except StoreUnavailable as exc:
        raise unavailable("account") from exc
    return render(tenant.id, tenant.tier, tenant.limits, snap, settings)


def _admin(request: Request, settings: SettingsDep) -> None:
    expected = settings.admin_api_key.get_secret_value()
    given = api_key_from(request) or ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise APIError(ErrorCode.UNAUTHORIZED, "admin key required")


class CreditTopUp(BaseModel):
    amount_usd: float = Field(gt=0, le=1_000_000, description="credits to add, in USD")
    reference: str | None = Field(
        default=None, max_length=128, description="idempotency reference; a repeat adds nothing"
    )


@router.post(
    "/v1/admin/tenants/{tenant_id}/credits",
    responses=errors(400, 401, 404, 408, 413, 415, 503),
    openapi_extra=request_body_doc([CreditTopUp]),
)
async def add_credits(
    tenant_id: str,
    request: Request,
    settings: SettingsDep,
) -> Account:
    _admin(request, settings)
    body = parse(CreditTopUp, await json_object(request))
    directory: TenantDirectory = request.app.state.tenants
    tenant = directory.get(tenant_id)
    if tenant is None:
        raise APIError(ErrorCode.NOT_FOUND, f"tenant {tenant_id} not found")
    top_up = TopUp(
        reference=body.reference or uuid.uuid4().hex,
        amount_micro_usd=round(body.amount_usd * 1_000_000),
    )
    try:
        snap = await accounts.top_up(settings, tenant, top_up)
    except StoreUnavailable as exc:
        raise unavailable("account") from exc
    return render(tenant.id, tenant.tier, tenant.limits, snap, settings)
