"""Signature requests (single-use signing links) and the evidence of each signature."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from dpa_service.clock import utcnow
from dpa_service.db import UTCDateTime
from dpa_service.ids import new_id


class RequestStatus(StrEnum):
    PENDING = "pending"
    SIGNED = "signed"
    VOIDED = "voided"
    EXPIRED = "expired"


class SignatureRequest(SQLModel, table=True):
    """A link sent to one signer. Only the SHA-256 of its token is stored; the token is burned when used."""

    __tablename__ = "signature_requests"
    __table_args__ = (Index("ix_signature_requests_tenant_agreement", "tenant_id", "agreement_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    provider: str = Field(default="builtin", max_length=20)
    status: str = Field(default=RequestStatus.PENDING.value, max_length=20)
    signer_name: str = Field(max_length=200)
    signer_email: str = Field(max_length=320)
    signer_title: str = Field(max_length=200)
    token_hash: str = Field(max_length=64, unique=True)
    document_sha256: str = Field(max_length=64)
    requested_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Signature(SQLModel, table=True):
    """Evidence of one signature, append-only: who, when, from where, on exactly which bytes, with what consent."""

    __tablename__ = "signatures"
    __table_args__ = (Index("ix_signatures_tenant_agreement", "tenant_id", "agreement_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    request_id: uuid.UUID | None = Field(default=None, foreign_key="signature_requests.id")
    role: str = Field(max_length=20)  # subscriber | processor
    user_id: uuid.UUID | None = None
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    title: str = Field(max_length=200)
    typed_name: str = Field(max_length=200)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    consent: bool
    consent_text_sha256: str = Field(max_length=64)
    authority_confirmed: bool
    document_sha256: str = Field(max_length=64)


class SignaturePublic(SQLModel):
    role: str
    name: str
    email: str
    title: str
    typed_name: str
    signed_at: datetime
    ip: str | None
    user_agent: str | None
    consent: bool
    consent_text_sha256: str
    authority_confirmed: bool
    document_sha256: str


class Evidence(SQLModel):
    agreement_id: uuid.UUID
    status: str
    signatures: list[SignaturePublic]
    executed_sha256: str | None
    sealed_at: datetime | None


class SignatureRequestPublic(SQLModel):
    id: uuid.UUID
    agreement_id: uuid.UUID
    provider: str
    status: str
    signer_name: str
    signer_email: str
    expires_at: datetime
    document_sha256: str
    signing_url: str | None = None
