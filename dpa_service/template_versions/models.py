"""DPA template versions under legal's four-eyes control."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from pydantic import StringConstraints
from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, PlainName, SafeText


class TemplateStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RETIRED = "retired"


class TemplateVersion(SQLModel, table=True):
    """One immutable version of a template's content; only its status and approval stamps change."""

    __tablename__ = "template_versions"
    __table_args__ = (
        Index("uq_template_versions_key_version", "key", "version", unique=True),
        Index("ix_template_versions_key_sha256", "key", "sha256"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    key: str = Field(max_length=100)
    version: int
    title: str = Field(max_length=300)
    source: str = Field(sa_type=Text)
    stylesheet: str = Field(default="", sa_type=Text)
    entrypoint: str = Field(default="dpa.html.j2", max_length=200)
    variables_schema: dict[str, Any] = Field(sa_type=JSON)
    sample_variables: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    obligations: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    sha256: str = Field(max_length=64)
    status: str = Field(default=TemplateStatus.DRAFT.value, max_length=20)
    author_id: uuid.UUID | None = None
    submitted_by: uuid.UUID | None = None
    approver_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{1,98}[a-z0-9]$"
OBLIGATION_CODE_PATTERN = r"^[a-z][a-z0-9_]{1,98}[a-z0-9]$"
CLAUSE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.()-]{0,19}$"


class DeadlineRule(StrEnum):
    """How an obligation of `obligations.yaml` is kept; the obligations domain derives each status from it."""

    WITHIN_HOURS_OF_AWARENESS = "within_hours_of_awareness"
    BY_INQUIRY_DUE_DATE = "by_inquiry_due_date"
    CONTINUOUS = "continuous"
    BEFORE_TRANSFER = "before_transfer"
    WITHIN_DAYS_OF_TERMINATION = "within_days_of_termination"


# The figures each rule takes: (required, optional). A figure another rule takes is refused, so a typo in legal
# data (a `days` under the 72-hour rule) cannot pass silently.
RULE_FIGURES: dict[DeadlineRule, tuple[frozenset[str], frozenset[str]]] = {
    DeadlineRule.WITHIN_HOURS_OF_AWARENESS: (frozenset({"hours"}), frozenset()),
    DeadlineRule.BY_INQUIRY_DUE_DATE: (frozenset(), frozenset({"business_days"})),
    DeadlineRule.CONTINUOUS: (frozenset(), frozenset({"every_months"})),
    DeadlineRule.BEFORE_TRANSFER: (frozenset(), frozenset()),
    DeadlineRule.WITHIN_DAYS_OF_TERMINATION: (frozenset({"days"}), frozenset()),
}


class ObligationDeadline(SQLModel):
    model_config = STRICT_BODY

    rule: DeadlineRule
    hours: int | None = Field(default=None, ge=1, le=720)
    days: int | None = Field(default=None, ge=1, le=365)
    business_days: int | None = Field(default=None, ge=1, le=60)
    every_months: int | None = Field(default=None, ge=1, le=60)


class ObligationEntry(SQLModel):
    """One entry of a version's `obligations` list, as in `obligations.yaml`."""

    model_config = STRICT_BODY

    code: Annotated[str, StringConstraints(pattern=OBLIGATION_CODE_PATTERN, max_length=100)]
    title: PlainName = Field(min_length=1, max_length=300)
    clause: Annotated[str, StringConstraints(pattern=CLAUSE_PATTERN, max_length=20)]
    summary: SafeText = Field(min_length=1, max_length=5000)
    deadline: ObligationDeadline


class TemplateCreate(SQLModel):
    model_config = STRICT_BODY

    key: Annotated[str, StringConstraints(pattern=KEY_PATTERN, max_length=100)]
    title: PlainName = Field(min_length=1, max_length=300)
    source: SafeText = Field(min_length=1, max_length=1_000_000)
    stylesheet: SafeText | None = Field(default=None, max_length=500_000)
    variables_schema: dict[str, Any] | None = None
    sample_variables: dict[str, Any] | None = None
    obligations: list[ObligationEntry] | None = Field(default=None, max_length=50)


class TemplatePublic(SQLModel):
    id: uuid.UUID
    key: str
    version: int
    title: str
    status: str
    sha256: str
    author_id: uuid.UUID | None
    submitted_by: uuid.UUID | None = None
    approver_id: uuid.UUID | None
    current: bool = False
    created_at: datetime
    submitted_at: datetime | None
    approved_at: datetime | None
    retired_at: datetime | None


class TemplateDetail(TemplatePublic):
    source: str
    stylesheet: str
    variables_schema: dict[str, Any]
    sample_variables: dict[str, Any]
    obligations: list[dict[str, Any]]


class DiffChange(msgspec.Struct):
    """One changed line: `changed` (both sides differ), `removed` (old only) or `added` (new only), with its line
    number in each version's rendered text (null on the side that has no such line)."""

    kind: str
    old: str | None
    new: str | None
    old_line: int | None
    new_line: int | None


class TemplateDiff(msgspec.Struct):
    """Two versions' rendered DPA text compared: `from` is the older text (`?against=`), `to` the version asked
    for; `unified` is the same comparison as a unified diff (three lines of context)."""

    from_: TemplatePublic = msgspec.field(name="from")
    to: TemplatePublic
    changed: int
    changes: list[DiffChange]
    unified: str
