"""API schemas of the exit: the termination of the main agreement and the processor's deletion certificates."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from dpa_service.core.validation import STRICT_BODY, PlainName, SafeText

Reason = Annotated[SafeText, StringConstraints(strip_whitespace=True, max_length=5000)]
Statement = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
System = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TerminationCreate(SQLModel):
    """`tenant_id` is legal's (which tenant's main agreement ends); a Subscriber's owner records its own."""

    model_config = STRICT_BODY

    ends_on: date
    reason: Reason | None = None
    tenant_id: uuid.UUID | None = None


class TerminationPublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    ends_on: date
    reason: str | None
    deletion_days: int
    deletion_due_on: date  # when the Subscriber's `delete_end_user_data` obligation falls due
    recorded_at: datetime
    recorded_by: uuid.UUID
    recorded_by_role: str
    # The processor's own deletion (clause 10.2): after the Subscriber's 30 days to export, within a further 30.
    processor_deletion_due_on: date
    deletion_certificate_id: uuid.UUID | None = None  # the first one legal issued, once it has


class DeletionCertificateCreate(SQLModel):
    model_config = STRICT_BODY

    tenant_id: uuid.UUID
    deleted_on: date
    systems: list[System] = Field(min_length=1, max_length=50)
    statement: Statement


class DeletionCertificatePublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    deleted_on: date
    systems: list[str]
    statement: str
    document_sha256: str
    sealed_at: datetime
    issued_at: datetime
    issued_by: uuid.UUID
