"""The ledgers' transactional store: a row per tenant account, a row per job, a row per top-up
(and a row per deleted job, which `api.dialects.deletion` keeps here too).

A tenant's account row holds its counters (deposits, spent, reserved, running, queued, today's
usage); each job it admitted has a row (its reservation, its state, its place in the FIFO
queue, and — until its workflow is started — the job's spec: the outbox the API's dispatcher
starts it from). A job admitted with credits and limits off has a row only while it is in the
outbox (`JobState.UNMETERED`). Every change is one short transaction that locks the account row
(`SELECT ... FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE`, the database's one write lock, on
SQLite) and touches only the rows it names, so a submit costs the same with ten jobs on record
or a million. The rules themselves live in `reelay.accounts` (`refusal_for`, `charge`); a
`Refusal` rolls the transaction back, so a refused submit changes nothing. Every call is
bounded by the store's timeout and fails as `StoreUnavailable` (the API answers 503 with
Retry-After), never hangs.

The schema is created at start-up (`metadata.create_all`); `reelay_schema_version` records the
versions it went through. Version 1 kept each account as one JSON document
(`reelay_accounts`); opening a store that has one converts it into rows once (version 2).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping, create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from reelay import idempotency
from reelay.accounts import (
    REMEMBER_DAYS,
    AccountSnapshot,
    AccountState,
    DayUsage,
    Refusal,
    Settlement,
    SubmitJob,
    SubmitOutcome,
    TopUp,
    Usage,
    charge,
    day_of,
    refusal_for,
)
from reelay.errors import ErrorCode
from reelay.jobs import JobSpec

SCHEMA_VERSION = 2
#: Threads reading SQLite (WAL: readers never wait for the writer).
READER_THREADS = 4
T = TypeVar("T")

metadata = MetaData()
accounts = Table(
    "reelay_ledger_accounts",
    metadata,
    Column("tenant_id", String(200), primary_key=True),
    Column("deposits_micro_usd", BigInteger, nullable=False),
    Column("spent_micro_usd", BigInteger, nullable=False),
    Column("reserved_micro_usd", BigInteger, nullable=False),
    Column("running", Integer, nullable=False),
    Column("queued", Integer, nullable=False),
    Column("concurrent_jobs", Integer, doc="the tenant's slots as of its latest submit"),
    Column("next_seq", BigInteger, nullable=False, doc="the next job's place in FIFO order"),
    Column("today", Text, nullable=False, doc="today's DayUsage as JSON"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
jobs = Table(
    "reelay_ledger_jobs",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("tenant_id", String(200), nullable=False),
    Column("state", String(16), nullable=False, doc="running | queued | settled | unmetered"),
    Column("seq", BigInteger, nullable=False),
    Column("reserved_micro_usd", BigInteger, nullable=False),
    Column("app_id", String(200)),
    Column("request_hash", String(128)),
    Column("reserved_at", DateTime(timezone=True), nullable=False),
    Column("day", String(10), nullable=False),
    Column("was_queued", Boolean, nullable=False, default=False),
    Column("started", Boolean, nullable=False, default=False, doc="its workflow was seen"),
    Column("pending_start", Text, doc="the job's spec until its workflow is started (outbox)"),
    Index("reelay_ledger_jobs_queue", "tenant_id", "state", "seq"),
    Index("reelay_ledger_jobs_unconfirmed", "started", "reserved_at"),
)
top_ups = Table(
    "reelay_ledger_top_ups",
    metadata,
    Column("tenant_id", String(200), primary_key=True),
    Column("reference", String(200), primary_key=True),
    Column("day", String(10), nullable=False),
)
schema_version = Table(
    "reelay_schema_version", metadata, Column("version", Integer, primary_key=True)
)
#: Jobs their tenants deleted (`api.dialects.deletion`): a read of one answers 404.
deleted_jobs = Table(
    "reelay_deleted_jobs",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("tenant_id", String(200), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=False),
)
#: One row: since when every deletion is in `deleted_jobs` (those before it, and during an
#: upgrade's rollout, left a tombstone in S3 instead).
deletions_since = Table(
    "reelay_deletions_since",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)
#: How long after an upgrade APIs of the version before may still leave tombstones in S3.
DELETIONS_ROLLOUT = timedelta(days=1)
#: Version 1's one JSON document per account, read once to convert it into rows.
_V1_ACCOUNTS = "reelay_accounts"


class JobState(StrEnum):
    RUNNING = "running"
    QUEUED = "queued"
    SETTLED = "settled"
    #: Admitted with credits and limits off: the row is only the job's outbox entry (it
    #: reserves and counts nothing) and goes once the job's workflow is started.
    UNMETERED = "unmetered"


#: The statements of every submit and settle, built once: building them cost more than
#: running them (a submit's transaction took 2.1-2.4 ms of CPU, 0.9-1.0 ms with these).
_ACCOUNT_ROW = (
    select(accounts).where(accounts.c.tenant_id == bindparam("the_tenant")).with_for_update()
)
_JOB_ROW = select(jobs).where(jobs.c.job_id == bindparam("the_job"))
_SAVE_ACCOUNT = update(accounts).where(accounts.c.tenant_id == bindparam("the_tenant"))
_NEW_JOB = jobs.insert()
_SETTLE_JOB = (
    update(jobs)
    .where(jobs.c.job_id == bindparam("the_job"))
    .values(state=JobState.SETTLED, reserved_micro_usd=0, pending_start=None)
)


class StoreUnavailable(Exception):
    """The store did not answer in time or refused the connection."""


@dataclass
class Unconfirmed:
    """A reservation whose job was not yet seen started."""

    tenant_id: str
    job_id: str
    pending_start: str | None


@dataclass
class _Account:
    """An account row, locked for the transaction that read it."""

    tenant_id: str
    deposits_micro_usd: int
    spent_micro_usd: int
    reserved_micro_usd: int
    running: int
    queued: int
    concurrent_jobs: int | None
    next_seq: int
    today: DayUsage

    @classmethod
    def of(cls, row: RowMapping) -> _Account:
        return cls(
            tenant_id=row["tenant_id"],
            deposits_micro_usd=row["deposits_micro_usd"],
            spent_micro_usd=row["spent_micro_usd"],
            reserved_micro_usd=row["reserved_micro_usd"],
            running=row["running"],
            queued=row["queued"],
            concurrent_jobs=row["concurrent_jobs"],
            next_seq=row["next_seq"],
            today=DayUsage.model_validate_json(row["today"]),
        )

    def values(self) -> dict[str, Any]:
        return {
            "deposits_micro_usd": self.deposits_micro_usd,
            "spent_micro_usd": self.spent_micro_usd,
            "reserved_micro_usd": self.reserved_micro_usd,
            "running": self.running,
            "queued": self.queued,
            "concurrent_jobs": self.concurrent_jobs,
            "next_seq": self.next_seq,
            "today": self.today.model_dump_json(),
            "updated_at": datetime.now(UTC),
        }

    @property
    def available_micro_usd(self) -> int:
        return self.deposits_micro_usd - self.spent_micro_usd - self.reserved_micro_usd

    def app(self, app_id: str | None) -> Usage:
        return self.today.by_app.setdefault(app_id or "", Usage())

    def snapshot(self) -> AccountSnapshot:
        return AccountSnapshot(
            tenant_id=self.tenant_id,
            deposits_micro_usd=self.deposits_micro_usd,
            spent_micro_usd=self.spent_micro_usd,
            reserved_micro_usd=self.reserved_micro_usd,
            balance_micro_usd=self.deposits_micro_usd - self.spent_micro_usd,
            available_micro_usd=self.available_micro_usd,
            running=self.running,
            queued=self.queued,
            today=self.today,
        )


def _fresh(tenant_id: str, deposits_micro_usd: int, now: datetime) -> _Account:
    return _Account(
        tenant_id=tenant_id,
        deposits_micro_usd=deposits_micro_usd,
        spent_micro_usd=0,
        reserved_micro_usd=0,
        running=0,
        queued=0,
        concurrent_jobs=None,
        next_seq=1,
        today=DayUsage(day=day_of(now)),
    )


class LedgerStore:
    """The ledger's transactions. Each runs start to finish as one function on one database
    connection: on SQLite in this process's single writer thread (readers use a pool of
    their own), so the database's write lock is held for the database's own work and never
    across turns of a busy event loop; on PostgreSQL through `run_sync` on an async
    connection, serialised per tenant by its account row's lock."""

    #: Since when the store has every deletion (read as `open` creates the schema).
    deletions_since: datetime

    def __init__(
        self, timeout_seconds: float, *, sync: Engine | None = None, aio: AsyncEngine | None = None
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._sync = sync
        self._aio = aio
        self._sqlite = sync is not None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="ledger-reader")
        self._started = _GroupCommit(self._mark_started_now)
        self._new_job_unless_there = self._insert(jobs).on_conflict_do_nothing()

    @classmethod
    async def open(cls, url: str, timeout_seconds: float = 5.0) -> LedgerStore:
        """Connect, create the schema when missing and convert a version-1 store."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            sync = create_engine(
                parsed.set(drivername="sqlite"),
                connect_args={"timeout": timeout_seconds, "check_same_thread": False},
            )
            _sqlite_transactions(sync)
            store = cls(timeout_seconds, sync=sync)
        else:
            connect_args: dict[str, Any] = {}
            if parsed.get_driver_name() == "asyncpg":
                connect_args = {"timeout": timeout_seconds, "command_timeout": timeout_seconds}
            # A dropped server connection is noticed on checkout.
            aio = create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)
            store = cls(timeout_seconds, aio=aio)
        await store._write(store._create_schema)
        return store

    def _create_schema(self, conn: Connection) -> None:
        metadata.create_all(conn)
        versions = set(conn.execute(select(schema_version.c.version)).scalars())
        # In a store that existed before (an upgrade), APIs of the version before may still be
        # deleting, with tombstones in S3, until the rollout ends.
        proposed = datetime.now(UTC) + (DELETIONS_ROLLOUT if versions else timedelta(0))
        conn.execute(
            self._insert(deletions_since).values(id=1, since=proposed).on_conflict_do_nothing()
        )
        since = conn.execute(select(deletions_since.c.since)).scalar_one()
        self.deletions_since = since if since.tzinfo else since.replace(tzinfo=UTC)
        if SCHEMA_VERSION not in versions:
            self._convert_v1(conn)
            conn.execute(
                self._insert(schema_version).values(version=SCHEMA_VERSION).on_conflict_do_nothing()
            )

    async def close(self) -> None:
        if self._aio is not None:
            await self._aio.dispose()
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

    # --- admission and settlement ----------------------------------------------------------

    async def reserve(
        self,
        tenant_id: str,
        opening_micro_usd: int,
        request: SubmitJob,
        now: datetime,
        pending_start: str | None = None,
    ) -> SubmitOutcome:
        """Admit the job or raise `Refusal`: reserve its estimate, count it, give it a slot or
        a place in the queue, and keep `pending_start` (its spec) for the dispatcher. The
        same job id with the same request answers the first outcome (`duplicate`)."""
        spec = request.spec

        def body(conn: Connection) -> SubmitOutcome:
            account = self._account(conn, tenant_id, opening_micro_usd, now)
            seen = self._job(conn, spec.job_id)
            if seen is not None:
                if not idempotency.same_request(seen["request_hash"], request.request_hash):
                    raise Refusal(ErrorCode.IDEMPOTENCY_CONFLICT, idempotency.CONFLICT_MESSAGE)
                return SubmitOutcome(
                    job_id=spec.job_id,
                    queue_position=self._position(conn, seen),
                    available_micro_usd=account.available_micro_usd,
                    duplicate=True,
                )
            refusal = refusal_for(
                request,
                now,
                jobs_today=account.today.jobs,
                available_micro_usd=account.available_micro_usd,
                running=account.running,
                queued=account.queued,
            )
            if refusal is not None:
                raise refusal
            queued = account.running >= request.limits.concurrent_jobs
            conn.execute(
                _NEW_JOB,
                {
                    "job_id": spec.job_id,
                    "tenant_id": tenant_id,
                    "state": JobState.QUEUED if queued else JobState.RUNNING,
                    "seq": account.next_seq,
                    "reserved_micro_usd": spec.estimated_cost_micro_usd,
                    "app_id": spec.app_id,
                    "request_hash": request.request_hash,
                    "reserved_at": now,
                    "day": account.today.day,
                    "was_queued": queued,
                    "started": False,
                    "pending_start": pending_start,
                },
            )
            account.next_seq += 1
            account.reserved_micro_usd += spec.estimated_cost_micro_usd
            account.concurrent_jobs = request.limits.concurrent_jobs
            account.today.jobs += 1
            account.app(spec.app_id).jobs += 1
            if queued:
                account.queued += 1
            else:
                account.running += 1
            self._save(conn, account)
            return SubmitOutcome(
                job_id=spec.job_id,
                request_id=spec.request_id,
                queue_position=account.queued if queued else None,
                available_micro_usd=account.available_micro_usd,
            )

        return await self._write(body)

    async def enqueue(self, spec: JobSpec, request_hash: str | None, now: datetime) -> bool:
        """Keep a job admitted without credits and limits in the outbox (`UNMETERED`), so that
        it is started off the request like any other. False when the job id is there already
        for the same request (a retry); `Refusal` (409) when for another."""

        def body(conn: Connection) -> bool:
            added = conn.execute(
                self._new_job_unless_there,
                {
                    "job_id": spec.job_id,
                    "tenant_id": spec.tenant_id,
                    "state": JobState.UNMETERED,
                    "seq": 0,
                    "reserved_micro_usd": 0,
                    "app_id": spec.app_id,
                    "request_hash": request_hash,
                    "reserved_at": now,
                    "day": day_of(now),
                    "was_queued": False,
                    "started": False,
                    "pending_start": spec.model_dump_json(),
                },
            )
            if added.rowcount:
                return True
            seen = self._job(conn, spec.job_id)
            if seen is not None and not idempotency.same_request(
                seen["request_hash"], request_hash
            ):
                raise Refusal(ErrorCode.IDEMPOTENCY_CONFLICT, idempotency.CONFLICT_MESSAGE)
            return False

        return await self._write(body)

    async def settle(
        self, tenant_id: str, settlement: Settlement, now: datetime, *, resignal: bool = False
    ) -> list[str] | None:
        """Charge a finished job once and release its slot; returns the queued jobs that may
        start now (with `resignal`, every job ever admitted from the queue still running: a
        retried settle re-sends admits its failed attempt may not have). None when the tenant
        has no account (nothing to settle, and no account is opened with a made-up balance)."""

        def body(conn: Connection) -> list[str] | None:
            account = self._existing(conn, tenant_id, now)
            if account is None:
                return None
            job = self._job(conn, settlement.job_id)
            if (
                job is not None
                and job["tenant_id"] == tenant_id
                and job["state"] != JobState.SETTLED
            ):
                cost = charge(settlement, job["reserved_micro_usd"])
                account.reserved_micro_usd -= job["reserved_micro_usd"]
                account.spent_micro_usd += cost
                account.today.micro_usd += cost
                account.today.seconds += settlement.seconds
                app = account.app(job["app_id"])
                app.micro_usd += cost
                app.seconds += settlement.seconds
                self._leave_slot(account, job)
                conn.execute(_SETTLE_JOB, {"the_job": settlement.job_id})
            admitted = self._admit_waiting(conn, account)
            self._save(conn, account)
            if not resignal:
                return admitted
            rows = conn.execute(
                select(jobs.c.job_id).where(
                    jobs.c.tenant_id == tenant_id,
                    jobs.c.state == JobState.RUNNING,
                    jobs.c.was_queued.is_(True),
                )
            )
            return list(rows.scalars())

        return await self._write(body)

    async def forget(self, tenant_id: str, job_id: str) -> list[str]:
        """Undo the reservation of a job that was never started (as if never submitted);
        returns the queued jobs that may start in its slot."""

        def body(conn: Connection) -> list[str]:
            account = self._existing(conn, tenant_id, datetime.now(UTC))
            job = self._job(conn, job_id)
            if account is None or job is None or job["state"] == JobState.SETTLED:
                return []
            account.reserved_micro_usd -= job["reserved_micro_usd"]
            self._leave_slot(account, job)
            if job["day"] == account.today.day:
                account.today.jobs -= 1
                account.app(job["app_id"]).jobs -= 1
            conn.execute(delete(jobs).where(jobs.c.job_id == job_id))
            admitted = self._admit_waiting(conn, account)
            self._save(conn, account)
            return admitted

        return await self._write(body)

    async def top_up(
        self, tenant_id: str, opening_micro_usd: int, top_up: TopUp, now: datetime
    ) -> AccountSnapshot:
        """Add credits once per reference."""

        def body(conn: Connection) -> AccountSnapshot:
            account = self._account(conn, tenant_id, opening_micro_usd, now)
            added = conn.execute(
                self._insert(top_ups)
                .values(tenant_id=tenant_id, reference=top_up.reference, day=account.today.day)
                .on_conflict_do_nothing()
            )
            if added.rowcount:
                account.deposits_micro_usd += top_up.amount_micro_usd
                self._save(conn, account)
            return account.snapshot()

        return await self._write(body)

    # --- the outbox and the reaper ---------------------------------------------------------

    async def mark_started(self, job_id: str) -> None:
        """The job's workflow exists: its spec leaves the outbox, and the reaper leaves it be
        (an unmetered job's row goes: it was only the outbox entry). Marks that arrive while
        one is being written are written together next (`_GroupCommit`)."""
        await self._started.add(job_id)

    async def _mark_started_now(self, job_ids: list[str]) -> None:
        def body(conn: Connection) -> None:
            named = jobs.c.job_id.in_(job_ids)
            conn.execute(delete(jobs).where(named, jobs.c.state == JobState.UNMETERED))
            conn.execute(update(jobs).where(named).values(started=True, pending_start=None))

        await self._write(body)

    async def mark_deleted(self, job_id: str, tenant_id: str) -> None:
        """Record that `tenant_id` deleted `job_id` (again: no change)."""

        def body(conn: Connection) -> None:
            conn.execute(
                self._insert(deleted_jobs)
                .values(job_id=job_id, tenant_id=tenant_id, deleted_at=datetime.now(UTC))
                .on_conflict_do_nothing()
            )

        await self._write(body)

    async def deleted_among(self, job_ids: list[str]) -> set[str]:
        """Those of `job_ids` that were deleted (since `deletions_since`)."""
        if not job_ids:
            return set()

        def body(conn: Connection) -> set[str]:
            query = select(deleted_jobs.c.job_id).where(deleted_jobs.c.job_id.in_(job_ids))
            return set(conn.execute(query).scalars())

        return await self._read(body)

    async def pending_start(self, job_id: str) -> str | None:
        """The spec of an admitted job whose workflow is not started yet, else None."""

        def body(conn: Connection) -> str | None:
            query = select(jobs.c.pending_start).where(jobs.c.job_id == job_id)
            value = conn.execute(query).scalar_one_or_none()
            return str(value) if value is not None else None

        return await self._read(body)

    async def unconfirmed(self, reserved_before: datetime, limit: int = 1000) -> list[Unconfirmed]:
        """Reservations older than `reserved_before` whose job was never seen started."""

        def body(conn: Connection) -> list[Unconfirmed]:
            rows = conn.execute(
                select(jobs.c.tenant_id, jobs.c.job_id, jobs.c.pending_start)
                .where(
                    jobs.c.started.is_(False),
                    jobs.c.reserved_at < reserved_before,
                    jobs.c.state != JobState.SETTLED,
                )
                .order_by(jobs.c.reserved_at)
                .limit(limit)
            )
            return [Unconfirmed(r.tenant_id, r.job_id, r.pending_start) for r in rows]

        return await self._read(body)

    # --- reads -------------------------------------------------------------------------------

    async def snapshot(self, tenant_id: str, opening_micro_usd: int) -> AccountSnapshot:
        """The account as committed (a fresh one when it has none yet); locks nothing."""
        now = datetime.now(UTC)

        def body(conn: Connection) -> RowMapping | None:
            query = select(accounts).where(accounts.c.tenant_id == tenant_id)
            return conn.execute(query).mappings().one_or_none()

        row = await self._read(body)
        account = _Account.of(row) if row else _fresh(tenant_id, opening_micro_usd, now)
        if account.today.day != day_of(now):
            account.today = DayUsage(day=day_of(now))
        return account.snapshot()

    async def position(self, job_id: str) -> int | None:
        """Where a queued job waits (1 is next), None when it is not waiting."""

        def body(conn: Connection) -> int | None:
            job = self._job(conn, job_id)
            return self._position(conn, job) if job is not None else None

        return await self._read(body)

    async def job_state(self, job_id: str) -> JobState | None:
        def body(conn: Connection) -> JobState | None:
            job = self._job(conn, job_id)
            return JobState(job["state"]) if job is not None else None

        return await self._read(body)

    # --- inside a transaction ----------------------------------------------------------------

    def _account(
        self, conn: Connection, tenant_id: str, opening_micro_usd: int, now: datetime
    ) -> _Account:
        """The tenant's account row, locked and rolled to today (opened when missing)."""
        account = self._existing(conn, tenant_id, now)
        if account is None:
            fresh = _fresh(tenant_id, opening_micro_usd, now)
            conn.execute(
                self._insert(accounts)
                .values(tenant_id=tenant_id, **fresh.values())
                .on_conflict_do_nothing()
            )
            account = self._existing(conn, tenant_id, now)
            assert account is not None
        return account

    def _existing(self, conn: Connection, tenant_id: str, now: datetime) -> _Account | None:
        """The tenant's account row if it has one, locked and rolled to today."""
        row = conn.execute(_ACCOUNT_ROW, {"the_tenant": tenant_id}).mappings().one_or_none()
        if row is None:
            return None
        account = _Account.of(row)
        today = day_of(now)
        if account.today.day != today:
            account.today = DayUsage(day=today)
            oldest = day_of(now - timedelta(days=REMEMBER_DAYS))
            conn.execute(
                delete(jobs).where(
                    jobs.c.tenant_id == tenant_id,
                    jobs.c.state == JobState.SETTLED,
                    jobs.c.day < oldest,
                )
            )
            conn.execute(
                delete(top_ups).where(top_ups.c.tenant_id == tenant_id, top_ups.c.day < oldest)
            )
        return account

    def _save(self, conn: Connection, account: _Account) -> None:
        conn.execute(_SAVE_ACCOUNT, {"the_tenant": account.tenant_id, **account.values()})

    def _job(self, conn: Connection, job_id: str) -> RowMapping | None:
        return conn.execute(_JOB_ROW, {"the_job": job_id}).mappings().one_or_none()

    def _position(self, conn: Connection, job: RowMapping) -> int | None:
        if job["state"] != JobState.QUEUED:
            return None
        ahead = select(func.count()).where(
            and_(
                jobs.c.tenant_id == job["tenant_id"],
                jobs.c.state == JobState.QUEUED,
                jobs.c.seq <= job["seq"],
            )
        )
        return int((conn.execute(ahead)).scalar_one())

    @staticmethod
    def _leave_slot(account: _Account, job: RowMapping) -> None:
        if job["state"] == JobState.RUNNING:
            account.running -= 1
        elif job["state"] == JobState.QUEUED:
            account.queued -= 1

    def _admit_waiting(self, conn: Connection, account: _Account) -> list[str]:
        """Move waiting jobs into free slots, first come first served."""
        free = (account.concurrent_jobs or 1) - account.running
        if free <= 0 or account.queued <= 0:
            return []
        rows = conn.execute(
            select(jobs.c.job_id)
            .where(jobs.c.tenant_id == account.tenant_id, jobs.c.state == JobState.QUEUED)
            .order_by(jobs.c.seq)
            .limit(free)
        )
        admitted = list(rows.scalars())
        if admitted:
            conn.execute(
                update(jobs).where(jobs.c.job_id.in_(admitted)).values(state=JobState.RUNNING)
            )
            account.running += len(admitted)
            account.queued -= len(admitted)
        return admitted

    def _convert_v1(self, conn: Connection) -> None:
        """Version 1's JSON documents, one per account, into rows (once, at open)."""
        if not inspect(conn).has_table(_V1_ACCOUNTS):
            return
        legacy = Table(_V1_ACCOUNTS, MetaData(), Column("state", Text))
        for (raw,) in conn.execute(select(legacy.c.state)):
            self._insert_v1(conn, AccountState.model_validate_json(raw))

    def _insert_v1(self, conn: Connection, state: AccountState) -> None:
        queue = {job_id: n for n, job_id in enumerate(state.queue)}
        account = _Account(
            tenant_id=state.tenant_id,
            deposits_micro_usd=state.deposits_micro_usd,
            spent_micro_usd=state.spent_micro_usd,
            reserved_micro_usd=state.reserved_micro_usd,
            running=len(state.running),
            queued=len(state.queue),
            concurrent_jobs=state.limits.concurrent_jobs if state.limits else None,
            next_seq=len(state.jobs) + len(state.reservations) + 1,  # above every job's
            today=state.today,
        )
        conn.execute(
            self._insert(accounts)
            .values(tenant_id=state.tenant_id, **account.values())
            .on_conflict_do_nothing()
        )
        # Settled jobs first (remembered for retries), then the reservations, queued ones in
        # their queue order.
        order = [*(j for j in state.jobs if j not in state.reservations), *state.reservations]
        order.sort(key=lambda job_id: queue.get(job_id, -1))
        for seq, job_id in enumerate(order, start=1):
            conn.execute(
                self._insert(jobs)
                .values(job_id=job_id, tenant_id=state.tenant_id, seq=seq, **_v1_job(state, job_id))
                .on_conflict_do_nothing()
            )
        for reference, seen in state.top_ups.items():
            conn.execute(
                self._insert(top_ups)
                .values(tenant_id=state.tenant_id, reference=reference, day=seen.day)
                .on_conflict_do_nothing()
            )

    # --- plumbing ----------------------------------------------------------------------------

    def _insert(self, table: Table) -> Any:
        return sqlite_insert(table) if self._sqlite else pg_insert(table)

    async def _write(self, body: Callable[[Connection], T]) -> T:
        """`body` in one transaction (committed when it returns, rolled back when it raises).
        Waiting for the writer is bounded by the store's timeout; a transaction that has begun
        is seen through, so a caller never gives up on a change that then commits."""
        if self._aio is not None:
            async with self._bounded(), self._aio.begin() as conn:
                return await conn.run_sync(body)
        assert self._sync is not None
        engine = self._sync
        turn = _Turn()

        def run() -> T:
            if not turn.begin():
                raise _Abandoned
            with engine.begin() as conn:
                return body(conn)

        future = asyncio.get_running_loop().run_in_executor(self._writer, run)
        try:
            try:
                return await asyncio.wait_for(asyncio.shield(future), self.timeout_seconds)
            except TimeoutError:
                if turn.abandon():
                    future.add_done_callback(_ignore_outcome)
                    raise StoreUnavailable("ledger store busy: too many writes queued") from None
                return await future
        except (OSError, SQLAlchemyError) as exc:
            raise StoreUnavailable(f"ledger store unavailable: {exc!r}") from exc

    async def _read(self, body: Callable[[Connection], T]) -> T:
        """`body` on a read-only connection (it sees committed data and locks nothing)."""
        if self._aio is not None:
            async with self._bounded(), self._aio.connect() as conn:
                return await conn.run_sync(body)
        assert self._sync is not None
        engine = self._sync.execution_options(reelay_read_only=True)

        def run() -> T:
            with engine.begin() as conn:
                return body(conn)

        loop = asyncio.get_running_loop()
        async with self._bounded():
            return await loop.run_in_executor(self._readers, run)

    @asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                yield
        except (TimeoutError, OSError, SQLAlchemyError) as exc:
            raise StoreUnavailable(f"ledger store unavailable: {exc!r}") from exc


class _GroupCommit:
    """One transaction for the items added close together (a group commit): those added while
    one is being written go in the next, so a burst of job starts costs the writer a few
    transactions rather than one a job. `add` returns once its item is written, or raises
    what writing it raised."""

    def __init__(self, write: Callable[[list[str]], Awaitable[None]]) -> None:
        self._write_batch = write
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._writing: asyncio.Task[None] | None = None

    async def add(self, item: str) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(item, []).append(done)
        if self._writing is None:
            self._writing = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                waiters = [done for waiting in batch.values() for done in waiting]
                try:
                    await self._write_batch(list(batch))
                except Exception as exc:
                    for done in _open(waiters):
                        done.set_exception(exc)
                except BaseException:  # cancelled (shutting down): so are the waiters
                    for done in _open(waiters):
                        done.cancel()
                    raise
                else:
                    for done in _open(waiters):
                        done.set_result(None)
        finally:
            self._writing = None


def _open(waiters: list[asyncio.Future[None]]) -> list[asyncio.Future[None]]:
    """Those still waiting (a waiter cancelled meanwhile takes no outcome)."""
    return [done for done in waiters if not done.done()]


class _Abandoned(Exception):
    """A write whose caller stopped waiting before it began: it does not run."""


class _Turn:
    """A queued write's turn, which the writer thread begins unless the caller gave up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "waiting"

    def begin(self) -> bool:
        with self._lock:
            if self._state == "abandoned":
                return False
            self._state = "running"
            return True

    def abandon(self) -> bool:
        """True when the write had not begun (it never will); False when it is running."""
        with self._lock:
            if self._state == "waiting":
                self._state = "abandoned"
                return True
            return False


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it


def _v1_job(state: AccountState, job_id: str) -> dict[str, Any]:
    """A job's row values from a version-1 account document."""
    reservation = state.reservations.get(job_id)
    remembered = state.jobs.get(job_id)
    day = remembered.day if remembered else state.today.day
    if reservation is None:
        request_hash = remembered.request_hash if remembered else None
        return {
            "state": JobState.SETTLED,
            "reserved_micro_usd": 0,
            "request_hash": request_hash,
            "reserved_at": datetime.fromisoformat(day).replace(tzinfo=UTC),
            "day": day,
            "started": True,
        }
    queued = job_id in state.queue
    return {
        "state": JobState.QUEUED if queued else JobState.RUNNING,
        "reserved_micro_usd": reservation.amount_micro_usd,
        "app_id": reservation.app_id,
        "request_hash": reservation.request_hash,
        "reserved_at": reservation.reserved_at or datetime.now(UTC),
        "day": day,
        "was_queued": queued,
        "started": reservation.started,
    }


def _sqlite_transactions(engine: Engine) -> None:
    """WAL (readers never wait for the writer), and `BEGIN IMMEDIATE` so a transaction takes
    the write lock before it reads: two read-modify-writes of one row never interleave."""

    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins
        cursor = dbapi_connection.cursor()
        # WAL belongs to the file, so it is switched on once: the switch needs the file to
        # itself, and asking on every connect can time out behind other processes' readers
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def _begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get("reelay_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    event.listen(engine, "connect", _connect)
    event.listen(engine, "begin", _begin)
