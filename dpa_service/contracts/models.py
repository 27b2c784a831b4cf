"""Contracts of a tenant, the DPAs attached to them, and the API schemas (no table object leaks to JSON)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, StringConstraints
from sqlalchemy import Date, Index
from sqlmodel import Field, SQLModel

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, PlainName


class ContractStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class DpaStatus(StrEnum):
    """What the attached DPAs amount to (derived: `contracts.standing`)."""

    MISSING = "missing"
    IN_PROGRESS = "in_progress"
    EXECUTED = "executed"
    OUTDATED = "outdated"


class Contract(SQLModel, table=True):
    __tablename__ = "contracts"
    __table_args__ = (
        Index("ix_contracts_tenant_id_id", "tenant_id", "id"),
        Index("uq_contracts_tenant_reference", "tenant_id", "reference", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    reference: str = Field(max_length=100)
    title: str = Field(max_length=300)
    # The exact decimal text ("12500.00"): SQLite has no exact decimal type, and a float would round.
    value: str | None = Field(default=None, max_length=40)
    currency: str | None = Field(default=None, max_length=3)
    close_date: date | None = Field(default=None, sa_type=Date)
    owner_id: uuid.UUID  # the member of staff (sales or legal) who owns the deal: its creator
    status: str = Field(default=ContractStatus.OPEN.value, max_length=10)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: uuid.UUID | None = None
    # The DPA status last derived and announced (`contract.dpa_status_changed` fires when it moves).
    dpa_status: str = Field(default=DpaStatus.MISSING.value, max_length=20)
    dpa_status_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ContractAgreement(SQLModel, table=True):
    """An agreement attached to a contract: by sales (`manual`) or when it superseded an attached one."""

    __tablename__ = "contract_agreements"
    __table_args__ = (
        Index("uq_contract_agreements_contract_agreement", "contract_id", "agreement_id", unique=True),
        Index("ix_contract_agreements_tenant_agreement", "tenant_id", "agreement_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    contract_id: uuid.UUID = Field(foreign_key="contracts.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    via: str = Field(default="manual", max_length=20)  # manual | supersession
    attached_by: uuid.UUID | None = None
    attached_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


_DECIMAL = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,4})?$")  # ASCII digits only: \d admits other scripts' digits
VALUE_DESCRIPTION = (
    'The contract value as a decimal string, e.g. "12500.00": at least 0, up to 15 digits before the point and 4 '
    "after. A JSON number is refused (422): binary floating point cannot hold every amount exactly."
)


def _decimal_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12500.00" (a JSON number is not accepted)')
    text = value.strip()
    if text.startswith("-"):
        raise ValueError("must not be negative")
    if not _DECIMAL.match(text):
        raise ValueError('must be a decimal such as "12500.00" (digits, at most 4 after the point)')
    return text


def _currency(value: str) -> str:
    code = value.strip().upper()
    if code not in registry.currencies():
        raise ValueError("must be an ISO 4217 currency code such as EUR, USD or GBP")
    return code


Reference = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Title = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Value = Annotated[str, BeforeValidator(_decimal_text), Field(description=VALUE_DESCRIPTION, max_length=40)]
Currency = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$"),
    AfterValidator(_currency),
    Field(description="ISO 4217 alphabetic code (EUR, USD, GBP...); required with a value."),
]


class ContractCreate(SQLModel):
    model_config = STRICT_BODY

    tenant_id: uuid.UUID
    reference: Reference
    title: Title
    value: Value | None = None
    currency: Currency | None = None
    close_date: date | None = None


class AttachCreate(SQLModel):
    model_config = STRICT_BODY

    agreement_id: uuid.UUID


class CloseCreate(SQLModel):
    model_config = STRICT_BODY

    outcome: Literal["won", "lost"]


class ContractPublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    reference: str
    title: str
    value: str | None
    currency: str | None
    close_date: date | None
    owner_id: uuid.UUID
    status: str
    closed_at: datetime | None
    dpa_status: DpaStatus
    dpa_detail: str = Field(description="Why the DPA status is what it is (the gate's reason when not executed).")
    agreements: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime
