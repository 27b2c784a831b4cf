"""`Idempotency-Key` for every create endpoint (API.md, Conventions).

The claim on a key, the object created and the stored response are written in one transaction, so a retry
either finds the whole first result or nothing at all. A duplicate that arrives while the first is in flight
waits on the key's row (PostgreSQL: the unique index; SQLite: the single writer lock) and then replays.

Keys are scoped to the calling user and kept for 24 hours. A stored response may hold a secret shown once
(a new API key), so it is encrypted with a key derived from the Idempotency-Key and the service's own secret
(`app_secret`); the database keeps neither, only an HMAC of the key. Someone with a copy of the database alone
can neither recognise a guessed key nor decrypt a stored response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from litestar import Request, Response
from litestar.exceptions import ClientException
from litestar.openapi.datastructures import ResponseSpec
from pydantic import BaseModel
from sqlalchemy import LargeBinary, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, Scope, UTCDateTime
from dpa_service.core.exceptions import FieldError, IdempotencyKeyReused, InvalidInput
from dpa_service.core.identity import Principal
from dpa_service.core.secrets import Sealer

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"

    key_hash: str = Field(primary_key=True, max_length=64)
    tenant_id: uuid.UUID | None = Field(default=None, index=True)
    user_id: uuid.UUID
    method: str = Field(max_length=10)
    path: str = Field(max_length=500)
    request_hash: str = Field(max_length=64)
    status_code: int = 0
    response: bytes = Field(default=b"", sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


def created(model: type[BaseModel]) -> dict[int, ResponseSpec]:
    """OpenAPI for a create endpoint, whose handler answers raw JSON bytes (fresh or replayed)."""
    return {
        201: ResponseSpec(
            data_container=model,
            generate_examples=False,
            description="Created (or replayed for a repeated Idempotency-Key)",
        )
    }


def _key_hash(secret: bytes, key: str, user_id: uuid.UUID) -> str:
    return hmac.new(secret, f"{user_id}:{key}".encode(), hashlib.sha256).hexdigest()


def _sealer(secret: bytes, key: str, user_id: uuid.UUID) -> Sealer:
    return Sealer(secret + b"\0" + key.encode(), b"dpa idempotent response", salt=user_id.bytes)


async def purge_expired(db: Database) -> int:
    """Forget records past their 24 hours (the server does this now and then)."""
    async with db.transaction(Scope.system()) as session:
        result = await session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def _request_hash(request: Request) -> str:
    raw = await request.body()
    try:
        parsed = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise ClientException("The request body is not valid JSON.") from exc
    return hashlib.sha256(_json_bytes(parsed)).hexdigest()


async def _claim(session: AsyncSession, record: IdempotencyRecord) -> IdempotencyRecord | None:
    """Insert the claim, or return the live record another request made with the same key."""
    existing = await session.get(IdempotencyRecord, record.key_hash)
    if existing is not None and as_utc(existing.expires_at) <= utcnow():
        await session.delete(existing)
        await session.flush()
        existing = None
    if existing is not None:
        return existing
    try:
        async with session.begin_nested():
            session.add(record)
    except IntegrityError:
        # A concurrent request with the same key committed first (we waited for it on its unique index).
        return await session.get(IdempotencyRecord, record.key_hash, populate_existing=True)
    return None


async def create_once(
    db: Database,
    request: Request,
    principal: Principal,
    work: Callable[[], Awaitable[BaseModel]],
    *,
    status_code: int = 201,
) -> Response[bytes]:
    """Run `work` (a service call) in one transaction and answer `status_code`, honouring the Idempotency-Key.

    The service's own transaction joins the one opened here (core.db), so the claim, the object created and the
    stored response commit together or not at all."""
    key = request.headers.get(HEADER)
    secret: bytes = request.app.state.secret
    if key is None:
        result = await work()
        return Response(
            _json_bytes(result.model_dump(mode="json")),
            status_code=status_code,
            media_type="application/json",
        )
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput.field(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable characters")
    claim = IdempotencyRecord(
        key_hash=_key_hash(secret, key, principal.user_id),
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        method=request.method,
        path=request.url.path[:500],
        request_hash=await _request_hash(request),
        expires_at=utcnow() + RETENTION,
    )
    async with db.transaction(principal.scope) as session:
        stored = await _claim(session, claim)
        if stored is None:
            payload = _json_bytes((await work()).model_dump(mode="json"))
            claim.status_code, claim.response = status_code, _sealer(secret, key, principal.user_id).seal(payload)
            await session.flush()
    if stored is None:
        return Response(payload, status_code=status_code, media_type="application/json")
    if stored.request_hash != claim.request_hash or stored.path != claim.path:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request.",
            [FieldError(HEADER, "was already used with a different request body")],
        )
    return Response(
        _sealer(secret, key, principal.user_id).open(stored.response),
        status_code=stored.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )
