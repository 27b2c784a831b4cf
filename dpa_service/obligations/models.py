"""The Subscriber's obligations as controller (clause 9 of the standard DPA) and the records that show them kept.

Every table is tenant-owned (row-level security forced on PostgreSQL). What a tenant states or reports is never
rewritten: attestations, breach-notice updates, inquiry responses and assistance responses are append-only; a
breach notice, an inquiry and an assistance request change only their status stamps; a deletion certificate's
PDF is written once. API schemas live beside the service that uses them, not here.

    obligations                one row per (executed agreement, code): the ledger; ended when superseded
    obligation_attestations    an owner's or admin's statement that an obligation is met (append-only)
    breach_notices             obligation (i): a personal data breach reported to the processor
    breach_notice_updates      information given in phases, Art. 33(4) GDPR (append-only)
    inquiries                  obligation (ii): the processor's question to one tenant (one row per tenant asked)
    inquiry_responses          the tenant's answers (append-only)
    terminations               the main agreement ends on a date: the exit, and the deletion obligation's clock
    deletion_certificates      the processor's own deletion, Art. 28(3)(g) GDPR, as a sealed PDF (write-once)
    assistance_requests        the Subscriber asks for help with a data subject request or a DPIA, Art. 28(3)(e)(f)
    assistance_responses       the processor's answers (append-only)
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id


class ObligationStatus(StrEnum):
    OPEN = "open"
    MET = "met"
    OVERDUE = "overdue"
    NOT_APPLICABLE = "not_applicable"


class Obligation(SQLModel, table=True):
    """One obligation an executed DPA imposes, copied from its template version's `obligations.yaml` entry.

    The status is not stored: it is derived from the rule and the tenant's events each time it is read.
    """

    __tablename__ = "obligations"
    __table_args__ = (
        Index("ix_obligations_tenant_ended_code", "tenant_id", "ended_at", "code"),
        Index("uq_obligations_agreement_code", "agreement_id", "code", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    template_id: uuid.UUID = Field(foreign_key="template_versions.id")
    code: str = Field(max_length=100)
    title: str = Field(max_length=300)
    clause: str = Field(max_length=20)
    summary: str = Field(default="", sa_type=Text)
    deadline: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the yaml's `deadline`: rule and figures
    in_force_from: datetime = Field(sa_type=UTCDateTime)  # the agreement's execution
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # superseded by a newer DPA's ledger
    superseded_by: uuid.UUID | None = None  # the agreement whose ledger replaced this row


class ObligationAttestation(SQLModel, table=True):
    """An owner's or admin's statement that the tenant keeps an obligation (append-only, audited).

    Keyed by tenant and code, so a statement still counts after a new DPA with the same obligation supersedes the
    old one; `obligation_id` names the ledger row it was made against.
    """

    __tablename__ = "obligation_attestations"
    __table_args__ = (Index("ix_obligation_attestations_tenant_code_at", "tenant_id", "code", "attested_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    obligation_id: uuid.UUID = Field(foreign_key="obligations.id")
    code: str = Field(max_length=100)
    statement: str = Field(sa_type=Text)
    evidence: str | None = Field(default=None, max_length=2000)
    period: str | None = Field(default=None, max_length=20)  # e.g. "2026" for an annual attestation
    personnel_count: int | None = None  # personnel_awareness: how many people were briefed
    attested_by: uuid.UUID
    attested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BreachNoticeStatus(StrEnum):
    REPORTED = "reported"
    ACKNOWLEDGED = "acknowledged"


class BreachNotice(SQLModel, table=True):
    """A personal data breach the Subscriber reports to the processor (obligation i, 72 hours)."""

    __tablename__ = "breach_notices"
    __table_args__ = (Index("ix_breach_notices_tenant_id_id", "tenant_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    became_aware_at: datetime = Field(sa_type=UTCDateTime)
    reported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    late: bool
    description: str = Field(sa_type=Text)
    data_categories: list[str] = Field(default_factory=list, sa_type=JSON)
    subjects_estimate: int
    records_estimate: int | None = None
    consequences: str | None = Field(default=None, sa_type=Text)
    measures: str = Field(sa_type=Text)
    contact_email: str | None = Field(default=None, max_length=320)
    reported_by: uuid.UUID
    status: str = Field(default=BreachNoticeStatus.REPORTED.value, max_length=20)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: uuid.UUID | None = None


class BreachNoticeUpdate(SQLModel, table=True):
    __tablename__ = "breach_notice_updates"
    __table_args__ = (Index("ix_breach_notice_updates_tenant_notice", "tenant_id", "breach_notice_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    breach_notice_id: uuid.UUID = Field(foreign_key="breach_notices.id")
    text: str = Field(sa_type=Text)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InquiryStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    OVERDUE = "overdue"


class Inquiry(SQLModel, table=True):
    """The processor's written inquiry to one tenant (obligation ii). A fan-out to many shares `batch_id`.

    `status` is derived (answered once a response exists, overdue after `due_at`); the stamps below make the
    reminder and the overdue notice go out once each.
    """

    __tablename__ = "inquiries"
    __table_args__ = (
        Index("ix_inquiries_tenant_id_id", "tenant_id", "id"),
        Index("ix_inquiries_batch", "batch_id"),
        Index("ix_inquiries_open_due", "answered_at", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    batch_id: uuid.UUID
    question: str = Field(sa_type=Text)
    asked_by: uuid.UUID
    asked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    overdue_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InquiryResponse(SQLModel, table=True):
    __tablename__ = "inquiry_responses"
    __table_args__ = (Index("ix_inquiry_responses_tenant_inquiry", "tenant_id", "inquiry_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    inquiry_id: uuid.UUID = Field(foreign_key="inquiries.id")
    answer: str = Field(sa_type=Text)
    answered_by: uuid.UUID
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Termination(SQLModel, table=True):
    """The main agreement ends on `ends_on`: the tenant is in exit from then on (one per tenant)."""

    __tablename__ = "terminations"
    __table_args__ = (Index("uq_terminations_tenant", "tenant_id", unique=True),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    ends_on: date = Field(sa_type=Date)
    reason: str | None = Field(default=None, sa_type=Text)
    deletion_days: int  # the template's `within_days_of_termination` figure at the time of recording
    deletion_due_on: date = Field(sa_type=Date)
    recorded_by: uuid.UUID
    recorded_by_role: str = Field(max_length=20)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeletionCertificate(SQLModel, table=True):
    """The processor's certificate that it deleted the tenant's data: a sealed PDF, written once."""

    __tablename__ = "deletion_certificates"
    __table_args__ = (Index("ix_deletion_certificates_tenant", "tenant_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    deleted_on: date = Field(sa_type=Date)
    systems: list[str] = Field(default_factory=list, sa_type=JSON)
    statement: str = Field(sa_type=Text)
    document_sha256: str = Field(max_length=64, unique=True)
    content: bytes = Field(sa_type=LargeBinary)
    sealed_at: datetime = Field(sa_type=UTCDateTime)
    issued_by: uuid.UUID
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AssistanceKind(StrEnum):
    DATA_SUBJECT_REQUEST = "data_subject_request"
    DPIA = "dpia"
    OTHER = "other"


class AssistanceStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class AssistanceRequest(SQLModel, table=True):
    """The Subscriber asks the processor for help (Art. 28(3)(e) and (f)); due 30 days after it is made."""

    __tablename__ = "assistance_requests"
    __table_args__ = (
        Index("ix_assistance_requests_tenant_id_id", "tenant_id", "id"),
        Index("ix_assistance_requests_open_due", "answered_at", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    kind: str = Field(max_length=30)
    description: str = Field(sa_type=Text)
    requested_by: uuid.UUID
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AssistanceResponse(SQLModel, table=True):
    __tablename__ = "assistance_responses"
    __table_args__ = (Index("ix_assistance_responses_tenant_request", "tenant_id", "request_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    request_id: uuid.UUID = Field(foreign_key="assistance_requests.id")
    text: str = Field(sa_type=Text)
    answered_by: uuid.UUID
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
