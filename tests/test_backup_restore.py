"""The README's backup and restore, done as an operator would: `pg_dump -Fc` as the owner plus a copy of the key
directory, `pg_restore` into a fresh database, `dpa db upgrade`, `dpa integrity check`. The restored service passes;
without its key directory it does not; and a document changed in the restored copy by its owner is named."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from dpa_service import integrity, migrate
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from tests.conftest import IN_CI, TAG, WORKER, settings_for
from tests.helpers.api import Api
from tests.helpers.evidence import executed_service, flip_a_byte

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: this is its backup (a SQLite service is backed up by copying var/ whole). Skipped, saying
    so, without DPA_TEST_POSTGRES_URL; CI sets it."""
    return str(request.param)


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_tool(name: str, server_major: int) -> str:
    """pg_dump/pg_restore of the server's major version (another major refuses, or writes what this one cannot
    read): Debian keeps each under /usr/lib/postgresql/<major>/bin."""
    for candidate in (f"/usr/lib/postgresql/{server_major}/bin/{name}", shutil.which(name)):
        if candidate and Path(candidate).is_file():
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False).stdout
            if (match := re.search(r"\) (\d+)", version)) and int(match.group(1)) == server_major:
                return candidate
    message = f"no {name} for PostgreSQL {server_major} (install postgresql-client-{server_major})"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def fresh_database(settings: Settings) -> AsyncIterator[str]:
    """An empty database to restore into, named like the suite's own so a killed run's is dropped next time."""
    owner = libpq(settings.database.url)
    name = f"dpa_t_{WORKER}_{TAG:08x}_{900000 + secrets.randbelow(99999)}"
    conn = await asyncpg.connect(owner)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield make_url(settings.database.url).set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=False, env=env)


def dpa(var_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DPA_VAR_DIR": str(var_dir), "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "dpa_service", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


async def test_a_restored_dump_with_its_keys_passes_the_integrity_check_and_a_changed_copy_fails(
    admin: Api, db: Database, settings: Settings, fresh_database: str, tmp_path: Path
) -> None:
    built = await executed_service(admin, db, settings)
    conn = await asyncpg.connect(libpq(settings.database.url))
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()

    # Back up: the database as its owner (row-level security binds the owner too, so the dump reads with it on and
    # the cross-tenant scope every policy admits), and the key directory (seal key and certificate, app secret).
    dump = tmp_path / "dpa.dump"
    done = await run(
        [
            pg_tool("pg_dump", major),
            "-Fc",
            "--enable-row-security",
            "-f",
            str(dump),
            "-d",
            libpq(settings.database.url),
        ],
        env={**os.environ, "PGOPTIONS": "-c app.cross_tenant=on"},
    )
    assert done.returncode == 0, done.stderr

    # Restore on a "new host": a fresh database and an empty var dir.
    restored_var = tmp_path / "restored-var"
    restored_var.mkdir()
    done = await run([pg_tool("pg_restore", major), "--exit-on-error", "-d", libpq(fresh_database), str(dump)])
    assert done.returncode == 0, done.stderr
    # `dpa db upgrade` and a first check without the keys, in this process (each `dpa` process costs seconds).
    restored = settings_for(fresh_database, restored_var)
    await asyncio.to_thread(migrate.upgrade, restored)
    restored_db = Database(restored.database)
    try:
        keyless = await integrity.check(restored_db, restored)
    finally:
        await restored_db.dispose()
    assert {p.kind for p in keyless.problems} == {"seal_certificate", "service_secret"}, keyless.summary()
    assert not (restored_var / "keys").exists(), "a check never makes a key"

    for directory in ("keys", "checkpoints"):
        if (settings.var_dir / directory).is_dir():
            shutil.copytree(settings.var_dir / directory, restored_var / directory)
    passed = dpa(restored_var, fresh_database, "integrity", "check", "--jobs", "1")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    summary = json.loads(passed.stdout)
    assert summary["ok"] and summary["problems"] == 0
    assert summary["checked"]["agreement_documents"] == 1 and summary["checked"]["deletion_certificates"] == 1
    assert summary["checked"]["webhook_secrets"] == 1 and summary["checked"]["audit_events"] > 5

    engine = create_async_engine(fresh_database)
    try:
        await flip_a_byte(engine, "agreement_documents", "agreement_id", built["agreement"])
    finally:
        await engine.dispose()
    failed = dpa(restored_var, fresh_database, "integrity", "check", "--jobs", "1")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    problems = json.loads(failed.stdout)["first_problems"]
    assert {p["id"] for p in problems} == {built["agreement"]}
    assert any("do not match their SHA-256" in p["problem"] for p in problems)
