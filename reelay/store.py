"""The ledgers' transactional store: one row per tenant holding its `AccountState`.

Every change is one short transaction that locks the tenant's row (`SELECT ... FOR UPDATE`
on PostgreSQL; `BEGIN IMMEDIATE`, the database's one write lock, on SQLite), runs the pure
`Ledger` on it and writes it back. A `Refusal` raised by the ledger rolls the transaction
back, so a refused submit changes nothing. Every call is bounded by the store's timeout and
fails as `StoreUnavailable` (the API answers 503 with Retry-After), never hangs.

The schema is created at start-up (`metadata.create_all`); `reelay_schema_version` holds the
version it was created at, for a migration tool (Alembic) to take over from when it changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from reelay.accounts import AccountState, Ledger

SCHEMA_VERSION = 1
# How many transaction timeouts a write may wait for its turn in this process (SQLite).
WRITE_QUEUE_TIMEOUTS = 10
T = TypeVar("T")

metadata = MetaData()
accounts = Table(
    "reelay_accounts",
    metadata,
    Column("tenant_id", String(200), primary_key=True),
    Column("state", Text, nullable=False, doc="the tenant's AccountState as JSON"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
schema_version = Table(
    "reelay_schema_version", metadata, Column("version", Integer, primary_key=True)
)


class StoreUnavailable(Exception):
    """The store did not answer in time or refused the connection."""


class LedgerStore:
    def __init__(self, engine: AsyncEngine, timeout_seconds: float) -> None:
        self.engine = engine
        self.timeout_seconds = timeout_seconds
        self._sqlite = engine.dialect.name == "sqlite"
        self._reader = engine.execution_options(reelay_read_only=True)
        # SQLite has one writer at a time: queue this process's writers here rather than in
        # SQLite's busy handler, whose back-off sleeps would dominate the latency.
        self._write_lock = asyncio.Lock() if self._sqlite else None

    @classmethod
    async def open(cls, url: str, timeout_seconds: float = 5.0) -> LedgerStore:
        """Connect and create the schema when missing."""
        parsed = make_url(url)
        connect_args: dict[str, Any] = {}
        # A dropped server connection is noticed on checkout (SQLite has none to drop).
        pre_ping = parsed.get_backend_name() != "sqlite"
        if not pre_ping:
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            connect_args = {"timeout": timeout_seconds}
        elif parsed.get_driver_name() == "asyncpg":
            connect_args = {"timeout": timeout_seconds, "command_timeout": timeout_seconds}
        engine = create_async_engine(url, connect_args=connect_args, pool_pre_ping=pre_ping)
        if engine.dialect.name == "sqlite":
            _sqlite_transactions(engine)
        store = cls(engine, timeout_seconds)
        async with store._bounded(), engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                store._insert(schema_version)
                .values(version=SCHEMA_VERSION)
                .on_conflict_do_nothing()
            )
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def change(
        self, tenant_id: str, opening_micro_usd: int, change: Callable[[Ledger], T]
    ) -> T:
        """Run `change` on the tenant's ledger in one transaction (the account is opened with
        its opening balance on first use); an exception from it rolls everything back."""
        async with self._writer(), self._bounded(), self.engine.begin() as conn:
            state = await self._locked(conn, tenant_id, opening_micro_usd)
            return await self._apply(conn, tenant_id, state, change)

    async def _apply(
        self, conn: AsyncConnection, tenant_id: str, state: str, change: Callable[[Ledger], T]
    ) -> T:
        ledger = Ledger(AccountState.model_validate_json(state))
        result = change(ledger)
        after = ledger.state.model_dump_json()
        if after != state:
            await conn.execute(
                update(accounts)
                .where(accounts.c.tenant_id == tenant_id)
                .values(state=after, updated_at=datetime.now(UTC))
            )
        return result

    async def change_existing(self, tenant_id: str, change: Callable[[Ledger], T]) -> T | None:
        """`change` on a ledger that exists (None when the tenant has none: nothing to settle,
        and no account is opened with a made-up balance)."""
        async with self._writer(), self._bounded(), self.engine.begin() as conn:
            query = select(accounts.c.state).where(accounts.c.tenant_id == tenant_id)
            state = (await conn.execute(query.with_for_update())).scalar_one_or_none()
            if state is None:
                return None
            return await self._apply(conn, tenant_id, state, change)

    async def read(self, tenant_id: str, opening_micro_usd: int) -> Ledger:
        """The tenant's ledger as committed (a fresh one when it has none yet); locks nothing."""
        async with self._bounded(), self._reader.connect() as conn:
            row = await conn.execute(
                select(accounts.c.state).where(accounts.c.tenant_id == tenant_id)
            )
            state = row.scalar_one_or_none()
        if state is None:
            return Ledger.open(tenant_id, opening_micro_usd, datetime.now(UTC))
        return Ledger(AccountState.model_validate_json(state))

    async def tenant_ids(self) -> list[str]:
        async with self._bounded(), self._reader.connect() as conn:
            rows = await conn.execute(select(accounts.c.tenant_id))
            return [row[0] for row in rows]

    async def _locked(self, conn: AsyncConnection, tenant_id: str, opening_micro_usd: int) -> str:
        """The tenant's row, locked for this transaction (inserted when missing)."""
        query = select(accounts.c.state).where(accounts.c.tenant_id == tenant_id)
        state = (await conn.execute(query.with_for_update())).scalar_one_or_none()
        if state is None:
            now = datetime.now(UTC)
            fresh = Ledger.open(tenant_id, opening_micro_usd, now)
            await conn.execute(
                self._insert(accounts)
                .values(tenant_id=tenant_id, state=fresh.state.model_dump_json(), updated_at=now)
                .on_conflict_do_nothing()
            )
            state = (await conn.execute(query.with_for_update())).scalar_one()
        return str(state)

    def _insert(self, table: Table) -> Any:
        return sqlite_insert(table) if self._sqlite else pg_insert(table)

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        """This process's turn to write (SQLite). The wait is bounded apart from the
        transaction's own timeout: a burst queues here longer than one transaction may take."""
        if self._write_lock is None:
            yield
            return
        try:
            async with asyncio.timeout(self.timeout_seconds * WRITE_QUEUE_TIMEOUTS):
                await self._write_lock.acquire()
        except TimeoutError as exc:
            raise StoreUnavailable("ledger store busy: too many writes queued") from exc
        try:
            yield
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                yield
        except (TimeoutError, OSError, SQLAlchemyError) as exc:
            raise StoreUnavailable(f"ledger store unavailable: {exc!r}") from exc


def _sqlite_transactions(engine: AsyncEngine) -> None:
    """WAL (readers never wait for the writer), and `BEGIN IMMEDIATE` so a transaction takes
    the write lock before it reads: two read-modify-writes of one row never interleave."""

    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def _begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get("reelay_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    event.listen(engine.sync_engine, "connect", _connect)
    event.listen(engine.sync_engine, "begin", _begin)
