"""DPA template versions under legal's four-eyes control."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY


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


class TemplateCreate(SQLModel):
    model_config = STRICT_BODY

    key: Annotated[str, StringConstraints(pattern=KEY_PATTERN, max_length=100)]
    title: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=1_000_000)
    stylesheet: str | None = Field(default=None, max_length=500_000)
    variables_schema: dict[str, Any] | None = None
    sample_variables: dict[str, Any] | None = None


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
