"""Shared fixtures: every database test runs on SQLite and, when DPA_TEST_POSTGRES_URL is set, on PostgreSQL.

Every database test starts from a freshly migrated, empty database of its own, on both backends:

* SQLite: a database migrated once per pytest process (each xdist worker has its own tmp_path_factory), copied
  into a fresh file for each test.
* PostgreSQL: a template database migrated once per pytest process as the owner login, and a database copied
  from it for each test (CREATE DATABASE ... TEMPLATE), dropped after the test. The app serves through the
  non-owner role (SET ROLE), so row-level security really applies.

Each template comes three times: as migrated, and twice as a service leaves it after its first start (the
sub-processor list loaded, the templates imported as drafts: `ensure_seeded` and `import_shipped`, which the app's
lifespan runs on every start), once with the short edition of the standard DPA (tests/helpers/short_dpa.py) and
once with the shipped one. Tests get the short edition, so the app they start finds that work done instead of
validating and importing the templates again in every test (a test's setup: 0.19 -> 0.07 s on SQLite, 0.37 -> 0.25
s on PostgreSQL, some 430 times a run), and the DPAs they execute render in a quarter of the time; the tests marked
`shipped_dpa` (of the DPA's own text and layout) get the shipped template; the tests marked `first_start` (a new
install, as its first user meets it, or a database no service has started on) get the first, and the app does
that work in front of them.

A test database is thrown away after its test, so it need not survive a power cut: the SQLite files live in RAM
(/dev/shm, where the machine has it) and the PostgreSQL databases commit without waiting for the WAL to reach the
disk (synchronous_commit off). The app's own settings are unchanged (WAL, synchronous=FULL: its pragmas still run);
only the fsync they ask for costs nothing. Measured on the 2-core CI machine: a commit took 3.7 ms on disk and
0.01 ms in RAM (SQLite), 10.7 ms and 0.3 ms (PostgreSQL), and a test makes dozens to hundreds of them.

PostgreSQL databases are named `dpa_tpl_<worker>_<tag>` and `dpa_t_<worker>_<tag>_<n>`, where the tag is random
per process, so xdist workers and concurrent runs never collide. Each process holds an advisory lock on its tag
for as long as it runs; databases whose tag nobody holds any more (a killed run) are dropped at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from sqlalchemy.engine import URL, make_url

from dpa_service import migrate
from dpa_service.app import create_app
from dpa_service.core.db import Database, make_engine
from dpa_service.core.identity import Actor
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.http.rate_limits import rate_limit_stores
from dpa_service.subprocessors.registry_sync import ensure_seeded
from dpa_service.template_versions.services import import_shipped, sync_from_files
from dpa_service.web.sessions import session_stores
from tests.helpers.api import Api, bootstrap_admin
from tests.helpers.short_dpa import short_standard_dpa

pytest_plugins = ["tests.helpers.receiver"]

POSTGRES_URL = os.environ.get("DPA_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("DPA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not POSTGRES_URL:
        raise pytest.UsageError("CI must run the PostgreSQL tests: set DPA_TEST_POSTGRES_URL (see .ci/run).")
    config.addinivalue_line(
        "markers",
        "html_face: a test of a page's HTML face over services whose database behaviour (PostgreSQL row-level "
        "security included) the API tests check on both databases; it runs on SQLite only",
    )
    config.addinivalue_line(
        "markers",
        "first_start: the test's database is as migrated, before any service started on it (a new install); "
        "every other test's database already holds what the app's first start writes (see tests/conftest.py)",
    )
    config.addinivalue_line(
        "markers",
        "shipped_dpa: the test's database holds the shipped standard DPA, not its short edition (a test of the "
        "DPA's own text or layout; see tests/helpers/short_dpa.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Page tests render the same service calls the API tests make on both databases; running each of them a
    second time on PostgreSQL added ~2 minutes to CI (past its 10 on 2 cores) and no database coverage. The
    sign-in and session tests, which own tables and lookups of their own, stay on both."""
    kept = [
        item
        for item in items
        if not (
            item.get_closest_marker("html_face")
            and getattr(getattr(item, "callspec", None), "params", {}).get("backend") == "postgres"
        )
    ]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def settings_for(url: str, var_dir: Path) -> Settings:
    # Tests run the outbox worker themselves (notifications.worker.run_once), so rounds are deterministic.
    return Settings(var_dir=var_dir, database=DatabaseSettings(url=url), run_worker=False)


