"""The ledger's API schemas: an obligation as read (its status derived), and attestations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints
from sqlmodel import Field, SQLModel

from dpa_service.core.validation import STRICT_BODY, SafeText


def _blank_is_none(value: Any) -> Any:
    """An optional text sent empty (a form's blank field) is absent, not an empty statement of fact."""
    return None if isinstance(value, str) and not value.strip() else value


def _whole_number(value: object) -> object:
    """`true` or `"7"` is refused rather than read as a count. (A field-level `Strict()` would not hold: Litestar
    validates request bodies with `strict=False`, which overrides it.)"""
    if value is not None and type(value) is not int:
        raise ValueError("must be a whole number (an integer, not text or true/false)")
    return value


Statement = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Evidence = Annotated[
    Annotated[SafeText, StringConstraints(strip_whitespace=True, max_length=2000)] | None,
    BeforeValidator(_blank_is_none),
]
# "2026", "2026-H1", "FY 2026/27": a label of the period attested, not a date.
Period = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=20, pattern=r"^[0-9A-Za-z][0-9A-Za-z ./-]*$")]
    | None,
    BeforeValidator(_blank_is_none),
]


class ObligationPublic(SQLModel):
    """One ledger row with its status as of the read. `detail` says what the status rests on, `next_step` what to
    do now; rows of a superseded DPA (`ended_at` set) are history, `not_applicable`."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    agreement_id: uuid.UUID
    template_id: uuid.UUID
    code: str
    title: str
    clause: str
    summary: str
    rule: str
    deadline: dict[str, Any]
    status: str
    due_at: datetime | None = None
    detail: str
    next_step: str | None = None
    last_attested_at: datetime | None = None
    in_force_from: datetime
    ended_at: datetime | None = None
    superseded_by: uuid.UUID | None = None
    transfers_without_notice: list[uuid.UUID] = Field(default_factory=list)


class AttestationCreate(SQLModel):
    """An owner's or admin's statement that the tenant keeps an obligation. `personnel_count` (how many people were
    briefed) is required for `personnel_awareness` and refused for other codes; its `period` defaults to the year."""

    model_config = STRICT_BODY

    statement: Statement
    evidence: Evidence = None
    period: Period = None
    personnel_count: Annotated[int | None, BeforeValidator(_whole_number)] = Field(default=None, ge=1, le=10_000_000)


class AttestationPublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    obligation_id: uuid.UUID
    code: str
    statement: str
    evidence: str | None
    period: str | None
    personnel_count: int | None
    attested_at: datetime
    attested_by: uuid.UUID
