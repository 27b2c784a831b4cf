"""Transfer-register scale: one tenant's assessment and the platform-wide invalidation scan.

    DPA_BENCH_POSTGRES_URL=postgresql+asyncpg://dpa_owner@127.0.0.1:5432/dpa_test \\
        .venv/bin/python bench/assessment.py [--tenants 10000] [--per-tenant 10] [--runs 20]

Creates a scratch database beside the given one (the login needs CREATEDB), migrates it, loads
tenants x per-tenant transfers (30% on the EU-US Privacy Shield), then times, through the application role
and its row-level security: one tenant's `GET /transfers/assessment` service call (median of --runs), and
recording the Privacy Shield invalidation (scan + one outbox message per relying tenant + audit), each run
rolled back so it can repeat. Goals: one tenant < 50 ms; full scan < 5 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from dpa_service import migrate
from dpa_service.core.db import Database, Scope, make_engine
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.ids import new_id
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.tenants.models import Tenant
from dpa_service.transfers import invalidations, services
from dpa_service.transfers.models import InvalidationCreate, Transfer

MECHANISMS = [("eu-us-privacy-shield", "US", True)] * 3 + [
    ("scc-2021", "US", None),
    ("eu-us-dpf", "US", True),
    ("adequacy", "JP", None),
    ("scc-2021", "IN", None),
    ("bcr", "BR", None),
    ("uk-idta", "US", None),
    ("scc-2010", "US", None),
]


class Rollback(Exception):
    """Undo a timed run."""


async def admin(url: str, statement: str) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


async def load(db: Database, tenants: int, per_tenant: int) -> list[uuid.UUID]:
    rng = random.Random(7)
    ids = [new_id() for _ in range(tenants)]
    async with db.transaction(Scope.system()) as session:
        for start in range(0, tenants, 2000):
            await session.execute(
                insert(Tenant),
                [
                    {"id": tid, "name": f"T{n}", "legal_name": f"Tenant {n} GmbH", "country": "DE"}
                    for n, tid in enumerate(ids[start : start + 2000], start)
                ],
            )
        rows = []
        for tid in ids:
            for _ in range(per_tenant):
                code, country, certified = rng.choice(MECHANISMS)
                start_day = date(2018, 1, 1) + timedelta(days=rng.randrange(0, 1500))
                rows.append(
                    {
                        "id": new_id(),
                        "tenant_id": tid,
                        "importer": "Importer Inc.",
                        "destination_country": country,
                        "data_categories": ["chat"],
                        "mechanism": code,
                        "importer_certified": certified,
                        "start_date": start_day,
                        "source": "manual",
                    }
                )
            if len(rows) >= 10_000:
                await session.execute(insert(Transfer), rows)
                rows = []
        if rows:
            await session.execute(insert(Transfer), rows)
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
    return ids


async def main(args: argparse.Namespace) -> None:
    base = os.environ.get("DPA_BENCH_POSTGRES_URL") or os.environ.get("DPA_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set DPA_BENCH_POSTGRES_URL (a login that may CREATE DATABASE)")
    name = f"dpa_bench_{uuid.uuid4().hex[:8]}"
    await admin(base, f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        settings = Settings(var_dir=Path(tempfile.mkdtemp()), database=DatabaseSettings(url=url))
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database(settings.database)
        started = time.perf_counter()
        ids = await load(db, args.tenants, args.per_tenant)
        print(f"loaded {args.tenants} tenants x {args.per_tenant} transfers in {time.perf_counter() - started:.1f} s")

        one = []
        for tid in random.Random(1).sample(ids, args.runs):
            started = time.perf_counter()
            viewer = Principal(new_id(), tid, Role.OWNER, "bench@x.example", "Bench", new_id())
            page = await services.assessment(db, viewer, date(2020, 8, 1), tenant_id=None, cursor=None, limit=50)
            one.append(time.perf_counter() - started)
            assert 0 < len(page.items) <= args.per_tenant

        scans, affected = [], 0
        for _ in range(3):
            started = time.perf_counter()
            try:
                # The service's transaction joins this one, so the invalidation can be rolled back after timing.
                async with db.transaction(Scope.system()):
                    invalidation = await invalidations.record_invalidation(
                        db,
                        Actor.system("bench"),
                        "eu-us-privacy-shield",
                        InvalidationCreate(
                            invalid_from=date(2020, 7, 16), reason="Schrems II", legal_reference="C-311/18"
                        ),
                    )
                    affected = invalidation.affected_tenants
                    scans.append(time.perf_counter() - started)
                    raise Rollback
            except Rollback:
                pass
        await db.dispose()
    finally:
        await admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        f"one tenant's assessment ({args.per_tenant} transfers): median {statistics.median(one) * 1000:.1f} ms "
        f"over {args.runs} tenants (goal < 50 ms)"
    )
    print(
        f"invalidation scan over {args.tenants * args.per_tenant} transfers, {affected} tenants notified: "
        f"median {statistics.median(scans):.2f} s over {len(scans)} runs (goal < 5 s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--per-tenant", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
