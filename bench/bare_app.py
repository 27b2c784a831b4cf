"""The baselines for bench/api.py: bare Litestar handlers doing the same indexed selects as ours (API key hash ->
user; then a tenant's first page of agreements) and encoding the same JSON, with the same driver and engine
settings, and no framework extras (no middleware, guards, dependency injection, transactions or schemas)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

from litestar import Litestar, Request, Response, get
from sqlalchemy import text

from dpa_service.core.db import make_engine

# The same engine settings, and like ours no BEGIN/ROLLBACK around a single read (SQLite autocommit).
engine = make_engine(os.environ["DATABASE_URL"]).execution_options(dpa_single_read=True)
QUERY = text(
    "SELECT users.id, users.tenant_id, users.role, users.email, users.name FROM api_keys "
    "JOIN users ON users.id = api_keys.user_id WHERE api_keys.key_hash = :h AND api_keys.revoked_at IS NULL"
)


@get("/me")
async def me(request: Request) -> Response[dict[str, str | None]]:
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    async with engine.connect() as conn:
        row = (await conn.execute(QUERY, {"h": hashlib.sha256(key.encode()).hexdigest()})).one()
    return Response({"id": str(row[0]), "email": row[3], "name": row[4], "role": row[2], "tenant_id": None})


AGREEMENTS = text(
    "SELECT id, tenant_id, status, template_id, template_key, template_version, template_sha256, variables, "
    "custom_clauses, review_comment, reviewed_at, subprocessor_list_version, created_at, updated_at, submitted_at, "
    "signed_at, executed_at, effective_date, document_sha256, sealed_at, voided_at, void_reason, superseded_by "
    "FROM agreements WHERE tenant_id = :t ORDER BY id LIMIT :n"
)
JSON_COLUMNS = {"variables", "custom_clauses"}
ID_COLUMNS = {"id", "tenant_id", "template_id", "superseded_by"}


def _value(column: str, value: object) -> object:
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return json.loads(value) if isinstance(value, str) else value
    if column in ID_COLUMNS:
        return str(uuid.UUID(hex=value) if isinstance(value, str) else value)
    if isinstance(value, str) and column.endswith("_at"):
        return value.replace(" ", "T") + "Z"
    return value


@get("/agreements")
async def agreements(request: Request, limit: int = 50) -> Response[dict[str, object]]:
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    async with engine.connect() as conn:
        user = (await conn.execute(QUERY_TENANT, {"h": hashlib.sha256(key.encode()).hexdigest()})).one()
        rows = (await conn.execute(AGREEMENTS, {"t": user[0], "n": limit + 1})).mappings().all()
    items = [{column: _value(column, value) for column, value in row.items()} for row in rows[:limit]]
    return Response({"items": items, "next_cursor": str(rows[limit]["id"]) if len(rows) > limit else None})


QUERY_TENANT = text(
    "SELECT users.tenant_id FROM api_keys JOIN users ON users.id = api_keys.user_id "
    "WHERE api_keys.key_hash = :h AND api_keys.revoked_at IS NULL"
)

app = Litestar([me, agreements])
