"""Mixed load from 200 clients across 1,000 tenants on 2 app processes and 2 workers (PostgreSQL, Redis), with
every response checked for belonging to its caller's tenant; `--faults` adds the fault trials.

    DPA_BENCH_POSTGRES_URL=postgresql+asyncpg://dpa_owner@127.0.0.1:55432/postgres \\
    DPA_BENCH_REDIS_URL=redis://127.0.0.1:56379/0 \\
        .venv/bin/python bench/load.py [--seconds 60] [--clients 200] [--tenants 1000] [--faults]

Use a PostgreSQL and a Redis of your own (the fault trials restart them: see bench/README.md). A scratch database
is created beside DPA_BENCH_POSTGRES_URL, migrated with `dpa db upgrade` (the service then serves through its
non-owner app role with row-level security) and dropped at the end.

Set-up, all through the HTTP API (seeding 1,000 tenants this way takes about a minute): `dpa bootstrap`, a legal
user, `--tenants` tenants (`POST /api/v1/tenants`), each owner's address confirmed through the link the workers
e-mail to the mail log, one webhook endpoint per tenant on a receiver in this process, three drafts per tenant.

Load: two uvicorn processes of `dpa_service.app:create_app` on two ports (clients alternate between them) and two
`dpa worker` processes on Redis. `--clients` clients in one asyncio process with aiohttp, each a closed loop with an
exponential think time (mean `--think` s, as people at a browser or integrations polling): Subscriber owners of a
random tenant list, read, create, submit and sign (signature request + the built-in signer's POST); a tenth of
the clients are legal, reviewing custom clauses and countersigning (with `Prefer: respond-async`: the workers
execute, and the time from countersignature to executed is reported; `--sync-countersign` waits in the request).
The PDF renders are held to `--renders` per second across all clients (each costs ~0.6-1.1 s of a core), half
for drafts made ready for signature (a submit without custom clauses, or legal approving them: the workers render
the draft then, so the signature request finds it) and half for countersignatures.
Every JSON response is walked: every `tenant_id` in it must be the caller's and every agreement id one the caller's
tenant made (printed as foreign rows, expected 0). The receiver checks each webhook's `tenant_id` against the tenant
whose endpoint it reached and dedupes by `DPA-Event-Id`. Baseline in the same run: the same clients and think
time against `GET /health` (one SELECT 1), showing what the generator and the shared cores add.

`--faults`, then: (a) 10,000 webhook deliveries (one outbox message each, queued through the outbox API for one
tenant's endpoint) while PostgreSQL is restarted and Redis stopped and started again: lost, duplicated-to-receiver
(raw repeats counted too); (b) the load again, and `kill -9` of one app process halfway: its in-flight requests must
fail as connection errors (no 5xx), and afterwards every agreement has its creation audit event, every signed or
executed one its signatures, and `dpa audit verify` and `dpa integrity check` pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import msgspec
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.agreements import request_variables

ROOT = Path(__file__).resolve().parent.parent
KEEP_ALIVE_SECONDS = 75  # as `dpa serve` sets it, with the same loop and parser (dpa_service/cli.py)
PG_CTL = next(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), None)
CONFIRMATION = re.compile(r"https?://[^/\s]+(/verify-email/[A-Za-z0-9_-]+)")
CONFIRMATION_SUBJECT = "Confirm your e-mail address for the DPA service"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else float("nan")


# --- webhook receiver ------------------------------------------------------------------------------------------


class Receiver:
    """Answers 200 to every POST; counts deliveries by DPA-Event-Id and checks each body's tenant against the
    tenant in the path (`/hooks/<tenant_id>`)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = defaultdict(int)
        self.raw = 0
        self.foreign = 0
        self.unsigned = 0

    def accept(self, head: bytes, body: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.raw += 1
        self.seen[headers.get("dpa-event-id", "")] += 1
        if not headers.get("dpa-signature", "").startswith("t="):
            self.unsigned += 1
        tenant = path.rsplit("/", 1)[-1]
        payload = json.loads(body or b"{}")
        if payload.get("tenant_id") != tenant:
            self.foreign += 1

    @property
    def duplicates(self) -> int:
        return self.raw - len(self.seen)


class _Connection(asyncio.Protocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver, self.buffer = receiver, b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            match = re.search(rb"(?i)content-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            if len(self.buffer) < end + 4 + length:
                return
            body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
            self.receiver.accept(head, body)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


# --- processes ---------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    ports: list[int]
    log: Any = None
    apps: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def dpa(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dpa_service", *args], env=self.env, cwd=ROOT, capture_output=True, text=True,
            check=check, timeout=600,
        )  # fmt: skip

    def start_app(self, port: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "uvicorn", "dpa_service.app:create_app", "--factory", "--port", str(port),
                   "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS),
                   "--loop", "asyncio", "--http", "httptools"]  # fmt: skip
        return subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=self.log, stderr=self.log)

    def start(self) -> None:
        self.apps = [self.start_app(port) for port in self.ports]
        self.start_workers()

    def start_workers(self) -> None:
        command = [sys.executable, "-m", "dpa_service", "worker", "--every", "0.2"]
        self.workers = [
            subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=self.log, stderr=self.log) for _ in range(2)
        ]

    def stop(self) -> None:
        for proc in [*self.apps, *self.workers]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.apps, *self.workers]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_up(port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(900):  # the render pool starts with the app: slow on busy shared cores
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"app on {port} did not come up")


