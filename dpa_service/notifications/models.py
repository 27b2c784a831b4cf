"""Notification tables and schemas: a tenant's webhook endpoints, and the webhook and e-mail deliveries the worker
sends with retries (pending -> delivered, or dead after the retry window; an admin may replay a dead webhook)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, StringConstraints
from sqlalchemy import JSON, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, PlainName
from dpa_service.notifications.ssrf import parse_url

EVENT_NAMES = frozenset(
    {
        "*",
        "agreement.execution_failed",
        "agreement.signature_request_failed",
        "agreement.status_changed",
        "assistance_request.answered",
        "assistance_request.created",
        "breach_notice.acknowledged",
        "breach_notice.reported",
        "breach_notice.updated",
        "contract.dpa_status_changed",
        "campaign.draft_created",
        "deletion_certificate.issued",
        "inquiry.asked",
        "inquiry.overdue",
        "inquiry.reminder",
        "subprocessor.change_published",
        "subprocessor.objection_resolved",
        "tenant.termination_recorded",
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


def _parsable_url(value: str) -> str:
    """The URL's form is checked here (a bad port or bracket is 422 naming `url`); where it leads, by the service."""
    parse_url(value)
    return value


Url = Annotated[
    PlainName, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000), AfterValidator(_parsable_url)
]


class WebhookEndpointCreate(SQLModel):
    model_config = STRICT_BODY

    url: Url
    events: list[Annotated[PlainName, StringConstraints(max_length=100)]] = Field(min_length=1, max_length=20)


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


class MailDelivery(SQLModel, table=True):
    """One notification e-mail to one address, sent by the worker (pending -> delivered, or dead after 3 days)."""

    __tablename__ = "mail_deliveries"
    __table_args__ = (
        Index("ix_mail_deliveries_tenant_id_id", "tenant_id", "id"),
        Index("ix_mail_deliveries_due", "status", "next_attempt_at"),
        Index("uq_mail_deliveries_message_recipient", "message_id", "recipient", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    message_id: uuid.UUID = Field(foreign_key="outbox.id")
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=500)
    body: str = Field(sa_type=Text)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    retry_until: datetime = Field(sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def wants(endpoint: WebhookEndpoint, event: str) -> bool:
    return "*" in endpoint.events or event in endpoint.events
