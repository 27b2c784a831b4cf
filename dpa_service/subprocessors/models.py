"""The processor's sub-processor list: immutable versions, the changes that publish them, and each tenant's answer.

SubprocessorVersion   one whole published list (append-only): number, items, effective_at
SubprocessorChange    how a version came to be: added/removed, notice, reason; or a proposal from the
                      registry file that legal has not published yet
Objection             a tenant's objection to a change (tenant-owned); legal resolves it
Acceptance            a tenant's acceptance of a change: express, deemed at the deadline, or after its
                      objection was withdrawn (tenant-owned, append-only)
Authorization         what one tenant's executed DPA authorized: the list version it pinned and the DPA's
                      contact address (tenant-owned), written when the DPA is executed, ended when superseded
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationInfo, field_validator
from pydantic import Field as SchemaField
from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, PlainName, SafeText

Line = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Category = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=3, max_length=5000)]

# Clause 6.2 of the standard DPA promises at least 30 days' notice; clause 6.6 allows less for an urgent
# replacement, which must then say so.
STANDARD_NOTICE_DAYS = 30
MAX_NOTICE_DAYS = 365


class ChangeState(StrEnum):
    PROPOSED = "proposed"  # from the registry file, not yet published: staff only
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"  # a proposal replaced by a newer file before it was published


class AcceptanceKind(StrEnum):
    EXPRESS = "express"
    DEEMED = "deemed"
    OBJECTION_WITHDRAWN = "objection_withdrawn"


class ObjectionOutcome(StrEnum):
    UPHELD = "upheld"  # the objection stands: the tenant does not authorize the change
    WITHDRAWN = "withdrawn"  # the tenant withdrew it (after discussion): recorded as its acceptance


class SubprocessorVersion(SQLModel, table=True):
    __tablename__ = "subprocessor_versions"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    number: int = Field(unique=True)
    items: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    sha256: str = Field(max_length=64)
    reason: str = Field(sa_type=Text)
    change_id: uuid.UUID | None = None
    published_by: uuid.UUID | None = None
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    effective_at: datetime = Field(sa_type=UTCDateTime)


class SubprocessorChange(SQLModel, table=True):
    __tablename__ = "subprocessor_changes"
    __table_args__ = (Index("ix_subprocessor_changes_state_effective", "state", "effective_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    state: str = Field(default=ChangeState.PUBLISHED.value, max_length=20)
    version: int | None = Field(default=None, unique=True)
    base_version: int | None = None
    added: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    removed: list[str] = Field(default_factory=list, sa_type=JSON)
    proposed_items: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    source_sha256: str | None = Field(default=None, max_length=64)
    notice_days: int | None = None
    urgent: bool = False
    reason: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_by: uuid.UUID | None = None
    effective_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    notified_tenants: int = 0
    # Set by the scheduled job once deemed acceptances are written; reads never depend on it.
    effective_recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Objection(SQLModel, table=True):
    __tablename__ = "subprocessor_objections"
    __table_args__ = (
        Index("ix_subprocessor_objections_tenant_id_id", "tenant_id", "id"),
        Index("uq_subprocessor_objections_tenant_change", "tenant_id", "change_id", unique=True),
        Index("ix_subprocessor_objections_change", "change_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    change_id: uuid.UUID = Field(foreign_key="subprocessor_changes.id")
    version: int
    reason: str = Field(sa_type=Text)
    raised_by: uuid.UUID | None = None
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, sa_type=Text)
    outcome: str | None = Field(default=None, max_length=20)
    resolved_by: uuid.UUID | None = None
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Acceptance(SQLModel, table=True):
    __tablename__ = "subprocessor_acceptances"
    __table_args__ = (
        Index("uq_subprocessor_acceptances_tenant_change", "tenant_id", "change_id", unique=True),
        Index("ix_subprocessor_acceptances_change", "change_id"),  # the deemed-acceptance job asks by change
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    change_id: uuid.UUID = Field(foreign_key="subprocessor_changes.id")
    version: int
    kind: str = Field(max_length=30)
    accepted_at: datetime = Field(sa_type=UTCDateTime)
    accepted_by: uuid.UUID | None = None
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Authorization(SQLModel, table=True):
    """The list version an executed DPA pinned, and where its notices go (Annex I.A contact, clause 6.2).

    This domain's own record, written by its reaction to the DPA's execution: the agreements' variables stay theirs.
    At most one per tenant is current (`ended_at` null): executing a newer DPA ends the previous one.
    """

    __tablename__ = "subprocessor_authorizations"
    __table_args__ = (Index("ix_subprocessor_authorizations_tenant_ended", "tenant_id", "ended_at"),)

    agreement_id: uuid.UUID = Field(primary_key=True, foreign_key="agreements.id")
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    list_version: int
    contact_email: str | None = Field(default=None, max_length=320)
    authorized_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- API schemas ----------------------------------------------------------------------------------------------


def _location(code: str) -> str:
    if code.strip().casefold() == registry.WORLDWIDE:
        return registry.WORLDWIDE
    code = code.upper()
    if registry.country(code) is None:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code in upper case, e.g. US, or 'worldwide'")
    return code


# An ISO country code, or `worldwide` for a network that processes data wherever its users are (registry.WORLDWIDE).
Location = Annotated[str, StringConstraints(min_length=2, max_length=9), AfterValidator(_location)]


class SubprocessorItem(BaseModel):
    """One sub-processor as legal writes it (request) and as the list shows it (response)."""

    model_config = STRICT_BODY

    name: Line
    entity: Line
    purpose: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    locations: list[Location] = SchemaField(min_length=1, max_length=50)
    data_categories: list[Category] = SchemaField(min_length=1, max_length=50)
    # None (or omitted) only for an entry located in the EU/EEA alone: there is no transfer to cover.
    transfer_mechanism: (
        Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)] | None
    ) = SchemaField(default=None, validate_default=True)
    website: Annotated[PlainName, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    # Annex III of the DPA: the entity's address and the nature and duration of what it does (subject matter: purpose).
    address: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None = None
    nature: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] | None = None
    duration: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None = None

    @field_validator("transfer_mechanism")
    @classmethod
    def _known_mechanism(cls, code: str | None, info: ValidationInfo) -> str | None:
        if code is not None and code not in registry.mechanisms():
            raise ValueError("must be a code from GET /api/v1/transfer-mechanisms, e.g. scc-2021")
        locations = info.data.get("locations")
        if locations is None:  # the locations failed on their own: nothing to compare with
            return code
        if code is None and registry.needs_mechanism(list(locations)):
            raise ValueError("is required for a location outside the EU/EEA (omit it only when all are inside)")
        if code is not None and not registry.needs_mechanism(list(locations)):
            raise ValueError("must be omitted: every location is in the EU/EEA, so no transfer mechanism is required")
        return code


class SubprocessorPublic(BaseModel):
    id: str
    name: str
    entity: str
    purpose: str
    locations: list[str]
    data_categories: list[str]
    transfer_mechanism: str | None = None  # None: located in the EU/EEA only, no mechanism required
    website: str | None = None
    address: str | None = None
    nature: str | None = None
    duration: str | None = None


class VersionPublic(BaseModel):
    version: int
    published_at: datetime
    effective_at: datetime
    status: str
    reason: str
    sha256: str
    change_id: uuid.UUID | None
    items: list[SubprocessorPublic]


class ChangeCreate(BaseModel):
    model_config = STRICT_BODY

    add: list[SubprocessorItem] = SchemaField(default_factory=list, max_length=100)
    remove: list[Line] = SchemaField(default_factory=list, max_length=100)
    notice_days: int = SchemaField(default=STANDARD_NOTICE_DAYS, ge=1, le=MAX_NOTICE_DAYS)
    urgent: bool = SchemaField(default=False, description="Clause 6.6: an urgent replacement may have shorter notice")
    reason: Reason


class ProposalPublish(BaseModel):
    model_config = STRICT_BODY

    notice_days: int = SchemaField(default=STANDARD_NOTICE_DAYS, ge=1, le=MAX_NOTICE_DAYS)
    urgent: bool = False
    reason: Reason


class ChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    version: int | None
    base_version: int | None
    added: list[dict[str, Any]]
    removed: list[str]
    notice_days: int | None
    urgent: bool
    reason: str
    published_at: datetime | None
    effective_at: datetime | None
    objection_deadline: datetime | None
    notified_tenants: int | None = SchemaField(description="staff only")
    proposed_items: list[dict[str, Any]] | None = None


class ObjectionCreate(BaseModel):
    model_config = STRICT_BODY

    reason: Reason


class ObjectionResolve(BaseModel):
    model_config = STRICT_BODY

    resolution: Reason
    outcome: ObjectionOutcome = ObjectionOutcome.UPHELD


class ObjectionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    change_id: uuid.UUID
    version: int
    reason: str
    status: str
    raised_by: uuid.UUID | None
    raised_at: datetime
    resolution: str | None
    outcome: str | None
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, objection: Objection) -> ObjectionPublic:
        return cls.model_validate({**objection.model_dump(), "status": "resolved" if objection.resolved_at else "open"})


class AcceptancePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID | None = SchemaField(description="null for a deemed acceptance the scheduled job has not written yet")
    tenant_id: uuid.UUID
    change_id: uuid.UUID
    version: int
    kind: str
    accepted_at: datetime
    accepted_by: uuid.UUID | None


class PendingChange(BaseModel):
    id: uuid.UUID
    version: int
    effective_at: datetime
    added: list[dict[str, Any]]
    removed: list[str]
    reason: str
    objection: ObjectionPublic | None
    accepted: AcceptancePublic | None


class TenantAuthorization(BaseModel):
    """What one tenant has authorized: its DPA's list plus the changes it accepted since, and what is pending."""

    authorized_version: int | None
    agreement_id: uuid.UUID | None
    effective_at: datetime | None
    items: list[SubprocessorPublic]
    accepted_changes: list[AcceptancePublic]
    pending_changes: list[PendingChange]
    objected_changes: list[PendingChange]
