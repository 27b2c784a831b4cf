"""The ledger of DPAs executed before the ledger existed: the backfill migration makes it, as tests/db/test_migrations
tests migrations (a fresh database, here migrated to the revision before the backfill, then to head), on both
databases. Rows are written with SQL as the migrating owner would find them; the ledger is read through the
service, as the API serves it."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from alembic.script import ScriptDirectory

from dpa_service import migrate
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, UTCDateTime, make_engine
from dpa_service.core.identity import Principal, Role
from dpa_service.core.ids import new_id
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.obligations import ledger
from tests.conftest import TAG, WORKER, PostgresDatabases
from tests.obligations.ledger_support import CODES

BACKFILL = "57a566518524"
OBLIGATIONS = yaml.safe_load(Path("templates/dpa/standard-dpa/obligations.yaml").read_text())
BACKENDS = ["sqlite", *(["postgres"] if os.environ.get("DPA_TEST_POSTGRES_URL") else [])]


def _table(name: str, ids: str, texts: str, json: str = "", moments: str = "", ints: str = "") -> sa.TableClause:
    """The columns written, typed as at the revision before the backfill (not the models, which move on)."""
    return sa.table(
        name,
        *(sa.column(n, sa.Uuid()) for n in ids.split()),
        *(sa.column(n, sa.String()) for n in texts.split()),
        *(sa.column(n, sa.JSON()) for n in json.split()),
        *(sa.column(n, UTCDateTime()) for n in moments.split()),
        *(sa.column(n, sa.Integer()) for n in ints.split()),
    )


tenants = _table("tenants", "id", "name legal_name country", moments="created_at updated_at")
versions = _table(
    "template_versions",
    "id",
    "key title source stylesheet entrypoint sha256 status",
    "variables_schema sample_variables obligations",
    "created_at",
    "version",
)
agreements = _table(
    "agreements",
    "id tenant_id template_id superseded_by",
    "template_key template_sha256 status",
    "variables custom_clauses",
    "created_at updated_at content_changed_at executed_at superseded_at",
    "template_version",
)
obligations = _table(
    "obligations", "id tenant_id agreement_id template_id", "code title clause summary", "deadline", "in_force_from"
)


@pytest.fixture
async def empty_postgres_url(postgres_ready: PostgresDatabases) -> AsyncIterator[str]:
    """An empty PostgreSQL database named like the per-test ones, so conftest drops it in the background (and a
    killed run's at the next start)."""
    name = f"dpa_t_{WORKER}_{TAG:08x}_{secrets.randbelow(10**6) + 10**6}"
    engine = make_engine(postgres_ready.base.render_as_string(hide_password=False), pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    try:
        yield postgres_ready.url(name)
    finally:
        postgres_ready.drop_later(name)


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of its own with no schema yet (the migration test's pattern)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}"
    return str(request.getfixturevalue("empty_postgres_url"))


async def _migrate(url: str, var_dir: Path, revision: str) -> None:
    await asyncio.to_thread(migrate.upgrade, Settings(var_dir=var_dir, database=DatabaseSettings(url=url)), revision)


async def _as_owner(url: str, statements: list[Any]) -> None:
    """What the database held before the upgrade, written as the owner login (every tenant's rows)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(sa.text("SELECT set_config('app.cross_tenant', 'on', true)"))
            for statement in statements:
                await conn.execute(statement)
    finally:
        await engine.dispose()


def _agreement(tenant: uuid.UUID, template: uuid.UUID, status: str, executed: datetime | None, **more: Any) -> dict:
    moment = executed or utcnow()
    return {"id": new_id(), "tenant_id": tenant, "template_id": template, "template_key": "standard-dpa",
            "template_version": 1, "template_sha256": "0" * 64, "status": status, "variables": {},
            "custom_clauses": [], "created_at": moment, "updated_at": moment, "content_changed_at": moment,
            "executed_at": executed, "superseded_by": None, "superseded_at": None, **more}  # fmt: skip


async def test_the_backfill_makes_the_ledger_of_dpas_executed_before_it(empty_url: str, tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(empty_url))
    before = script.get_revision(BACKFILL).down_revision
    assert isinstance(before, str)
    await _migrate(empty_url, tmp_path, before)

    now = utcnow()
    long_ago, lately = now - timedelta(days=400), now - timedelta(days=100)
    early, other, fresh = new_id(), new_id(), new_id()
    template = new_id()
    first = _agreement(early, template, "superseded", long_ago, superseded_at=lately)
    second = _agreement(early, template, "executed", lately)
    first["superseded_by"] = second["id"]
    draft = _agreement(early, template, "draft", None)
    already = _agreement(other, template, "executed", lately)  # its ledger was made when it executed
    made = {"id": new_id(), "tenant_id": other, "agreement_id": already["id"], "template_id": template,
            "code": "breach_notice_72h", "title": "Notify", "clause": "9.2", "summary": "", "deadline": {},
            "in_force_from": lately}  # fmt: skip
    await _as_owner(
        empty_url,
        [
            tenants.insert().values(
                [
                    {
                        "id": t,
                        "name": f"T {i}",
                        "legal_name": f"T {i} GmbH",
                        "country": "DE",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, t in enumerate((early, other, fresh))
                ]
            ),
            versions.insert().values(
                id=template,
                key="standard-dpa",
                version=1,
                title="Standard DPA",
                source="<p></p>",
                stylesheet="",
                entrypoint="dpa.html.j2",
                sha256="0" * 64,
                status="approved",
                variables_schema={},
                sample_variables={},
                obligations=OBLIGATIONS,
                created_at=long_ago,
            ),
            agreements.insert().values([first, second, draft, already]),
            obligations.insert().values(made),
        ],
    )
    await _migrate(empty_url, tmp_path, "head")

    db = Database(DatabaseSettings(url=empty_url))
    try:
        owner = Principal(uuid.uuid4(), early, Role.OWNER, "owner@t.example", "Owner", None)
        current = (await ledger.list_obligations(db, owner)).items
        assert [row.code for row in current] == CODES, "one row per entry, in the yaml's order"
        assert {(str(row.agreement_id), row.in_force_from) for row in current} == {(str(second["id"]), lately)}
        statuses = {row.code: row.status for row in current}
        # In force since the first DPA, 400 days ago: the yearly attestations are overdue, the clock not reset.
        assert statuses["records_of_processing"] == statuses["personnel_awareness"] == "overdue"
        assert statuses["delete_end_user_data"] == "not_applicable"
        history = (await ledger.list_obligations(db, owner, agreement_id=first["id"])).items
        assert [row.code for row in history] == CODES
        assert {(row.ended_at, row.superseded_by, row.status) for row in history} == {
            (lately, second["id"], "not_applicable")
        }
        assert await ledger.past_agreements(db, owner, early) == [(first["id"], lately)]

        legal = Principal(uuid.uuid4(), None, Role.LEGAL, "legal@processor.example", "Legal", None)
        kept = (await ledger.list_obligations(db, legal, tenant_id=other)).items
        assert [(row.id, row.code) for row in kept] == [(made["id"], "breach_notice_72h")], "left as it was"
        assert (await ledger.list_obligations(db, legal, tenant_id=fresh)).items == []
        assert (await ledger.list_obligations(db, legal, agreement_id=draft["id"])).items == []
    finally:
        await db.dispose()