# --- seeding -----------------------------------------------------------------------------------------------------


@dataclass
class Tenant:
    id: str
    key: str
    email: str
    drafts: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    made: list[str] = field(default_factory=list)  # every agreement it created, whatever became of it
    busy: int = 0


@dataclass
class World:
    tenants: list[Tenant]
    legal_key: str
    owner_of: dict[str, str] = field(default_factory=dict)  # agreement id -> tenant id, as the API answered
    in_review: list[tuple[str, str]] = field(default_factory=list)  # (tenant, agreement)
    signed: list[tuple[str, str]] = field(default_factory=list)
    # (since, tenant): a tenant once per agreement of its that is ready for signature, oldest first
    ready: list[tuple[float, Tenant]] = field(default_factory=list)
    async_countersign: bool = True  # legal countersigns with `Prefer: respond-async` (--sync-countersign: not)


async def gather_bounded(coros: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def seed(base: str, admin_key: str, var_dir: Path, receiver_url: str, count: int) -> World:
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=60) as client:
        admin = {"Authorization": f"Bearer {admin_key}"}
        staff = {"email": "legal@processor.example", "name": "Lee Legal", "role": "legal"}
        legal = await client.post("/staff", headers=admin, json=staff)
        legal.raise_for_status()
        as_legal = {"Authorization": f"Bearer {legal.json()['api_key']}"}
        versions = (await client.get("/templates", headers=as_legal, params={"limit": 200})).json()["items"]
        if not any(v["key"] == "standard-dpa" and v["status"] == "approved" for v in versions):
            draft = max((v for v in versions if v["key"] == "standard-dpa"), key=lambda v: v["version"])
            second = await client.post("/staff", headers=admin, json={**staff, "email": "legal2@processor.example"})
            approver = {"Authorization": f"Bearer {second.json()['api_key']}"}  # four eyes
            for action, who in (("submit", as_legal), ("approve", approver)):
                (await client.post(f"/templates/{draft['id']}/{action}", headers=who)).raise_for_status()

        async def tenant(n: int) -> Tenant:
            email = f"owner{n}@t{n}.example"
            response = await client.post("/tenants", headers=admin, json={
                "name": f"T{n}", "legal_name": f"Tenant {n} GmbH", "country": "DE", "admin_email": email,
                "admin_name": f"Olive Owner {n}", "contact_email": f"privacy@t{n}.example",
                "address": f"Strasse {n}, 10117 Berlin"})  # fmt: skip
            response.raise_for_status()
            return Tenant(response.json()["id"], response.json()["admin_api_key"], email)

        tenants = await gather_bounded([tenant(n) for n in range(count)], 16)
        world = World(tenants, legal.json()["api_key"])
        # Each owner confirms the address the workers e-mailed a link to (embedded signing needs it).
        links: dict[str, str] = {}
        log = var_dir / "mail" / "outbox.jsonl"
        for _ in range(600):
            if log.exists():
                for line in log.read_text().splitlines():
                    mail = json.loads(line)
                    if mail["subject"] == CONFIRMATION_SUBJECT and (found := CONFIRMATION.search(mail["body"])):
                        links[mail["to"]] = found.group(1)
            if all(t.email in links for t in tenants):
                break
            await asyncio.sleep(0.5)

        async def prepare(t: Tenant) -> None:
            headers = {"Authorization": f"Bearer {t.key}"}
            (await client.get(f"{base}{links[t.email]}")).raise_for_status()
            endpoint = {"url": f"{receiver_url}/hooks/{t.id}", "events": ["agreement.status_changed"]}
            hook = await client.post("/webhook-endpoints", headers=headers, json=endpoint)
            hook.raise_for_status()
            for _ in range(3):
                draft = {"template_key": "standard-dpa", "variables": request_variables()}
                created = await client.post("/agreements", headers=headers, json=draft)
                assert created.status_code == 201, created.text
                t.drafts.append(created.json()["id"])
                t.made.append(created.json()["id"])
                world.owner_of[created.json()["id"]] = t.id

        await gather_bounded([prepare(t) for t in tenants], 16)
    return world


