"""Records of processing at scale: legal's all-tenants CSV streams in bounded memory (PostgreSQL).

    DPA_BENCH_POSTGRES_URL=postgresql+asyncpg://dpa_owner@127.0.0.1:5432/dpa_test \\
        .venv/bin/python bench/records.py [--small 1000] [--large 10000]

Creates a scratch database beside the given one (the login needs CREATEDB), migrates it and starts the app in this
process (its lifespan loads the sub-processor list and the shipped template). Tenants with an executed DPA (the
standard-dpa sample variables, the authorization of list version 1, two sub-processor transfers and one of their
own) are inserted in bulk, straight into the tables: only the export is under test. Then, through the whole app
(middleware, API-key authentication, guard, handler, streamed response; the ASGI `send` counts the bytes and keeps
none), `GET /api/v1/records-of-processing?format=csv` as legal, twice: for `--small` tenants (the baseline), then
after loading up to `--large`. Before each export the process's peak RSS is reset (`/proc/self/clear_refs`), so each
run's peak is its own; the figure is the peak during the export minus the RSS just before it. Also counted: the
SQL statements each export ran (a fixed number per batch of 500 DPAs, none per tenant). Goal: the growth for
`--large` tenants about the same as for `--small` (bounded memory), and statements proportional to batches.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dpa_service import migrate
from dpa_service.agreements.models import Agreement
from dpa_service.app import create_app
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, make_engine
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.subprocessors.models import Authorization
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.template_versions.models import TemplateVersion
from dpa_service.tenants.models import Tenant
from dpa_service.transfers.models import Transfer
from dpa_service.users.models import StaffCreate
from dpa_service.users.services import create_staff

CHUNK = 1000
ROW_START = re.compile(rb"(?:\A|\n)[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-")  # a row begins with its tenant id


async def admin(url: str, statement: str) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


def memory_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM starts again from VmRSS


async def load(db: Database, first: int, count: int) -> None:
    """Tenants `first` .. `first + count - 1`, each with an executed DPA, its authorization and three transfers."""
    bundle = next(b for b in shipped_bundles() if b.key == "standard-dpa")
    async with db.transaction(Scope.system()) as session:
        template = (
            await session.execute(select(TemplateVersion).where(TemplateVersion.key == "standard-dpa").limit(1))
        ).scalar_one()
        now, today = utcnow(), utcnow().date()
        for start in range(first, first + count, CHUNK):
            numbers = range(start, min(start + CHUNK, first + count))
            ids = {n: new_id() for n in numbers}
            agreements = {n: new_id() for n in numbers}
            await session.execute(insert(Tenant), [_tenant(n, ids[n]) for n in numbers])
            await session.execute(
                insert(Agreement),
                [_agreement(n, ids[n], agreements[n], template, bundle.sample_variables, now) for n in numbers],
            )
            await session.execute(
                insert(Authorization),
                [{"agreement_id": agreements[n], "tenant_id": ids[n], "list_version": 1,
                  "contact_email": f"privacy@t{n}.example", "authorized_at": now} for n in numbers],
            )  # fmt: skip
            await session.execute(
                insert(Transfer), [t for n in numbers for t in _transfers(ids[n], agreements[n], today)]
            )
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))


def _tenant(n: int, tenant_id: uuid.UUID) -> dict[str, Any]:
    return {"id": tenant_id, "name": f"T{n}", "legal_name": f"Tenant {n} GmbH", "country": "DE",
            "address": f"Strasse {n}\n10117 Berlin", "contact_email": f"privacy@t{n}.example",
            "dpo_name": f"DPO {n}", "dpo_email": f"dpo@t{n}.example"}  # fmt: skip


def _agreement(
    n: int, tenant_id: uuid.UUID, agreement_id: uuid.UUID, template: Any, sample: dict[str, Any], now: Any
) -> dict[str, Any]:
    variables = {**sample, "controller": {**sample["controller"], "legal_name": f"Tenant {n} GmbH"}}
    return {"id": agreement_id, "tenant_id": tenant_id, "template_id": template.id, "template_key": template.key,
            "template_version": template.version, "template_sha256": template.sha256, "status": "executed",
            "variables": variables, "custom_clauses": [], "subprocessor_list_version": 1, "created_at": now,
            "updated_at": now, "content_changed_at": now, "executed_at": now, "effective_date": now.date(),
            "document_sha256": f"{n:064x}"}  # fmt: skip


def _transfers(tenant_id: uuid.UUID, agreement_id: uuid.UUID, today: date) -> list[dict[str, Any]]:
    common = {"tenant_id": tenant_id, "destination_country": "US", "start_date": today - timedelta(days=30)}
    return [
        {**common, "id": new_id(), "importer": "Cloudflare, Inc.", "importer_kind": "subprocessor",
         "data_categories": ["IP addresses"], "mechanism": "eu-us-dpf", "importer_certified": True, "source": "dpa",
         "agreement_id": agreement_id},
        {**common, "id": new_id(), "importer": "Twilio Inc.", "importer_kind": "subprocessor",
         "data_categories": ["e-mail addresses"], "mechanism": "scc-2021", "source": "dpa",
         "agreement_id": agreement_id},
        {**common, "id": new_id(), "importer": "Lingua Ltd", "destination_country": "IN",
         "data_categories": ["chat transcripts"], "mechanism": "scc-2021", "tia_reference": "TIA-1",
         "source": "manual"},
    ]  # fmt: skip


async def export(app: Any, key: str) -> dict[str, float]:
    """One all-tenants CSV export through the app; the body is counted and dropped as it streams."""
    received = {"bytes": 0, "rows": 0, "status": 0}
    requested, done = asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        """The request once; then, as a client that stays connected, nothing until the response has ended."""
        if not requested.is_set():
            requested.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            received["status"] = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            received["bytes"] += len(body)
            received["rows"] += len(ROW_START.findall(body))
            if not message.get("more_body", False):
                done.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/api/v1/records-of-processing", "raw_path": b"/api/v1/records-of-processing",
        "query_string": b"format=csv", "root_path": "", "client": ("127.0.0.1", 50000), "server": ("bench", 80),
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode())],
    }  # fmt: skip
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    gc.collect()
    reset_peak()
    before = memory_kb("VmRSS")
    started = time.perf_counter()
    await app(scope, receive, send)
    seconds = time.perf_counter() - started
    peak = memory_kb("VmHWM")
    event.remove(engine, "before_cursor_execute", count)
    assert received["status"] == 200, received
    return {"seconds": seconds, "bytes": received["bytes"], "rows": received["rows"], "statements": statements,
            "rss_before_mb": before / 1024, "peak_mb": peak / 1024, "growth_mb": (peak - before) / 1024}  # fmt: skip


def report(label: str, tenants: int, figures: dict[str, float]) -> None:
    print(
        f"{label}: {tenants} tenants, {figures['rows']:.0f} rows, {figures['bytes'] / 1e6:.1f} MB of CSV in "
        f"{figures['seconds']:.1f} s, {figures['statements']:.0f} SQL statements; RSS before "
        f"{figures['rss_before_mb']:.0f} MB, peak {figures['peak_mb']:.0f} MB: growth {figures['growth_mb']:.1f} MB"
    )


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
        app = create_app(settings)
        async with app.lifespan():
            db: Database = app.state.db
            legal = await create_staff(
                db, Actor.system("bench"), StaffCreate(email="legal@bench.example", name="Legal", role="legal")
            )
            started = time.perf_counter()
            await load(db, 0, args.small)
            print(f"loaded {args.small} tenants in {time.perf_counter() - started:.1f} s")
            await export(app, legal.api_key)  # warm-up: imports, statement caches, the template's Annex II
            small = await export(app, legal.api_key)
            report("baseline", args.small, small)
            started = time.perf_counter()
            await load(db, args.small, args.large - args.small)
            print(f"loaded {args.large - args.small} more tenants in {time.perf_counter() - started:.1f} s")
            large = await export(app, legal.api_key)
            report("large", args.large, large)
            print(
                f"peak RSS growth: {large['growth_mb']:.1f} MB for {args.large} tenants vs {small['growth_mb']:.1f} MB "
                f"for {args.small} ({large['growth_mb'] / max(small['growth_mb'], 0.1):.2f}x for "
                f"{args.large / args.small:.0f}x the tenants and {large['bytes'] / small['bytes']:.1f}x the bytes); "
                f"SQL statements {large['statements'] / small['statements']:.1f}x"
            )
    finally:
        await admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
