"""Create the PostgreSQL login and database the tests use (idempotent); print the URL for DPA_TEST_POSTGRES_URL.

The login owns the test database and may create roles, like a production migration login; it is neither
superuser nor BYPASSRLS. The app then serves through the role its migrations create, so RLS applies.
Connects as DPA_TEST_PG_ADMIN_URL (default: postgres on 127.0.0.1, trust auth); exits 1 if unreachable.
"""

from __future__ import annotations

import asyncio
import os
import sys
from urllib.parse import urlsplit

import asyncpg

ADMIN_URL = os.environ.get("DPA_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OWNER, DATABASE = "dpa_owner", "dpa_test"


async def main() -> str:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", OWNER):
            await conn.execute(f"CREATE ROLE {OWNER} LOGIN CREATEDB CREATEROLE NOSUPERUSER NOBYPASSRLS")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
    finally:
        await conn.close()
    where = urlsplit(ADMIN_URL)
    return f"postgresql+asyncpg://{OWNER}@{where.hostname or '127.0.0.1'}:{where.port or 5432}/{DATABASE}"


if __name__ == "__main__":
    try:
        print(asyncio.run(main()))  # noqa: T201
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL not reachable at {ADMIN_URL}: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(1)