# --- the load ----------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    foreign: int = 0
    unknown: list[tuple[str, str]] = field(default_factory=list)
    connection_errors: int = 0
    server_errors: int = 0

    def ok(self, route: str, ms: float) -> None:
        self.latencies[route].append(ms)

    def error(self, route: str, kind: str) -> None:
        self.errors[route][kind] += 1


# The caller's own input, echoed back: free text a foreign row could not hide in (its id and tenant_id sit beside).
_INPUTS = frozenset({"variables", "custom_clauses"})


def check_tenant(value: Any, tenant_id: str, world: World, stats: Stats, agreement_level: bool = False) -> None:
    """Every tenant_id in the JSON is the caller's; every agreement id one the caller's tenant made. The walk
    skips only the agreements' `variables` and `custom_clauses` (walking 50 agreements' variables cost the
    generator ~5 ms a list, on the cores the app is measured on)."""
    if isinstance(value, dict):
        if "tenant_id" in value and value["tenant_id"] not in (tenant_id, None):
            stats.foreign += 1
        if agreement_level and "template_key" in value and isinstance(value.get("id"), str):
            owner = world.owner_of.get(value["id"])
            if owner is None:
                stats.unknown.append((tenant_id, value["id"]))  # made concurrently: checked at the end
            elif owner != tenant_id:
                stats.foreign += 1
        for key, child in value.items():
            if key not in _INPUTS:
                check_tenant(child, tenant_id, world, stats, agreement_level)
    elif isinstance(value, list):
        for child in value:
            check_tenant(child, tenant_id, world, stats, agreement_level)


READ_FIRST = 10.0  # seconds between a DPA becoming ready for signature and its owner asking to sign it


class RenderBudget:
    def __init__(self, per_second: float) -> None:
        self.per_second, self.tokens, self.at = per_second, 1.0, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(2.0, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Budgets:
    drafts: RenderBudget
    executions: RenderBudget


class Client:
    """One app process as the clients see it: aiohttp (a third of httpx's CPU per request, which the generator
    spends on the cores the app is measured on) with keep-alive connections; `refused` once it is gone."""

    def __init__(self, port: int) -> None:
        self.port, self.refused = port, False
        self.session = aiohttp.ClientSession(
            f"http://127.0.0.1:{port}",
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=60),
        )


