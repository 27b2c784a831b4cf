"""Webhook endpoints of a tenant, their deliveries, signatures and the SSRF guard.

Deliveries carry `DPA-Signature: t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>` and `DPA-Event-Id`
(receivers de-duplicate on it). Endpoint secrets are shown once and stored encrypted with a key derived from
the service secret, since the service must sign with them. URLs must be http(s) and resolve only to public
addresses unless DPA_WEBHOOK_ALLOW_PRIVATE is set (development only).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import uuid
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

import anyio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import StringConstraints
from sqlalchemy import JSON, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from dpa_service.clock import utcnow
from dpa_service.db import UTCDateTime
from dpa_service.ids import new_id
from dpa_service.validation import STRICT_BODY

EVENT_NAMES = frozenset(
    {
        "*",
        "agreement.status_changed",
        "subprocessor.change_published",
        "subprocessor.objection_resolved",
        "transfer.mechanism_invalidated",
    }
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_id_id", "tenant_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_type=JSON)
    secret_sealed: bytes = Field(sa_type=LargeBinary)
    created_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_tenant_endpoint", "tenant_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("uq_webhook_deliveries_endpoint_message", "endpoint_id", "message_id", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoints.id")
    message_id: uuid.UUID = Field(foreign_key="outbox.id")
    event: str = Field(max_length=100)
    body: str = Field(sa_type=Text)
    status: str = Field(default=DeliveryStatus.PENDING.value, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retry_until: datetime = Field(sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000)]


class WebhookEndpointCreate(SQLModel):
    model_config = STRICT_BODY

    url: Url
    events: list[str] = Field(min_length=1, max_length=20)


class WebhookEndpointPublic(SQLModel):
    id: uuid.UUID
    url: str
    events: list[str]
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointPublic):
    secret: str


class WebhookDeliveryPublic(SQLModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@lru_cache(maxsize=4)
def _cipher(app_secret: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"dpa webhook endpoint secret").derive(app_secret)
    return AESGCM(key)


def new_secret(app_secret: bytes) -> tuple[str, bytes]:
    """A new endpoint secret (shown once) and its sealed form for storage."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    nonce = os.urandom(12)
    return secret, nonce + _cipher(app_secret).encrypt(nonce, secret.encode(), None)


def open_secret(app_secret: bytes, sealed: bytes) -> str:
    return _cipher(app_secret).decrypt(sealed[:12], sealed[12:], None).decode()


def signature_header(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


SIGNATURE_TOLERANCE_SECONDS = 300


def verify_signature(
    secret: str, header: str, body: bytes, *, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver checks (README, "Receiving webhooks"): the HMAC of `<t>.<body>` matches, compared in
    constant time, and `t` is within `tolerance` seconds of the receiver's clock, so a captured delivery cannot be
    replayed later. De-duplicate on `DPA-Event-Id` as well: a retry re-sends the same event."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class UnsafeUrl(ValueError):
    """A webhook URL that is not http(s) or reaches a loopback, private or otherwise internal address."""


async def check_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeUrl("must be an http(s) URL with a host name")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry credentials")
    if allow_private:
        return
    try:
        infos = await anyio.getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise UnsafeUrl(f"host does not resolve ({exc.strerror or exc})") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise UnsafeUrl(f"resolves to a non-public address ({address}): refused")


def wants(endpoint: WebhookEndpoint, event: str) -> bool:
    return "*" in endpoint.events or event in endpoint.events