RAM_DIR = Path(os.environ.get("DPA_TEST_RAM_DIR", "/dev/shm"))
RAM_PREFIX = "dpa-test-db-"


def _drop_stale_ram_dirs() -> None:
    """Remove the database folders of test processes that are gone (a killed run leaves its folder behind)."""
    for directory in RAM_DIR.glob(f"{RAM_PREFIX}*"):
        pid = directory.name.removeprefix(RAM_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where this process keeps its SQLite test databases: a folder of its own in RAM if there is one."""
    if not (RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK)):
        yield tmp_path_factory.mktemp("databases")
        return
    _drop_stale_ram_dirs()
    directory = Path(tempfile.mkdtemp(prefix=f"{RAM_PREFIX}{os.getpid()}-", dir=RAM_DIR))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# The databases a test can start from (see the module docstring).
MIGRATED, SHORT, SHIPPED = "migrated", "short", "shipped"
STARTED = (SHORT, SHIPPED)


async def _first_start(url: str, var_dir: Path, variant: str) -> None:
    """Write into a migrated database what a service's first start does (dpa_service.app: `_first_start`), with
    the short edition of the standard DPA in place of the shipped one for `SHORT`."""
    db = Database(settings_for(url, var_dir).database)
    try:
        await ensure_seeded(db)
        if variant == SHORT:
            await sync_from_files(db, Actor.system("startup"), bundles=[short_standard_dpa()])
        await import_shipped(db)
    finally:
        await db.dispose()


def _variant(request: pytest.FixtureRequest) -> str:
    """Which database this test starts from: as migrated (`first_start`), as first started with the shipped
    standard DPA (`shipped_dpa`), or with its short edition (every other test)."""
    if request.node.get_closest_marker("first_start"):
        return MIGRATED
    return SHIPPED if request.node.get_closest_marker("shipped_dpa") else SHORT


@pytest.fixture(scope="session")
async def sqlite_templates(sqlite_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """This process's SQLite templates, by variant."""
    var_dir = tmp_path_factory.mktemp("template")  # per xdist worker: each has its own folder
    paths = {variant: sqlite_dir / f"{variant}.db" for variant in (MIGRATED, *STARTED)}
    await asyncio.to_thread(migrate.upgrade, settings_for(f"sqlite+aiosqlite:///{paths[MIGRATED]}", var_dir))
    for variant in STARTED:
        shutil.copyfile(paths[MIGRATED], paths[variant])
        await _first_start(f"sqlite+aiosqlite:///{paths[variant]}", var_dir, variant)
    return paths


# PostgreSQL test databases: names, and the advisory lock (classid LOCK_CLASS, objid TAG) that says a run is alive.
WORKER = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "main").lower()) or "main"
TAG = secrets.randbelow(2**31 - 1) + 1  # objid 0 is the migration lock
LOCK_CLASS = 0x44504154  # "DPAT"
OURS = re.compile(r"^dpa_(?:tpl|t)_[a-z0-9]+_([0-9a-f]{8})(?:_\d+)?$")
# WAL_LOG (PostgreSQL 15's default) writes the copied blocks to the WAL; FILE_COPY copies files but checkpoints
# twice per copy, which on a busy machine made it about twice as slow (median ~0.5 s vs ~0.23 s for an 8.6 MB
# template, whole suite ~25 s longer).
STRATEGY = os.environ.get("DPA_TEST_PG_STRATEGY", "WAL_LOG")
# DROP DATABASE waits for a checkpoint of the whole cluster (seconds when the disk is busy). Drops that wait at the
# same time share one, so they run side by side on connections of their own: one at a time on one connection, a
# backlog built up during the run and each process's end waited for it (8 s on a quiet machine, 77-105 s on a busy
# one, measured at the last test's teardown).
DROPPERS = 4