async def call(
    client: Client, stats: Stats, route: str, method: str, url: str, key: str | None, *,
    json_body: Any = None, expect: int = 200, extra_headers: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers.update(extra_headers or {})
    body = None
    if json_body is not None:
        headers["Content-Type"] = "application/json"
        body = msgspec.json.encode(json_body)
    began = time.perf_counter()
    try:
        async with client.session.request(method, url, headers=headers, data=body) as response:
            content = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.connection_errors += 1
        stats.error(route, type(exc).__name__)
        refused = isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError)
        client.refused = client.refused or refused
        return None
    ms = (time.perf_counter() - began) * 1000
    if response.status != expect:
        stats.error(route, str(response.status))
        if response.status >= 500:
            stats.server_errors += 1
        return None
    stats.ok(route, ms)
    # msgspec: a 50-agreement list is ~150 KB of JSON, and the stdlib's parse of it is generator time.
    json_reply = response.headers.get("Content-Type", "").startswith("application/json")
    return msgspec.json.decode(content) if json_reply else None


async def subscriber_step(client: Client, world: World, stats: Stats, budget: RenderBudget) -> None:
    roll = random.random()
    # One step in 16 is an owner signing the DPA made ready longest ago, once it has been ready for READ_FIRST
    # seconds (the workers render its draft then; a person reads the DPA before asking to sign it).
    signing = roll < 0.06 and bool(world.ready) and world.ready[0][0] <= time.monotonic() - READ_FIRST
    t = world.ready.pop(0)[1] if signing else random.choice(world.tenants)
    if t.busy:  # another client is mid-way through a step of this tenant's: take another tenant
        if signing:
            world.ready.append((time.monotonic() - READ_FIRST, t))
        return
    t.busy += 1
    try:
        if signing:
            aid = t.ready.pop(0)
            me = {"name": f"Olive Owner {t.email[5:].split('@')[0]}", "email": t.email, "title": "CEO"}
            requested = await call(client, stats, "POST /agreements/{id}/signature-requests", "POST",
                                   f"/api/v1/agreements/{aid}/signature-requests", t.key,
                                   json_body={"provider": "builtin", "signer": me}, expect=201)  # fmt: skip
            if requested and requested.get("signing_url"):
                token = requested["signing_url"].rsplit("/", 1)[-1]
                signed = await call(client, stats, "POST /sign/{token}", "POST", f"/sign/{token}", None,
                                    json_body={"typed_name": me["name"], "consent": True,
                                               "authority_confirmed": True})  # fmt: skip
                if signed is not None:
                    world.signed.append((t.id, aid))
        elif roll < 0.16 and t.drafts and budget.take():  # a draft made ready is rendered by a worker
            aid = t.drafts.pop()
            body = await call(client, stats, "POST /agreements/{id}/submit", "POST",
                              f"/api/v1/agreements/{aid}/submit", t.key)  # fmt: skip
            if body:
                check_tenant(body, t.id, world, stats, True)
                if body["status"] == "in_legal_review":
                    world.in_review.append((t.id, aid))
                else:
                    t.ready.append(aid)
                    world.ready.append((time.monotonic(), t))
        elif roll < 0.36:
            custom = random.random() < 0.3
            body_in = {"template_key": "standard-dpa", "variables": request_variables(),
                       "custom_clauses": [{"title": "Audit window", "text": "30 days"}] if custom else []}  # fmt: skip
            body = await call(client, stats, "POST /agreements", "POST", "/api/v1/agreements", t.key,
                              json_body=body_in, expect=201)  # fmt: skip
            if body:
                world.owner_of[body["id"]] = t.id
                check_tenant(body, t.id, world, stats, True)
                t.drafts.append(body["id"])
                t.made.append(body["id"])
        elif roll < 0.66:
            body = await call(client, stats, "GET /agreements", "GET", "/api/v1/agreements?limit=50", t.key)
            if body:
                check_tenant(body, t.id, world, stats, True)
        else:
            if not t.made:
                return
            aid = random.choice(t.made)
            body = await call(client, stats, "GET /agreements/{id}", "GET", f"/api/v1/agreements/{aid}", t.key)
            if body:
                check_tenant(body, t.id, world, stats, True)
    finally:
        t.busy -= 1


