"""API schemas of breach notices (obligation i): what a Subscriber reports, its updates, and what is answered.

The tables are `models.BreachNotice` and `models.BreachNoticeUpdate`; no table object leaks to JSON.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import pydantic
from pydantic import BeforeValidator, StringConstraints
from sqlmodel import Field, SQLModel

from dpa_service.core.validation import STRICT_BODY, Email, PlainName, SafeText
from dpa_service.obligations.timefields import UTCInstant

# What a person writes about a breach: stripped, never blank, bounded (a report, not a file upload).
Text = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Category = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _whole_number(value: object) -> object:
    """`true` or `"12"` is refused rather than read as a number. (A field-level `Strict()` would not hold: Litestar
    validates request bodies with `strict=False`, which overrides it.)"""
    if type(value) is not int:
        raise ValueError("must be a whole number (an integer, not text or true/false)")
    return value


# The column is a 32-bit integer.
Estimate = Annotated[int, BeforeValidator(_whole_number), pydantic.Field(ge=0, le=2_147_483_647)]


class BreachNoticeCreate(SQLModel):
    """The information Art. 33(3) GDPR asks for, as far as it is known when the notice is given."""

    model_config = STRICT_BODY

    became_aware_at: UTCInstant  # with a timezone: the 72 hours run from an instant, not a wall-clock reading
    description: Text
    data_categories: list[Category] = Field(min_length=1, max_length=50)
    subjects_estimate: Estimate
    records_estimate: Estimate | None = None
    consequences: Text | None = None
    measures: Text
    contact_email: Email | None = None


class BreachNoticeUpdateCreate(SQLModel):
    model_config = STRICT_BODY

    text: Text


class BreachNoticeUpdatePublic(SQLModel):
    id: uuid.UUID
    breach_notice_id: uuid.UUID
    tenant_id: uuid.UUID
    text: str
    created_by: uuid.UUID
    created_at: datetime


class BreachNoticePublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    became_aware_at: datetime
    reported_at: datetime
    deadline_at: datetime
    late: bool
    status: str
    description: str
    data_categories: list[str]
    subjects_estimate: int
    records_estimate: int | None
    consequences: str | None
    measures: str
    contact_email: str | None
    reported_by: uuid.UUID
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None


class BreachNoticeDetail(BreachNoticePublic):
    """One notice with the information given since, in the order it was given (Art. 33(4) GDPR)."""

    updates: list[BreachNoticeUpdatePublic]
