"""Scale on PostgreSQL: a tenant's agreement list at 1,000,000 agreements vs 1,000, and `dpa audit verify`'s rate
and memory on a long chain.

    DPA_BENCH_POSTGRES_URL=postgresql+asyncpg://dpa_owner@127.0.0.1:55432/postgres \\
        .venv/bin/python bench/scale.py [--tenants 10000] [--per-tenant 100] [--events 2000000]

Creates a scratch database beside the given one (the login needs CREATEDB), migrates it with the service's own
migrations and drops it at the end.

1. List. `--per-tenant` agreements for each tenant (realistic rows: the standard-dpa sample variables with the
   tenant's name, statuses mixed like a real tenant's history, one executed), inserted in bulk as the owner with
   `INSERT ... SELECT generate_series` (round-robin over tenants, so a tenant's rows lie scattered over the heap as
   they would after years of use, not clustered). First 1,000 agreements in total (10 tenants of the same shape):
   the baseline. Then the rest up to `--tenants` x `--per-tenant`, ANALYZE, and the same measurement again.
   Measured: `agreements.services.list_agreements` (the function behind `GET /api/v1/agreements`: the app role,
   row-level security, `app.tenant_id` set per transaction) for the default page of 50 and for the next page by
   cursor, p50 over every sampled tenant and call. Goal: p50 at 1M <= 1.5x p50 at 1,000. The plan is printed.
2. Audit. One tenant's chain of `--events` events and another of a tenth of that, hashed with the service's own
   `event_hash` and COPYed in, checkpointed with `dpa audit checkpoint`; then `dpa audit verify --tenant` for each
   (its default: a process per core walking stretches of the chain): wall time, events/s and peak RSS (from
   `wait4`: the largest of the command and its processes). Baseline in the same run: reading the same rows with
   bare asyncpg in one process and hashing each row's stored JSON and link once (the least a verifier does).
   Goals: >= 200,000 events/s; peak RSS for the long chain about the same as for the short one.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dpa_service import migrate
from dpa_service.agreements.services import _list_query, list_agreements
from dpa_service.audit.hashing import canonical_json, event_hash
from dpa_service.audit.models import GENESIS_HASH
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, make_engine
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.ids import new_id
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.template_versions import services as templates
from dpa_service.template_versions.bundle import shipped_bundles

ROOT = Path(__file__).resolve().parent.parent
BASELINE_TOTAL = 1000

# A UUIDv7-like id from a time in ms and a random tail, as new_id() makes them (so ids sort by creation time).
_UUID7 = """
CREATE FUNCTION pg_temp.uuid7(ms bigint) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(md5(random()::text), 1, 3) || '8'
          || substr(md5(random()::text), 1, 15))::uuid