async def legal_step(client: Client, world: World, stats: Stats, budgets: Budgets) -> None:
    if world.signed and budgets.executions.take():
        tenant_id, aid = world.signed.pop(0)
        if world.async_countersign:  # checked and queued; the workers execute it (`executions` reports them)
            body = await call(client, stats, "POST /agreements/{id}/countersign (respond-async)", "POST",
                              f"/api/v1/agreements/{aid}/countersign", world.legal_key, expect=202,
                              extra_headers={"Prefer": "respond-async"})  # fmt: skip
        else:
            body = await call(client, stats, "POST /agreements/{id}/countersign", "POST",
                              f"/api/v1/agreements/{aid}/countersign", world.legal_key)  # fmt: skip
        if body:
            check_tenant(body, tenant_id, world, stats)
        return
    if world.in_review and random.random() < 0.5 and budgets.drafts.take():  # approved: a worker renders it
        tenant_id, aid = world.in_review.pop(0)
        body = await call(client, stats, "POST /agreements/{id}/review", "POST", f"/api/v1/agreements/{aid}/review",
                          world.legal_key, json_body={"decision": "approve", "comment": "fine"})  # fmt: skip
        if body:
            check_tenant(body, tenant_id, world, stats)
            approved = next(t for t in world.tenants if t.id == tenant_id)
            approved.ready.append(aid)
            world.ready.append((time.monotonic(), approved))
        return
    t = random.choice(world.tenants)
    body = await call(client, stats, "GET /agreements?tenant_id= (legal)", "GET",
                      f"/api/v1/agreements?tenant_id={t.id}&limit=50", world.legal_key)  # fmt: skip
    if body:
        check_tenant(body, t.id, world, stats, True)


async def run_load(
    world: World, ports: list[int], clients: int, seconds: float, think: float, renders: float, *,
    health_only: bool = False, on_half: Any = None,
) -> Stats:  # fmt: skip
    stats = Stats()
    # Half the renders are drafts made ready (rendered ahead by the workers), half executions.
    budgets = Budgets(RenderBudget(renders / 2), RenderBudget(renders / 2))
    deadline = time.monotonic() + seconds
    pools = [Client(port) for port in ports]

    async def client_loop(n: int) -> None:
        legal = n % 10 == 9
        while time.monotonic() < deadline:
            await asyncio.sleep(random.expovariate(1 / think))
            # Clients alternate between the processes; one that refused a connection is gone (killed): the
            # clients go to the other, as a load balancer's health check would send them.
            alive = [pool for pool in pools if not pool.refused] or pools
            pool = alive[n % len(alive)]
            if health_only:
                await call(pool, stats, "GET /health", "GET", "/health", None)
            elif legal:
                await legal_step(pool, world, stats, budgets)
            else:
                await subscriber_step(pool, world, stats, budgets.drafts)

    async def half() -> None:
        await asyncio.sleep(seconds / 2)
        if on_half:
            on_half()

    await asyncio.gather(half(), *(client_loop(n) for n in range(clients)))
    for pool in pools:
        await pool.session.close()
    for tenant_id, aid in stats.unknown:
        if world.owner_of.get(aid) != tenant_id:
            stats.foreign += 1
    return stats


def report(label: str, stats: Stats, seconds: float) -> None:
    total = sum(len(v) for v in stats.latencies.values())
    errors = sum(sum(v.values()) for v in stats.errors.values())
    print(f"{label}: {total:,} requests in {seconds:.0f} s ({total / seconds:.0f}/s), {errors} errors, "
          f"{stats.foreign} foreign rows")  # fmt: skip
    for route in sorted(set(stats.latencies) | set(stats.errors)):
        values = stats.latencies.get(route, [])
        errs = dict(stats.errors.get(route, {}))
        print(f"  {route:<42} n={len(values):6d}  p50 {percentile(values, 0.5):7.1f} ms  "
              f"p99 {percentile(values, 0.99):7.1f} ms  errors {errs or 0}")  # fmt: skip


