"""Who is calling: API keys to tenants."""

from __future__ import annotations

import hmac

from pydantic import BaseModel

from reelay.settings import Settings

DEV_TENANT_ID = "dev"


class Tenant(BaseModel):
    id: str
    tier: str


class TenantDirectory:
    def __init__(self, settings: Settings) -> None:
        self._dev_key = settings.dev_api_key

    def authenticate(self, api_key: str) -> Tenant | None:
        if self._dev_key and hmac.compare_digest(api_key.encode(), self._dev_key.encode()):
            return Tenant(id=DEV_TENANT_ID, tier="pro")
        return None