$$
"""

# Statuses of a tenant's agreements by position in its history (the last one executed, earlier ones superseded).
_STATUS = """CASE
  WHEN k = {last} THEN 'executed'
  WHEN k % 10 = 9 THEN 'superseded' WHEN k % 10 = 8 THEN 'voided' WHEN k % 10 = 7 THEN 'in_legal_review'
  WHEN k % 10 = 6 THEN 'ready_for_signature' WHEN k % 10 = 5 THEN 'changes_requested' ELSE 'draft' END"""


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin(url: str, statement: str) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


async def load_tenants(owner: asyncpg.Connection, first: int, count: int) -> None:
    await owner.execute(
        """INSERT INTO tenants (id, name, legal_name, country, address, contact_email, created_at, updated_at)
           SELECT pg_temp.uuid7(1767225600000 + n), 'T' || n, 'Tenant ' || n || ' GmbH', 'DE',
                  'Strasse ' || n || E'\\n10117 Berlin', 'privacy@t' || n || '.example', now(), now()
           FROM generate_series($1::int, $2::int) AS n""",
        first,
        first + count - 1,
    )


async def load_agreements(
    owner: asyncpg.Connection, template: Any, variables: str, tenants: list[uuid.UUID], per_tenant: int
) -> None:
    """`per_tenant` agreements for each of `tenants`, round-robin (agreement k of every tenant, then k + 1 ...), in
    batches of whole rounds, so each batch is one statement and a tenant's rows end up on many heap pages."""
    # The variables are the sample's with the tenant's legal name: the same size and shape as a real request.
    for k0 in range(0, per_tenant, 5):
        await owner.execute(
            f"""INSERT INTO agreements (id, tenant_id, template_id, template_key, template_version, template_sha256,
                   status, variables, custom_clauses, subprocessor_list_version, created_at, updated_at,
                   content_changed_at, submitted_at, executed_at, effective_date, document_sha256)
               SELECT pg_temp.uuid7(1767225600000 + k * 100000 + t.n), t.id, $1, $2, $3, $4, s.status,
                      replace($5, '@@NAME@@', 'Tenant ' || t.n || ' GmbH')::json, '[]'::json, 1,
                      now(), now(), now(),
                      CASE WHEN s.status NOT IN ('draft', 'changes_requested') THEN now() END,
                      CASE WHEN s.status IN ('executed', 'superseded') THEN now() END,
                      CASE WHEN s.status IN ('executed', 'superseded') THEN current_date END,
                      CASE WHEN s.status IN ('executed', 'superseded') THEN md5(t.id::text || k) || md5(k || '') END
               FROM unnest($6::uuid[]) WITH ORDINALITY AS t(id, n)
               CROSS JOIN generate_series($7::int, $8::int) AS k
               CROSS JOIN LATERAL (SELECT {_STATUS.format(last=per_tenant - 1)} AS status) AS s
               ORDER BY k, t.n""",
            template.id,
            template.key,
            template.version,
            template.sha256,
            variables,
            tenants,
            k0,
            min(k0 + 4, per_tenant - 1),
        )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def time_list(db: Database, tenants: list[uuid.UUID], calls: int) -> tuple[list[float], list[float]]:
    """ms per `list_agreements` call, first page (limit 50) and the page after it, `calls` times per tenant."""
    first, second = [], []
    for _ in range(calls):
        for tenant_id in tenants:
            principal = Principal(
                user_id=new_id(), tenant_id=tenant_id, role=Role.OWNER, email="o@x.example", name="O", api_key_id=None
            )
            began = time.perf_counter()
            page = await list_agreements(db, principal, tenant_id=None, status=None, cursor=None, limit=50)
            first.append((time.perf_counter() - began) * 1000)
            assert len(page.items) == 50 and page.next_cursor, (tenant_id, len(page.items))
            assert all(item.tenant_id == tenant_id for item in page.items)
            began = time.perf_counter()
            after = await list_agreements(db, principal, tenant_id=None, status=None, cursor=page.next_cursor, limit=50)
            second.append((time.perf_counter() - began) * 1000)
            assert after.items and all(item.tenant_id == tenant_id for item in after.items)
    return first, second


