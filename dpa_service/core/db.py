"""Engines, sessions and the tenant scope of each transaction.

Every unit of work runs in `Database.transaction(scope)`: one transaction, whose tenant scope is applied
on PostgreSQL with `set_config(..., true)` (transaction-local) so that row-level security filters every
statement a second time. A session opened any other way has no tenant set, and the policies then show it nothing.

Services own their transactions: each public service function opens `db.transaction(scope)` itself. Called while
another service function's transaction is open (in the same task, same scope), it joins that transaction instead
of opening a second one, the way Django's `atomic()` nests; so use cases compose (creating a tenant adds its owner,
executing a DPA records the transfers it implies) and commit or roll back as one.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import DateTime, TypeDecorator

from dpa_service.core.clock import as_utc
from dpa_service.core.settings import DatabaseSettings

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SET_SCOPE = text("SELECT set_config('app.tenant_id', :tenant, true), set_config('app.cross_tenant', :cross, true)")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass a timezone-aware UTC value")
        return as_utc(value) if dialect.name != "sqlite" else as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value) if value is not None else None


@dataclass(frozen=True)
class Scope:
    """Whose rows a transaction may see.

    A Subscriber's scope is its tenant. Staff work across tenants (`cross_tenant`), or narrow to one tenant
    when they act on it. `Scope.system()` is for the few platform-level steps (authentication, CLI) that must look
    across tenants before any principal is known.
    """

    tenant_id: uuid.UUID | None = None
    cross_tenant: bool = False

    @classmethod
    def tenant(cls, tenant_id: uuid.UUID) -> Scope:
        return cls(tenant_id=tenant_id)

    @classmethod
    def system(cls) -> Scope:
        return cls(cross_tenant=True)


async def serialize(session: AsyncSession, key: int) -> None:
    """One such transaction at a time, whichever process runs it: a transaction-scoped advisory lock on PostgreSQL
    (held until commit or rollback); SQLite's writers are already serialized by BEGIN IMMEDIATE."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def tenant_of(session: AsyncSession, requested: uuid.UUID | None = None) -> uuid.UUID | None:
    """The tenant a query must be limited to: the session's own, or else the one staff asked for (None: all)."""
    scope: Scope = session.info["scope"]
    return scope.tenant_id or requested


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit BEGIN cannot say IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Signed contracts must survive a crash: WAL with a full fsync on every commit.
        for pragma in (
            "PRAGMA foreign_keys=ON",
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("dpa_single_read"):
            return  # one SELECT in autocommit mode is consistent by itself: no BEGIN/ROLLBACK round trips
        # Writers take the write lock up front, so two writers queue instead of failing with SQLITE_BUSY.
        conn.exec_driver_sql(f"BEGIN {'IMMEDIATE' if options.get('dpa_write') else 'DEFERRED'}")


def _postgres_set_role(engine: AsyncEngine, role: str) -> None:
    if not ROLE_NAME.match(role):
        raise ValueError(f"DATABASE_APP_ROLE {role!r} is not a plain lowercase role name")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The owner login serves through the non-owner application role, so row-level security applies.
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET ROLE "{role}"')
        cursor.close()


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        # No pre-ping: it costs three round trips per checkout (BEGIN, a ping, ROLLBACK), a third of a short
        # request's. A connection the server dropped fails on a transaction's first statement (setting its scope),
        # which `Database` retries once on a fresh one (`_retried_once`). The statement cache holds every statement
        # the app issues per connection, so none is parsed twice (asyncpg's default of 100 churned).
        kwargs.update(
            pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False,
            connect_args={"prepared_statement_cache_size": 1000},
        )  # fmt: skip
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _sqlite_setup(engine)
    return engine


_ATTEMPTS = (1, 2)


def _retried_once(error: BaseException, attempt: int) -> bool:
    """Whether a failed first statement is worth one more try: the connection was gone (a database restart or
    failover dropped the pool's connections; SQLAlchemy has invalidated them) and nothing has run yet."""
    return isinstance(error, DBAPIError) and error.connection_invalidated and attempt == _ATTEMPTS[0]


@dataclass
class _OpenTransaction:
    database: Database
    session: AsyncSession = field(repr=False)
    scope: Scope
    write: bool
    open: bool = True


# The transaction the current task is in, if any (see `Database.transaction`).
_current: ContextVar[_OpenTransaction | None] = ContextVar("dpa_open_transaction", default=None)


class Database:
    """The application's connection to its database, as the non-owner application role."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.is_postgres = settings.is_postgres
        url = settings.app_url or settings.url
        self.engine = make_engine(url, pool_size=settings.pool_size, echo=settings.echo)
        if self.is_postgres and not settings.app_url:
            _postgres_set_role(self.engine, settings.app_role)
        self._read = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._single_read = self.engine.execution_options(dpa_single_read=True)
        self._write = async_sessionmaker(
            self.engine.execution_options(dpa_write=True), expire_on_commit=False, autoflush=False
        )

    @asynccontextmanager
    async def transaction(self, scope: Scope, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One transaction in `scope`: committed when the block ends, rolled back if it raises.

        Inside another open transaction of this database (same task), the block joins it: same session, one commit.
        Joining needs the same scope, and a write cannot join a read-only transaction: both are programming errors.
        """
        outer = _current.get()
        if outer is not None and outer.open and outer.database is self:
            if outer.scope != scope:
                raise RuntimeError(f"a step in {scope} cannot join a transaction in {outer.scope}")
            if write and not outer.write:
                raise RuntimeError("a write cannot join a read-only transaction")
            yield outer.session
            return
        maker = self._write if write else self._read
        async with self._begun(maker, scope) as session:
            state = _OpenTransaction(self, session, scope, write)
            token = _current.set(state)
            try:
                yield session
            finally:
                state.open = False
                _current.reset(token)

    @asynccontextmanager
    async def _begun(self, maker: async_sessionmaker[AsyncSession], scope: Scope) -> AsyncIterator[AsyncSession]:
        """A session in a transaction begun in `scope` (its first statement, on a fresh connection if the pooled
        one was dropped by the server), committed when the block ends and rolled back if it raises."""
        for attempt in _ATTEMPTS:
            session = maker()
            try:
                begun = await session.begin()
                session.info["scope"] = scope
                if self.is_postgres:
                    await session.execute(_SET_SCOPE, self._scope_params(scope))
                break
            except BaseException as error:  # cancelled or failed: the connection goes back either way
                await asyncio.shield(session.close())
                if not _retried_once(error, attempt):
                    raise
        async with session:  # closes it (shielded from a second cancellation) on every path
            try:
                yield session
            except BaseException:
                await begun.rollback()
                raise
            else:
                await begun.commit()

    async def flush_open(self) -> None:
        """Write the open transaction's pending ORM changes (sessions do not autoflush), so that statements issued
        next in the same transaction, Core ones included, see them."""
        state = _current.get()
        if state is not None and state.open and state.database is self:
            await state.session.flush()

    @asynccontextmanager
    async def read_connection(self, scope: Scope) -> AsyncIterator[AsyncConnection]:
        """A Core connection for hot paths that read with one statement (authentication, the agreements list): no
        ORM session, same tenant scope; on SQLite no explicit transaction either."""
        for attempt in _ATTEMPTS:
            conn = await self._single_read.connect()
            try:
                if self.is_postgres:
                    await conn.execute(_SET_SCOPE, self._scope_params(scope))
                break
            except BaseException as error:
                await asyncio.shield(conn.close())
                if not _retried_once(error, attempt):
                    raise
        try:
            yield conn
        finally:
            await asyncio.shield(conn.close())

    @staticmethod
    def _scope_params(scope: Scope) -> dict[str, str]:
        return {
            "tenant": str(scope.tenant_id) if scope.tenant_id else "",
            "cross": "on" if scope.cross_tenant else "off",
        }

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
