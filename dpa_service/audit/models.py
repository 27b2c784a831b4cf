"""The append-only, hash-chained audit log: one chain per tenant, plus one for platform events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from dpa_service.core.db import UTCDateTime

PLATFORM_CHAIN = "platform"
GENESIS_HASH = "0" * 64


def chain_of(tenant_id: uuid.UUID | None) -> str:
    """The chain a tenant's events are in (the platform's for None)."""
    return str(tenant_id) if tenant_id else PLATFORM_CHAIN


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (Index("uq_audit_events_chain_seq", "chain", "seq", unique=True),)

    id: uuid.UUID = Field(primary_key=True)
    chain: str = Field(max_length=36)
    tenant_id: uuid.UUID | None = Field(default=None, index=True)
    seq: int
    at: datetime = Field(sa_type=UTCDateTime)
    actor_id: uuid.UUID | None = None
    actor_role: str | None = Field(default=None, max_length=20)
    action: str = Field(max_length=100)
    target_type: str = Field(max_length=50)
    target_id: str | None = Field(default=None, max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The last (seq, hash) of each chain: it serializes appends and shows a truncated tail."""

    __tablename__ = "audit_heads"

    chain: str = Field(primary_key=True, max_length=36)
    tenant_id: uuid.UUID | None = Field(default=None, index=True)
    seq: int
    hash: str = Field(max_length=64)


class AuditEventPublic(SQLModel):
    seq: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_role: str | None
    action: str
    target_type: str
    target_id: str | None
    ip: str | None
    user_agent: str | None
    data: dict[str, Any]
    tenant_id: uuid.UUID | None
    hash: str
    prev_hash: str


class ChainVerification(SQLModel):
    ok: bool
    events: int
    head: str
    chain: str
    broken_seq: int | None = None
    problem: str | None = None
    # Against the signed checkpoints kept outside the database: None when the chain has none yet.
    checkpoint_ok: bool | None = None
    checkpoints: int = 0
    # At a divergence from a checkpoint: the head hash it signed, and what the chain holds there (None: nothing).
    expected: str | None = None
    found: str | None = None


class CheckpointPublic(SQLModel):
    """One signed checkpoint. The signature covers the canonical JSON (keys sorted, no spaces) of `at`, `chain`,
    `head_hash`, `seq` and `tenant_id`; `at` is given exactly as signed."""

    chain: str
    tenant_id: uuid.UUID | None
    seq: int
    head_hash: str
    at: str
    signature: str
    key_id: str


class CheckpointKeyPublic(SQLModel):
    """The key checkpoints are signed with (the service seal's), to verify them offline."""

    key_id: str
    algorithm: str
    public_key_pem: str
    certificate_pem: str
    signed_fields: list[str]