class PostgresDatabases:
    """One process's template database, and the fresh per-test databases copied from it.

    Copying takes a few hundred milliseconds on a busy machine (mostly waiting for the disk), so the next test's
    database is copied while the current test runs, and a finished test's database is dropped in the background.
    """

    def __init__(self, droppers: asyncpg.Pool, maker: asyncpg.Connection, base: URL, templates: dict[str, str]) -> None:
        self.droppers, self.maker, self.base, self.templates = droppers, maker, base, templates
        self._numbers = itertools.count(1)
        self._spare: asyncio.Future[str] | None = None
        self._drops: set[asyncio.Future[None]] = set()
        self._making = asyncio.Lock()  # one statement at a time on the maker connection
        self.copied: list[float] = []  # seconds each CREATE DATABASE took
        self.waited: list[float] = []  # seconds each test waited for its database

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    async def _copy(self, variant: str = SHORT) -> str:
        name = f"dpa_t_{WORKER}_{TAG:08x}_{next(self._numbers)}"
        started = time.perf_counter()
        template = self.templates[variant]
        async with self._making:  # the spare may be copying now
            await self.maker.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY {STRATEGY}')
            # Every connection to it commits without waiting for the WAL flush (see the module docstring).
            await self.maker.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        self.copied.append(time.perf_counter() - started)
        return name

    async def take(self, variant: str = SHORT) -> str:
        """A fresh database for one test (its name); the next one starts copying right away. The other variants
        (a few tests) are copied when asked for."""
        if variant != SHORT:
            return await self._copy(variant)
        started = time.perf_counter()
        name = await (self._spare or asyncio.ensure_future(self._copy()))
        self._spare = asyncio.ensure_future(self._copy())
        self.waited.append(time.perf_counter() - started)
        return name

    def drop_later(self, name: str) -> None:
        task = asyncio.ensure_future(self.drop(name))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def drop(self, name: str) -> None:
        async with self.droppers.acquire() as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def close(self) -> None:
        """Drop the spare and the templates, and wait for all the drops (side by side)."""
        if self._spare is not None:
            with contextlib.suppress(Exception):
                self.drop_later(await self._spare)
        for template in self.templates.values():
            self.drop_later(template)
        await asyncio.gather(*self._drops, return_exceptions=True)


def _append(path: Path, line: str) -> None:
    with path.open("a") as out:
        out.write(line)


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _drop_stale_databases(conn: asyncpg.Connection) -> None:
    """Drop the test databases of runs that are gone (nobody holds their tag's lock any more)."""
    held = await conn.fetch(
        "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND granted",
        LOCK_CLASS,
    )
    alive = {int(row["objid"]) for row in held}
    for (name,) in await conn.fetch("SELECT datname FROM pg_database WHERE datname ~ '^dpa_(tpl|t)_'"):
        match = OURS.match(name)
        if match and int(match.group(1), 16) not in alive:
            with contextlib.suppress(asyncpg.PostgresError):  # another worker dropped it first
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def postgres_ready(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PostgresDatabases]:
    """This process's template databases: migrated (as the owner login, like production), and a copy of that after
    a first start (written through the application role, as the app writes it)."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need DPA_TEST_POSTGRES_URL (CI sets it; see .ci/run)")
    base = make_url(POSTGRES_URL)
    admin = await asyncpg.connect(_asyncpg_dsn(base), timeout=30)
    template = f"dpa_tpl_{WORKER}_{TAG:08x}"
    # Named to match OURS, so a killed run's are dropped like its other databases.
    names = {MIGRATED: template, **{variant: f"{template}_{n}" for n, variant in enumerate(STARTED)}}
    databases = None
    try:
        await admin.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, TAG)  # held until this process ends
        await _drop_stale_databases(admin)
        await admin.execute(f'CREATE DATABASE "{template}"')
        # The application role and its membership are cluster-wide: workers migrate one at a time.
        await admin.execute("SELECT pg_advisory_lock($1, 0)", LOCK_CLASS)
        try:
            var_dir = tmp_path_factory.mktemp("pg-template")
            url = base.set(database=template).render_as_string(hide_password=False)
            await asyncio.to_thread(migrate.upgrade, settings_for(url, var_dir))
        finally:
            await admin.execute("SELECT pg_advisory_unlock($1, 0)", LOCK_CLASS)
        for variant in STARTED:
            await admin.execute(f'CREATE DATABASE "{names[variant]}" TEMPLATE "{template}" STRATEGY {STRATEGY}')
            url = base.set(database=names[variant]).render_as_string(hide_password=False)
            await _first_start(url, var_dir, variant)
        # Nothing may be connected to a template while it is copied: refuse connections (autovacuum's too).
        for name in names.values():
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        maker = await asyncpg.connect(_asyncpg_dsn(base), timeout=30)
        droppers = await asyncpg.create_pool(_asyncpg_dsn(base), min_size=0, max_size=DROPPERS, timeout=30)
        databases = PostgresDatabases(droppers, maker, base, names)
        yield databases
        if databases.copied and (report := os.environ.get("DPA_TEST_PG_TIMINGS")):  # a file to append to
            line = " ".join(f"{t:.4f}" for t in databases.copied)
            waited = " ".join(f"{t:.4f}" for t in databases.waited)
            await asyncio.to_thread(_append, Path(report), f"{WORKER} {STRATEGY} copied {line}\n")
            await asyncio.to_thread(_append, Path(report), f"{WORKER} {STRATEGY} waited {waited}\n")
    finally:
        try:
            if databases is not None:
                await databases.close()  # after the spare's copy, which runs on the maker connection
                await databases.maker.close()
                await databases.droppers.close()
            for name in reversed(names.values()):  # gone already, unless the setup failed half-way
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url(postgres_ready: PostgresDatabases, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test alone (the owner login's URL): migrated and, unless the test is
    marked `first_start`, holding what a service's first start writes."""
    name = await postgres_ready.take(_variant(request))
    try:
        yield postgres_ready.url(name)
    finally:
        postgres_ready.drop_later(name)  # WITH (FORCE): whatever the test left connected goes too


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


_sqlite_numbers = itertools.count(1)


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if backend == "postgres":
        yield settings_for(request.getfixturevalue("postgres_url"), tmp_path)
        return
    template: Path = request.getfixturevalue("sqlite_templates")[_variant(request)]
    path = template.with_name(f"test-{next(_sqlite_numbers)}.db")
    shutil.copyfile(template, path)
    try:
        yield settings_for(f"sqlite+aiosqlite:///{path}", tmp_path)
    finally:
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture
async def owner_engine(settings: Settings):
    engine = make_engine(settings.database.url)
    yield engine
    await engine.dispose()


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """Start and stop the app's lifespan in one task of its own (it opens task groups that must close there)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def host() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(host())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error
    try:
        yield
    finally:
        stop.set()
        await task


_APPS: dict[tuple[Any, ...], Litestar] = {}


def app_for(settings: Settings) -> Litestar:
    """An app for this test's settings. Building one registers some 150 handlers (~0.4 s of CPU), so each xdist
    worker builds one per shape of the settings that wiring reads (environment, rate limit, Redis) and hands it to
    each test with that test's own state: settings (database, var dir), service secret, and fresh stores, so no
    session or rate-limit count leaks from one test to the next. Tests that need wiring of their own call
    create_app themselves."""
    shape = (settings.environment, settings.rate_limit_per_minute, settings.redis_url, settings.public_base_url)
    app = _APPS.get(shape)
    if app is None or settings.redis_url:
        app = _APPS[shape] = create_app(settings.model_copy())
        return app
    app.state.settings = settings.model_copy()
    app.state.secret = load_app_secret(settings)
    for name, store in {**rate_limit_stores(None), **session_stores(settings)}.items():
        app.stores.register(name, store, allow_override=True)
    return app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in the test's own event loop, so concurrent requests really overlap.

    (Litestar's AsyncTestClient runs the app behind a blocking portal, which serializes requests.)
    """
    app = app_for(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: Database) -> Api:
    """A platform admin (made through the same service `dpa bootstrap` uses)."""
    return await bootstrap_admin(client, db)


@pytest.fixture
async def redis_url() -> str:
    """Redis for the tests that need it: skipped with a reason when absent, a failure in CI."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        if IN_CI:
            raise AssertionError(f"CI must run the Redis tests, but {REDIS_URL} is not reachable") from exc
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set DPA_TEST_REDIS_URL); CI runs this test")
    finally:
        await client.aclose()
    return REDIS_URL
