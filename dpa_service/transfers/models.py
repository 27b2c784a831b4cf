"""International transfers of each tenant, the invalidations legal records, and Subscribers' prior notices."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints, ValidationInfo, field_validator
from sqlalchemy import JSON, Date, Index, Text
from sqlmodel import Field, SQLModel

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, CountryCode, PlainName, SafeText

Text300 = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Category = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Origin(StrEnum):
    """The regime the data comes from: a transfer is judged only by that regime's tools."""

    EEA = "eea"
    UK = "uk"
    CH = "ch"


class ImporterKind(StrEnum):
    PROCESSOR = "processor"
    SUBPROCESSOR = "subprocessor"
    OTHER = "other"


class Transfer(SQLModel, table=True):
    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_tenant_id_id", "tenant_id", "id"),
        Index("ix_transfers_mechanism_dates", "mechanism", "end_date", "tenant_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    importer: str = Field(max_length=300)
    importer_kind: str = Field(default=ImporterKind.OTHER.value, max_length=20)
    destination_country: str = Field(max_length=2)
    data_categories: list[str] = Field(default_factory=list, sa_type=JSON)
    mechanism: PlainName = Field(max_length=50)
    importer_certified: bool | None = None
    start_date: date = Field(sa_type=Date)
    end_date: date | None = Field(default=None, sa_type=Date)
    tia_reference: PlainName | None = Field(default=None, max_length=300)
    supplementary_measures: str | None = Field(default=None, sa_type=Text)
    origin: str = Field(default=Origin.EEA.value, max_length=3)
    instrument_date: date | None = Field(default=None, sa_type=Date)
    importer_certification: dict[str, str] | None = Field(default=None, sa_type=JSON)
    source: str = Field(default="manual", max_length=20)
    agreement_id: uuid.UUID | None = Field(default=None, foreign_key="agreements.id")
    created_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MechanismInvalidation(SQLModel, table=True):
    """Legal's record that a mechanism stops being valid from a date (processor-wide, append-only)."""

    __tablename__ = "mechanism_invalidations"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    code: str = Field(max_length=50, index=True)
    invalid_from: date = Field(sa_type=Date)
    reason: str = Field(sa_type=Text)
    legal_reference: str = Field(max_length=500)
    recorded_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    affected_tenants: int = 0
    affected_transfers: int = 0


class TransferNotice(SQLModel, table=True):
    """A Subscriber's prior written notice of a transfer outside the EU/EEA (its controller obligation)."""

    __tablename__ = "transfer_notices"
    __table_args__ = (Index("ix_transfer_notices_tenant_id_id", "tenant_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    destination_country: str = Field(max_length=2)
    recipient: str = Field(max_length=300)
    purpose: str = Field(sa_type=Text)
    mechanism: PlainName = Field(max_length=50)
    planned_date: date = Field(sa_type=Date)
    created_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CertificationRecord(SQLModel):
    """Who checked the importer's certification (e.g. the Data Privacy Framework List), when, and the list entry:
    a certification is recorded, never assumed."""

    model_config = STRICT_BODY

    checked_by: Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    checked_on: date
    entry: Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _known_mechanism(value: str) -> str:
    if value not in registry.mechanisms():
        raise ValueError(f"unknown mechanism; use one of: {', '.join(sorted(registry.mechanisms()))}")
    return value


class TransferCreate(SQLModel):
    model_config = STRICT_BODY

    importer: Text300
    importer_kind: ImporterKind = ImporterKind.OTHER
    destination_country: CountryCode
    data_categories: list[Category] = Field(min_length=1, max_length=50)
    mechanism: PlainName = Field(max_length=50)
    start_date: date
    end_date: date | None = None
    importer_certified: bool | None = None
    tia_reference: PlainName | None = Field(default=None, max_length=300)
    supplementary_measures: SafeText | None = Field(default=None, max_length=20_000)
    origin: Origin = Origin.EEA
    instrument_date: date | None = None
    importer_certification: CertificationRecord | None = None

    _mechanism = field_validator("mechanism")(classmethod(lambda cls, v: _known_mechanism(v)))

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before start_date")
        return value


class TransferUpdate(SQLModel):
    """Change or end a transfer (no deletes: set end_date). Absent fields are kept."""

    model_config = STRICT_BODY

    end_date: date | None = None
    mechanism: PlainName | None = Field(default=None, max_length=50)
    importer_certified: bool | None = None
    data_categories: list[Category] | None = Field(default=None, min_length=1, max_length=50)
    tia_reference: PlainName | None = Field(default=None, max_length=300)
    supplementary_measures: SafeText | None = Field(default=None, max_length=20_000)
    origin: Origin | None = None
    instrument_date: date | None = None
    importer_certification: CertificationRecord | None = None

    @field_validator("mechanism")
    @classmethod
    def _mechanism(cls, value: str | None) -> str | None:
        return _known_mechanism(value) if value is not None else None


class TransferPublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    importer: str
    importer_kind: str
    destination_country: str
    data_categories: list[str]
    mechanism: str
    importer_certified: bool | None
    start_date: date
    end_date: date | None
    tia_reference: str | None
    supplementary_measures: str | None
    origin: str
    instrument_date: date | None
    importer_certification: dict[str, str] | None
    source: str
    agreement_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class InvalidationCreate(SQLModel):
    model_config = STRICT_BODY

    invalid_from: date
    reason: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    legal_reference: Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class InvalidationPublic(SQLModel):
    id: uuid.UUID
    code: str
    invalid_from: date
    reason: str
    legal_reference: str
    created_at: datetime
    affected_tenants: int
    affected_transfers: int


class TransferNoticeCreate(SQLModel):
    model_config = STRICT_BODY

    destination_country: CountryCode
    recipient: Text300
    purpose: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    mechanism: PlainName = Field(max_length=50)
    planned_date: date

    _mechanism = field_validator("mechanism")(classmethod(lambda cls, v: _known_mechanism(v)))


class TransferNoticePublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    destination_country: str
    recipient: str
    purpose: str
    mechanism: str
    planned_date: date
    created_at: datetime


class MechanismPublic(SQLModel):
    code: str
    name: str
    jurisdiction: str
    kind: str
    valid_from: date
    valid_until: date | None
    legal_reference: str
    requires_certified_importer: bool
    destinations: list[str]
    successors: list[str]
    risk_note: str | None
    invalidated_from: date | None = None
    regimes: list[str] = []
    dpa_selectable: bool = True
    sources: dict[str, str] = {}


class AssessmentItem(SQLModel):
    transfer_id: uuid.UUID
    tenant_id: uuid.UUID
    importer: str
    destination_country: str
    mechanism: str
    origin: str = Origin.EEA.value
    valid: bool
    reason: str
    suggested_mechanisms: list[str]
    risks: list[str] = []


class AffectedTransfer(SQLModel):
    transfer_id: uuid.UUID
    importer: str
    destination_country: str
    end_date: date | None
    remediation: str


class AffectedTenant(SQLModel):
    tenant_id: uuid.UUID
    tenant_name: str
    notified_at: datetime | None
    remediation: str
    transfers: list[AffectedTransfer]


class AffectedReport(SQLModel):
    code: str
    invalid_from: date | None
    items: list[AffectedTenant]
    next_cursor: str | None
    tenants: int
    open: int