# --- faults --------------------------------------------------------------------------------------------------------


def pg_ctl(data_dir: str, *args: str) -> None:
    assert PG_CTL is not None
    # -l: the server must not inherit our pipes (run() would wait for the server to close them).
    command = [str(PG_CTL), "-D", data_dir, "-w", "-l", str(Path(data_dir).parent / "log"), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def redis(port: int, action: str) -> None:
    if action == "stop":
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=30)
    else:
        command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "yes"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


async def deliveries_under_faults(
    stack: Stack, owner_url: str, world: World, receiver: Receiver, count: int, pg_data: str, redis_port: int
) -> None:
    """`count` outbox messages for one tenant's endpoint, then PostgreSQL restarted and Redis stopped/started while
    the workers deliver them."""
    from dpa_service import models  # noqa: F401 - every table, so the outbox's foreign keys resolve
    from dpa_service.core.db import Database, Scope
    from dpa_service.core.settings import DatabaseSettings
    from dpa_service.notifications.outbox import enqueue_many

    tenant = world.tenants[0]
    db = Database(DatabaseSettings(url=owner_url))
    receiver.seen.clear()
    receiver.raw = 0
    run = uuid.uuid4().hex[:8]
    async with db.transaction(Scope.system()) as session:
        await enqueue_many(
            session, "agreement.status_changed",
            [(uuid.UUID(tenant.id), f"bench-fault:{run}:{n}",
              {"agreement_id": str(uuid.UUID(int=n)), "status": "signed", "notify_by_email": False})
             for n in range(count)],
        )  # fmt: skip
    await db.dispose()
    began = time.perf_counter()
    steps = [(count * 0.15, "restart PostgreSQL"), (count * 0.45, "stop Redis"), (None, "start Redis")]
    timeline = []
    stopped_at = 0.0
    deadline = time.monotonic() + 600
    while len(receiver.seen) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if steps and steps[0][0] is not None and len(receiver.seen) >= steps[0][0]:
            _, what = steps.pop(0)
            timeline.append(f"{time.perf_counter() - began:.1f} s at {len(receiver.seen)} delivered: {what}")
            if what == "restart PostgreSQL":
                await asyncio.to_thread(pg_ctl, pg_data, "restart", "-m", "fast")
            else:
                await asyncio.to_thread(redis, redis_port, "stop")
                stopped_at = time.monotonic()
        elif steps and steps[0][0] is None and time.monotonic() - stopped_at > 5:
            _, what = steps.pop(0)
            timeline.append(f"{time.perf_counter() - began:.1f} s at {len(receiver.seen)} delivered: {what}")
            await asyncio.to_thread(redis, redis_port, "start")
        for n, proc in enumerate(stack.workers):
            if proc.poll() is not None:
                timeline.append(f"{time.perf_counter() - began:.1f} s: worker {n} exited ({proc.returncode})")
                restart = subprocess.Popen  # a supervisor's restart, not timed
                stack.workers[n] = restart(proc.args, env=stack.env, cwd=ROOT, stdout=stack.log, stderr=stack.log)
    await asyncio.sleep(3)  # late repeats, if any
    ids = {f"{k}" for k in receiver.seen}
    print(f"faults (a): {count:,} webhook deliveries in {time.perf_counter() - began:.1f} s; "
          f"unique event ids {len(ids):,} (expected {count:,}), lost {count - len(ids)}, raw repeats "
          f"{receiver.duplicates}, foreign {receiver.foreign}")  # fmt: skip
    for line in timeline:
        print(f"    {line}")