async def plan(db: Database, tenant_id: uuid.UUID) -> str:
    """EXPLAIN ANALYZE of the list query as the app role with the tenant scope, as the service runs it."""
    compiled = _list_query(True, False, False).compile(
        db.engine.sync_engine, compile_kwargs={"render_postcompile": True}
    )
    sql = str(compiled).replace("%(tenant)s", f"'{tenant_id}'").replace("%(limit)s", "51")
    sql = sql.replace("$1::UUID", f"'{tenant_id}'").replace("$2::INTEGER", "51").replace("$1", f"'{tenant_id}'")
    sql = sql.replace("$2", "51")
    async with db.read_connection(Scope.tenant(tenant_id)) as conn:
        rows = (await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"))).scalars().all()
    return "\n    ".join(rows)


async def load_database(db: Database, owner: asyncpg.Connection, tenants: int, per_tenant: int) -> list[uuid.UUID]:
    synced = await templates.sync_from_files(db, Actor.system("bench"))
    template = next(v for v in synced if v.key == "standard-dpa")
    sample = next(b for b in shipped_bundles() if b.key == "standard-dpa").sample_variables
    variables = json.dumps({**sample, "controller": {**sample["controller"], "legal_name": "@@NAME@@"}})
    await owner.execute(_UUID7)
    started = time.perf_counter()
    for first in range(0, tenants, 1000):
        count = min(1000, tenants - first)
        await load_tenants(owner, first, count)
        batch = [r["id"] for r in await owner.fetch("SELECT id FROM tenants ORDER BY id OFFSET $1", first)]
        await load_agreements(owner, template, variables, batch, per_tenant)
        if tenants > 1000:
            print(f"  loaded {first + count} tenants ({time.perf_counter() - started:.0f} s)", flush=True)
    await owner.execute("VACUUM ANALYZE agreements")
    await owner.execute("ANALYZE")
    return [r["id"] for r in await owner.fetch("SELECT id FROM tenants ORDER BY random() LIMIT 10")]


async def list_bench(
    small: tuple[Database, asyncpg.Connection], large: tuple[Database, asyncpg.Connection], args: argparse.Namespace
) -> None:
    """The same tenant shape in two databases, 1,000 agreements and `--tenants` x `--per-tenant`, measured in
    alternating rounds (these 2 cores are shared: a busy moment must not land on one side only)."""
    small_tenants = await load_database(*small, BASELINE_TOTAL // args.per_tenant, args.per_tenant)
    started = time.perf_counter()
    large_tenants = await load_database(*large, args.tenants, args.per_tenant)
    totals = [await owner.fetchval("SELECT count(*) FROM agreements") for _, owner in (small, large)]
    size = await large[1].fetchval("SELECT pg_size_pretty(pg_total_relation_size('agreements'))")
    print(f"loaded {totals[1]:,} agreements across {args.tenants:,} tenants in {time.perf_counter() - started:.0f} s"
          f" (agreements table with TOAST and indexes: {size})")  # fmt: skip
    for (db, _), tenants in ((small, small_tenants), (large, large_tenants)):
        await time_list(db, tenants, 3)  # warm-up
    results: dict[int, tuple[list[float], list[float]]] = {0: ([], []), 1: ([], [])}
    for _ in range(args.rounds):
        for side, ((db, _), tenants) in enumerate(((small, small_tenants), (large, large_tenants))):
            first, second = await time_list(db, tenants, max(1, args.calls // args.rounds))
            results[side][0].extend(first)
            results[side][1].extend(second)
    for side, ((db, _), tenants) in enumerate(((small, small_tenants), (large, large_tenants))):
        print(f"list plan at {totals[side]:,}:\n    {await plan(db, tenants[0])}")
    for n, label in enumerate(("first page (limit 50)", "next page (cursor)")):
        s, big = results[0][n], results[1][n]
        s50, l50 = statistics.median(s), statistics.median(big)
        print(
            f"list_agreements {label}: at {totals[0]:,} agreements p50 {s50:.2f} ms p99 {percentile(s, 0.99):.2f} ms"
            f" (n={len(s)}); at {totals[1]:,} p50 {l50:.2f} ms p99 {percentile(big, 0.99):.2f} ms"
            f" (n={len(big)}): {l50 / s50:.2f}x (goal <= 1.5x)"
        )


# --- audit -------------------------------------------------------------------------------------------------


def chain_rows(
    tenant_id: uuid.UUID, first: int, count: int, prev: str, actor: uuid.UUID, at0: Any
) -> list[tuple[Any, ...]]:
    """Events `first` .. `first + count - 1` of one tenant's chain after `prev`, hashed by the service's own
    `event_hash`, as COPY records."""
    rows = []
    actions = ["agreement.created", "agreement.updated", "agreement.submitted", "agreement.signed"]
    for seq in range(first, first + count):
        data = {"status": "draft", "template_key": "standard-dpa", "changed": ["variables.processing.duration"],
                "note": f"\u00c4nderung {seq}"}  # fmt: skip
        event = SimpleNamespace(
            id=new_id(), chain=str(tenant_id), tenant_id=tenant_id, seq=seq, at=at0 + timedelta(milliseconds=seq),
            actor_id=actor, actor_role="owner", action=actions[seq % 4], target_type="agreement",
            target_id=str(uuid.UUID(int=seq)), ip="203.0.113.7", user_agent="Mozilla/5.0 (bench)",
            data=json.loads(canonical_json(data)), prev_hash=prev, hash="",
        )  # fmt: skip
        event.hash = event_hash(event)  # type: ignore[arg-type]
        prev = event.hash
        stored = json.dumps(event.data)  # as SQLAlchemy's JSON type writes it
        rows.append((event.id, event.chain, tenant_id, seq, event.at, actor, "owner", event.action, "agreement",
                     event.target_id, event.ip, event.user_agent, stored, event.prev_hash, event.hash))  # fmt: skip
    return rows


CHAIN_COLUMNS = ["id", "chain", "tenant_id", "seq", "at", "actor_id", "actor_role", "action", "target_type",
                 "target_id", "ip", "user_agent", "data", "prev_hash", "hash"]  # fmt: skip


async def load_chain(owner: asyncpg.Connection, tenant_id: uuid.UUID, count: int) -> None:
    """One tenant's chain of `count` events and its head, in COPY batches of 100,000 (bounded memory)."""
    prev, actor, at0 = GENESIS_HASH, new_id(), utcnow() - timedelta(days=365)
    for first in range(1, count + 1, 100_000):
        rows = await asyncio.to_thread(chain_rows, tenant_id, first, min(100_000, count + 1 - first), prev, actor, at0)
        await owner.copy_records_to_table("audit_events", records=rows, columns=CHAIN_COLUMNS)
        prev = rows[-1][-1]
    await owner.execute(
        "INSERT INTO audit_heads (chain, tenant_id, seq, hash) VALUES ($1, $2, $3, $4)",
        str(tenant_id), tenant_id, count, prev,
    )  # fmt: skip


def run_cli(env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and output of one `dpa` command in a process of its own."""
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dpa_service", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"dpa {' '.join(args)} exited {proc.returncode}:\n{out}")
    return elapsed, usage.ru_maxrss // 1024, out.strip()


async def bare_read(dsn: str, tenant_id: uuid.UUID) -> float:
    """Events/s for reading one chain in seq order with bare asyncpg in one process and hashing each row's stored
    JSON and link once: the least any verifier does per event."""
    conn = await asyncpg.connect(dsn)
    count = 0
    began = time.perf_counter()
    async with conn.transaction():
        cursor = await conn.cursor(
            "SELECT seq, chain, tenant_id, at, actor_id, actor_role, action, target_type, target_id, ip,"
            " user_agent, data::text, prev_hash, hash FROM audit_events WHERE chain = $1 ORDER BY seq",
            str(tenant_id),
        )
        while batch := await cursor.fetch(5000):
            for row in batch:
                hashlib.sha256((row[11] + row[12]).encode()).hexdigest()
            count += len(batch)
    elapsed = time.perf_counter() - began
    await conn.close()
    return count / elapsed


async def audit_bench(owner: asyncpg.Connection, dsn: str, env: dict[str, str], events: int) -> None:
    tenants = [r["id"] for r in await owner.fetch("SELECT id FROM tenants ORDER BY id LIMIT 2")]
    short, long = tenants[0], tenants[1]
    sizes = {short: events // 10, long: events}
    started = time.perf_counter()
    for tenant_id, count in sizes.items():
        await load_chain(owner, tenant_id, count)
    await owner.execute("ANALYZE audit_events")
    print(f"loaded chains of {sizes[short]:,} and {sizes[long]:,} events in {time.perf_counter() - started:.0f} s")
    run_cli(env, "audit", "checkpoint")
    for tenant_id, count in sizes.items():
        wall, rss, out = run_cli(env, "audit", "verify", "--tenant", str(tenant_id))
        empty, _, _ = run_cli(env, "audit", "verify", "--tenant", str(uuid.UUID(int=1)))  # start-up alone
        baseline = await bare_read(dsn, tenant_id)
        print(
            f"dpa audit verify, {count:,} events: {wall:.1f} s wall ({empty:.1f} s of it start-up: verifying an empty"
            f" chain), {count / (wall - empty):,.0f} events/s; peak RSS {rss} MB; bare asyncpg read + one sha256 per"
            f" row, one process, {baseline:,.0f} rows/s (goal >= 200,000/s)\n    {out.splitlines()[-1]}"
        )


async def main(args: argparse.Namespace) -> None:
    base = os.environ.get("DPA_BENCH_POSTGRES_URL")
    if not base:
        sys.exit("set DPA_BENCH_POSTGRES_URL (a login that may CREATE DATABASE), e.g. your own PostgreSQL's")
    run = uuid.uuid4().hex[:8]
    names = [f"dpa_scale_{run}_small", f"dpa_scale_{run}_large"]
    var_dir = Path(tempfile.mkdtemp(prefix="dpa-bench-"))
    opened: list[tuple[Database, asyncpg.Connection]] = []
    try:
        for name in names:
            await admin(base, f'CREATE DATABASE "{name}"')
            url = make_url(base).set(database=name).render_as_string(hide_password=False)
            settings = Settings(var_dir=var_dir, database=DatabaseSettings(url=url))
            await asyncio.to_thread(migrate.upgrade, settings)
            opened.append((Database(settings.database), await asyncpg.connect(asyncpg_dsn(url))))
        if not args.skip_list:
            await list_bench(opened[0], opened[1], args)
        else:
            await opened[1][1].execute(_UUID7)
            await load_tenants(opened[1][1], 0, 2)
        if args.events:
            url = make_url(base).set(database=names[1]).render_as_string(hide_password=False)
            env = {**os.environ, "DATABASE_URL": url, "DPA_VAR_DIR": str(var_dir), "PYTHONPATH": str(ROOT),
                   "DPA_LOG_LEVEL": "WARNING"}  # fmt: skip
            await audit_bench(opened[1][1], asyncpg_dsn(url), env, args.events)
    finally:
        for db, owner in opened:
            await owner.close()
            await db.dispose()
        for name in names:
            await admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(var_dir, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tenants", type=int, default=10_000)
    p.add_argument("--per-tenant", type=int, default=100)
    p.add_argument("--calls", type=int, default=20, help="list calls per sampled tenant and size")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds the calls are split into")
    p.add_argument("--events", type=int, default=2_000_000, help="the long chain (the short one is a tenth); 0: skip")
    p.add_argument("--skip-list", action="store_true", help="only the audit part")
    return p


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
