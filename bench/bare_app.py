"""The baseline for bench/api.py: a bare Litestar handler doing the same single indexed select as our
authentication (API key hash -> user), with the same driver and engine settings, and no framework extras."""

from __future__ import annotations

import hashlib
import os

from litestar import Litestar, Request, Response, get
from sqlalchemy import text

from dpa_service.core.db import make_engine

engine = make_engine(os.environ["DATABASE_URL"])
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


app = Litestar([me])