async def executions(owner_url: str) -> None:
    """How long queued countersignatures waited for the workers: from legal's countersignature (the processor
    signature's time) to the sealed, executed agreement; and how many are still queued or failed."""
    import asyncpg  # type: ignore[import-untyped]

    dsn = make_url(owner_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    # Until the execution committed (its audit event, written in that transaction after the render and the seal);
    # `executed_at` is taken before the executed PDF is rendered, so it would leave the render out.
    waits = [float(row[0]) * 1000 for row in await conn.fetch(
        "SELECT extract(epoch FROM e.at - s.signed_at) FROM audit_events e JOIN signatures s "
        "ON s.agreement_id::text = e.target_id AND s.role = 'processor' "
        "WHERE e.action = 'agreement.countersign'")]  # fmt: skip
    queued = int(await conn.fetchval("SELECT count(*) FROM agreements WHERE execution_queued_at IS NOT NULL"))
    failed = int(await conn.fetchval("SELECT count(*) FROM agreements WHERE execution_error IS NOT NULL"))
    await conn.close()
    spread = f"p50 {percentile(waits, 0.5):.0f} ms, p99 {percentile(waits, 0.99):.0f} ms" if waits else "none"
    print(f"  executed: {len(waits)}, countersignature to executed {spread}; still queued {queued}, "
          f"failed {failed}")  # fmt: skip


async def consistency(stack: Stack, owner_url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    async def queries() -> dict[str, int]:
        dsn = make_url(owner_url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        checks = {
            "agreements": "SELECT count(*) FROM agreements",
            "agreements without their creation audit event":
                "SELECT count(*) FROM agreements a WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE "
                "e.target_id = a.id::text AND e.action = 'agreement.created')",
            "signed/executed agreements without a subscriber signature":
                "SELECT count(*) FROM agreements a WHERE a.status IN ('signed', 'executed') AND NOT EXISTS "
                "(SELECT 1 FROM signatures s WHERE s.agreement_id = a.id)",
            "executed agreements without their sealed document":
                "SELECT count(*) FROM agreements a WHERE a.status = 'executed' AND NOT EXISTS "
                "(SELECT 1 FROM agreement_documents d WHERE d.agreement_id = a.id)",
            "status changes without an outbox message":
                "SELECT count(*) FROM agreements a WHERE a.status <> 'draft' AND NOT EXISTS "
                "(SELECT 1 FROM outbox o WHERE o.topic = 'agreement.status_changed' AND "
                "o.payload->>'agreement_id' = a.id::text)",
        }  # fmt: skip
        found = {label: int(await conn.fetchval(sql)) for label, sql in checks.items()}
        await conn.close()
        return found

    for label, value in (await queries()).items():
        print(f"    {label}: {value}")
    for args in (("audit", "verify"), ("integrity", "check")):
        result = await asyncio.to_thread(stack.dpa, *args, check=False)
        tail = (result.stdout.strip().splitlines() or [""])[-1]
        print(f"    dpa {' '.join(args)}: exit {result.returncode} ({tail[:100]})")


# --- main ----------------------------------------------------------------------------------------------------------


async def admin_sql(url: str, statement: str) -> None:
    from dpa_service.core.db import make_engine

    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    base = os.environ.get("DPA_BENCH_POSTGRES_URL")
    redis_url = os.environ.get("DPA_BENCH_REDIS_URL")
    if not base or not redis_url:
        sys.exit("set DPA_BENCH_POSTGRES_URL and DPA_BENCH_REDIS_URL (your own PostgreSQL and Redis)")
    name = f"dpa_load_{uuid.uuid4().hex[:8]}"
    await admin_sql(base, f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    var_dir = Path(tempfile.mkdtemp(prefix="dpa-load-"))
    ports = [free_port(), free_port()]
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "DPA_VAR_DIR": str(var_dir),
           "PYTHONPATH": str(ROOT), "DPA_ENV": "development", "DPA_WEBHOOK_ALLOW_PRIVATE": "1",
           "DPA_RATE_LIMIT": "1000000", "DPA_IN_PROCESS_WORKER": "0", "DPA_LOG_LEVEL": "WARNING",
           "DPA_QUEUE_NAME": f"dpa-load-{uuid.uuid4().hex[:8]}", "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports[0]}",
           "DATABASE_POOL_SIZE": "20", "DPA_RENDER_PROCESSES": "1"}  # fmt: skip
    log_path = Path(tempfile.gettempdir()) / f"{name}.log"
    stack = Stack(env, ports, log_path.open("w"))
    print(f"app and worker logs: {log_path}")
    receiver = Receiver()
    server = await asyncio.get_running_loop().create_server(lambda: _Connection(receiver), "127.0.0.1", 0, backlog=2048)
    receiver_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        stack.dpa("db", "upgrade")
        admin_key = json.loads(stack.dpa("bootstrap", "--email", "admin@processor.example").stdout)["api_key"]
        stack.start()
        for port in ports:
            await wait_up(port)
        began = time.perf_counter()
        world = await seed(f"http://127.0.0.1:{ports[0]}", admin_key, var_dir, receiver_url, args.tenants)
        world.async_countersign = not args.sync_countersign
        print(f"seeded {args.tenants} tenants through the API (tenant, owner's address confirmed, webhook endpoint, "
              f"3 drafts each) in {time.perf_counter() - began:.0f} s")  # fmt: skip

        baseline = await run_load(world, ports, args.clients, args.baseline_seconds, args.think, 0, health_only=True)
        report(f"baseline GET /health, {args.clients} clients, think {args.think} s", baseline, args.baseline_seconds)
        before = receiver.raw
        stats = await run_load(world, ports, args.clients, args.seconds, args.think, args.renders)
        report(f"mixed load, {args.clients} clients over {args.tenants} tenants, think {args.think} s", stats,
               args.seconds)  # fmt: skip
        await asyncio.sleep(5 + args.settle)  # the last status changes' webhooks, the queued executions
        print(f"  webhooks during the run: {receiver.raw - before} delivered, {receiver.foreign} to a foreign "
              f"endpoint, {receiver.duplicates} repeated event ids, {receiver.unsigned} unsigned")  # fmt: skip
        await executions(url)

        if args.faults:
            pg_data = os.environ.get("DPA_BENCH_PG_DATA")
            redis_port = make_url(redis_url.replace("redis://", "redis+x://")).port or 6379
            if not pg_data:
                sys.exit("--faults needs DPA_BENCH_PG_DATA (the data directory of your own PostgreSQL)")
            await deliveries_under_faults(stack, url, world, receiver, args.deliveries, pg_data, redis_port)
            victim = stack.apps[1]

            def kill() -> None:
                print(f"  kill -9 app process {victim.pid} (port {ports[1]})")
                os.kill(victim.pid, signal.SIGKILL)

            stats = await run_load(world, ports, args.clients, args.seconds, args.think, args.renders, on_half=kill)
            report("faults (b): mixed load with one app process killed halfway", stats, args.seconds)
            print(f"  connection errors {stats.connection_errors}, 5xx {stats.server_errors}, "
                  f"foreign rows {stats.foreign}")  # fmt: skip
            stack.stop()
            await consistency(stack, url)
    finally:
        stack.stop()
        server.close()
        await admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(var_dir, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--baseline-seconds", type=float, default=15)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--think", type=float, default=1.0, help="mean think time between a client's requests (s)")
    # 12 a minute: a busy campaign day for 1,000 tenants is a few hundred signatures; at 0.5/s renders alone
    # (0.6-1.5 s of a core each) outgrow what the interactive load leaves of 2 cores.
    p.add_argument("--renders", type=float, default=0.2, help="PDF renders per second across all clients")
    p.add_argument("--settle", type=float, default=25, help="seconds after the load for queued executions")
    p.add_argument("--sync-countersign", action="store_true", help="countersign in the request (no Prefer header)")
    p.add_argument("--faults", action="store_true")
    p.add_argument("--deliveries", type=int, default=10_000, help="webhook deliveries in fault trial (a)")
    return p


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
