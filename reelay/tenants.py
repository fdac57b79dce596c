"""Who is calling: tenants, their tiers and limits, and their API keys.

Tenants come from a TOML file (`REELAY_TENANTS_FILE`); keys are stored there only as SHA-256
hashes. The file is re-read when it changes, so removing a key revokes it without a restart.
`REELAY_DEV_API_KEY` adds a `dev` tenant on the Pro tier with a generous balance.
"""

from __future__ import annotations

import hashlib
import threading
import time
import tomllib
from pathlib import Path

import structlog
from pydantic import BaseModel, Field, ValidationError

from reelay.settings import Settings

log = structlog.get_logger()

DEV_TENANT_ID = "dev"
DEV_OPENING_BALANCE_USD = 1000.0
RELOAD_CHECK_SECONDS = 1.0


class Limits(BaseModel):
    concurrent_jobs: int = Field(ge=1)
    jobs_per_day: int = Field(ge=0)


# Seed 000's tiers; Enterprise is "custom": a high default, overridable per tenant.
DEFAULT_TIERS: dict[str, Limits] = {
    "free": Limits(concurrent_jobs=1, jobs_per_day=5),
    "pro": Limits(concurrent_jobs=5, jobs_per_day=100),
    "enterprise": Limits(concurrent_jobs=50, jobs_per_day=10_000),
}


class Tenant(BaseModel):
    id: str
    tier: str
    limits: Limits
    opening_balance_usd: float = 0.0

    @property
    def opening_balance_micro_usd(self) -> int:
        return round(self.opening_balance_usd * 1_000_000)


class TenantEntry(BaseModel):
    """One `[[tenants]]` table of the file."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    tier: str = "free"
    opening_balance_usd: float = Field(default=0.0, ge=0)
    key_hashes: list[str] = Field(default_factory=list)
    concurrent_jobs: int | None = Field(default=None, ge=1)
    jobs_per_day: int | None = Field(default=None, ge=0)


class TenantsFile(BaseModel):
    tiers: dict[str, Limits] = Field(default_factory=dict)
    tenants: list[TenantEntry] = Field(default_factory=list)


def hash_key(api_key: str) -> str:
    """How a key is stored in the tenants file."""
    return "sha256:" + hashlib.sha256(api_key.encode()).hexdigest()


class TenantDirectory:
    """API key → tenant, from the tenants file (re-read on change) and the dev key."""

    def __init__(self, settings: Settings) -> None:
        self._path = settings.tenants_file
        self._dev_key = settings.dev_api_key
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._checked = 0.0
        self._by_hash: dict[str, Tenant] = {}
        self._by_id: dict[str, Tenant] = {}
        self._load()
        if self._path is not None:
            self._mtime = self._path.stat().st_mtime
            self._checked = time.monotonic()

    def _load(self) -> None:
        tiers = dict(DEFAULT_TIERS)
        by_hash: dict[str, Tenant] = {}
        by_id: dict[str, Tenant] = {}
        if self._dev_key:
            dev = Tenant(
                id=DEV_TENANT_ID,
                tier="pro",
                limits=tiers["pro"],
                opening_balance_usd=DEV_OPENING_BALANCE_USD,
            )
            by_hash[hash_key(self._dev_key)] = dev
            by_id[dev.id] = dev
        if self._path is not None:
            parsed = _read(self._path)
            tiers.update(parsed.tiers)
            for entry in parsed.tenants:
                base = tiers.get(entry.tier)
                if base is None:
                    raise ValueError(f"tenant {entry.id}: unknown tier {entry.tier!r}")
                tenant = Tenant(
                    id=entry.id,
                    tier=entry.tier,
                    opening_balance_usd=entry.opening_balance_usd,
                    limits=Limits(
                        concurrent_jobs=entry.concurrent_jobs or base.concurrent_jobs,
                        jobs_per_day=(
                            base.jobs_per_day if entry.jobs_per_day is None else entry.jobs_per_day
                        ),
                    ),
                )
                by_id[tenant.id] = tenant
                for key_hash in entry.key_hashes:
                    by_hash[key_hash.strip().lower()] = tenant
        self._by_hash, self._by_id = by_hash, by_id

    def _refresh(self) -> None:
        """Re-read the file when it changed (checked at most once a second)."""
        if self._path is None or time.monotonic() - self._checked < RELOAD_CHECK_SECONDS:
            return
        with self._lock:
            self._checked = time.monotonic()
            try:
                mtime = self._path.stat().st_mtime
            except OSError:
                return
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._load()
                except ValueError:
                    log.exception("tenants file is invalid; keeping the previous tenants")

    def authenticate(self, api_key: str) -> Tenant | None:
        self._refresh()
        return self._by_hash.get(hash_key(api_key))

    def get(self, tenant_id: str) -> Tenant | None:
        self._refresh()
        return self._by_id.get(tenant_id)


def _read(path: Path) -> TenantsFile:
    try:
        return TenantsFile.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ValueError(f"cannot read tenants file {path}: {exc}") from exc
