"""Starting a re-papering campaign for 10,000 tenants on the EU-US Privacy Shield, against a bare insert of the same
rows (issue 13, Must show 6), on PostgreSQL.

    DPA_BENCH_POSTGRES_URL=postgresql+asyncpg://dpa_owner@127.0.0.1:5432/dpa_test \\
        .venv/bin/python -m bench.campaign [--tenants 10000]

Creates a database of its own beside the given one (dropped at the end), migrates it, approves standard-dpa and
bulk-inserts N tenants each with an executed DPA relying on `eu-us-privacy-shield` (the standard-dpa sample
variables, with mechanisms [eu-us-privacy-shield, scc-2010]); seeding is not timed. Then, in the same run:

1. baseline: one transaction of plain Core `executemany` INSERTs into the tables (no ORM) of the same rows a
   campaign writes: N draft agreements with their variables, N campaign links, N outbox notices with their payload,
   N audit events, one campaign row. The audit log is append-only, so the baseline cannot delete its rows
   afterwards: its transaction is rolled back instead (every row was written and checked by the database; only the
   commit, well under a millisecond here, is missing).
2. campaign: `campaigns.services.start_campaign` (the service the API calls): the selection query, the exit veto,
   drafts, links, notices and audit events (`audit.record_many`, heads locked and moved), committed.

The baseline runs before and after the campaign; the ratio is against their mean. Goal: <= 3x and < 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from dpa_service import migrate, reactions
from dpa_service.agreements.models import Agreement
from dpa_service.audit.models import AuditEvent
from dpa_service.campaigns import services as campaigns
from dpa_service.campaigns.models import Campaign, CampaignAgreement, CampaignCreate
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, make_engine
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.template_versions import services as templates
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.tenants.models import Tenant

BATCH = 1000
PS = "eu-us-privacy-shield"


class Rollback(Exception):
    """Undo the baseline insert."""


async def admin(url: str, statement: str) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


async def approve(db: Database) -> Any:
    await templates.sync_from_files(db, Actor.system("bench"))
    drafts = await templates.list_versions(db, _legal_principal(), key="standard-dpa", status="draft", cursor=None,
                                           limit=10)  # fmt: skip
    version = drafts.items[-1]
    await templates.transition(db, Actor.system("bench"), version.id, "submit")
    await templates.transition(db, Actor(user_id=uuid.uuid4(), role="legal", tenant_id=None), version.id, "approve")
    return await templates.current_version(db, Scope.system(), "standard-dpa")


def _legal_principal() -> Any:
    from dpa_service.core.identity import Principal, Role

    return Principal(uuid.uuid4(), None, Role.LEGAL, "legal@bench.example", "Legal", uuid.uuid4())


async def seed(db: Database, count: int, version: Any) -> list[tuple[uuid.UUID, uuid.UUID, dict[str, Any]]]:
    """N tenants, each with an executed DPA on Privacy Shield (not timed)."""
    sample = next(b for b in shipped_bundles() if b.key == "standard-dpa").sample_variables
    now = utcnow()
    seeded = []
    async with db.transaction(Scope.system()) as session:
        for start in range(0, count, BATCH):
            numbers = range(start, min(count, start + BATCH))
            tenants = [new_id() for _ in numbers]
            await session.execute(insert(Tenant), [
                {"id": t, "name": f"T{n:05d}", "legal_name": f"Tenant {n} GmbH", "country": "DE", "created_at": now,
                 "updated_at": now} for n, t in zip(numbers, tenants, strict=True)])  # fmt: skip
            rows = []
            for n, tenant_id in zip(numbers, tenants, strict=True):
                variables = copy.deepcopy(sample)
                variables["controller"]["legal_name"] = f"Tenant {n} GmbH"
                variables["transfers"] = {"mechanisms": [PS, "scc-2010"]}
                agreement_id = new_id()
                rows.append({
                    "id": agreement_id, "tenant_id": tenant_id, "template_id": version.id, "template_key": version.key,
                    "template_version": version.version, "template_sha256": version.sha256, "status": "executed",
                    "variables": variables, "custom_clauses": [], "subprocessor_list_version": 1, "created_at": now,
                    "updated_at": now, "content_changed_at": now, "executed_at": now, "effective_date": now.date(),
                    "sealed_at": now, "document_sha256": "0" * 64,
                })  # fmt: skip
                seeded.append((tenant_id, agreement_id, variables))
            await session.execute(insert(Agreement), rows)
    return seeded


async def baseline(db: Database, seeded: list[tuple[uuid.UUID, uuid.UUID, dict[str, Any]]], version: Any) -> float:
    """The same rows a campaign writes, inserted plainly (executemany per thousand), in one transaction."""
    now = utcnow()
    campaign_id = new_id()
    started = time.perf_counter()
    try:
        async with db.transaction(Scope.system()) as session:
            await session.execute(insert(Campaign.__table__), [{
                "id": campaign_id, "replace_mechanism": PS, "replacement_mechanism": "scc-2021", "reason": "bench",
                "due_on": now.date() + timedelta(days=30), "created_at": now, "last_run_at": now, "runs": 1,
                "skipped": []}])  # fmt: skip
            for start in range(0, len(seeded), BATCH):
                chunk = seeded[start : start + BATCH]
                drafts = [new_id() for _ in chunk]
                await session.execute(insert(Agreement.__table__), [{
                    "id": d, "tenant_id": t, "template_id": version.id, "template_key": version.key,
                    "template_version": version.version, "template_sha256": version.sha256, "status": "draft",
                    "variables": {**v, "transfers": {"mechanisms": ["scc-2021", "scc-2010"]}}, "custom_clauses": [],
                    "created_at": now, "updated_at": now, "content_changed_at": now,
                } for d, (t, _, v) in zip(drafts, chunk, strict=True)])  # fmt: skip
                await session.execute(insert(CampaignAgreement.__table__), [{
                    "id": new_id(), "tenant_id": t, "campaign_id": campaign_id, "agreement_id": d,
                    "previous_agreement_id": a, "created_at": now, "notified_at": now,
                } for d, (t, a, _) in zip(drafts, chunk, strict=True)])  # fmt: skip
                await session.execute(insert(OutboxMessage.__table__), [{
                    "id": new_id(), "tenant_id": t, "topic": "campaign.draft_created",
                    "dedupe_key": f"campaign.draft_created:{d}", "created_at": now, "attempts": 0,
                    "payload": {"campaign_id": str(campaign_id), "agreement_id": str(d), "replaces": str(a),
                                "reason": "bench", "due_on": "2030-01-01", "subject": "Please sign", "text": "x" * 600},
                } for d, (t, a, _) in zip(drafts, chunk, strict=True)])  # fmt: skip
                await session.execute(insert(AuditEvent.__table__), [{
                    "id": new_id(), "chain": str(t), "tenant_id": t, "seq": 10**6, "at": now, "actor_id": None,
                    "actor_role": "legal", "action": "agreement.created", "target_type": "agreement",
                    "target_id": str(d), "data": {"template": "standard-dpa v1", "template_sha256": version.sha256,
                                                  "custom_clauses": 0, "campaign_id": str(campaign_id),
                                                  "reason": "bench", "replaces": str(a)},
                    "prev_hash": "0" * 64, "hash": uuid.uuid4().hex * 2,
                } for d, (t, a, _) in zip(drafts, chunk, strict=True)])  # fmt: skip
            await session.flush()
            elapsed = time.perf_counter() - started
            raise Rollback
    except Rollback:
        return elapsed


async def main(args: argparse.Namespace) -> None:
    base = os.environ.get("DPA_BENCH_POSTGRES_URL") or os.environ.get("DPA_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set DPA_BENCH_POSTGRES_URL (a login that may CREATE DATABASE)")
    name = f"dpa_bench_{uuid.uuid4().hex[:8]}"
    await admin(base, f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        settings = Settings(var_dir=Path(tempfile.mkdtemp()), database=DatabaseSettings(url=url), run_worker=False)
        await asyncio.to_thread(migrate.upgrade, settings)
        reactions.install()
        db = Database(settings.database)
        try:
            version = await approve(db)
            seeded = await seed(db, args.tenants, version)
            await admin(url, "VACUUM ANALYZE")
            before = await baseline(db, seeded, version)
            actor = Actor(user_id=uuid.uuid4(), role="legal", tenant_id=None, user_agent="bench")
            data = CampaignCreate(replace_mechanism=PS, replacement_mechanism="scc-2021", reason="Schrems II: move "
                                  "to the 2021 SCCs", due_on=utcnow().date() + timedelta(days=60))  # fmt: skip
            started = time.perf_counter()
            run = await campaigns.start_campaign(db, actor, data)
            ours = time.perf_counter() - started
            after = await baseline(db, seeded, version)
            assert run.total == run.created == args.tenants, run
        finally:
            await db.dispose()
        bare = (before + after) / 2
        figures = {"tenants": args.tenants, "campaign_s": round(ours, 2), "bare_insert_s": round(bare, 2),
                   "bare_runs_s": [round(before, 2), round(after, 2)], "ratio": round(ours / bare, 2)}  # fmt: skip
        print(json.dumps(figures))
    finally:
        await admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
