"""API schemas of assistance requests: the Subscriber asks the processor for help (Art. 28(3)(e) and (f) GDPR)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import StringConstraints
from sqlmodel import SQLModel

from dpa_service.core.validation import STRICT_BODY, SafeText

Text = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=10000)]
Kind = Literal["data_subject_request", "dpia", "other"]
Status = Literal["open", "answered"]


class AssistanceRequestCreate(SQLModel):
    model_config = STRICT_BODY

    kind: Kind
    description: Text


class AssistanceResponseCreate(SQLModel):
    model_config = STRICT_BODY

    text: Text


class AssistanceResponsePublic(SQLModel):
    id: uuid.UUID
    request_id: uuid.UUID
    text: str
    answered_at: datetime
    answered_by: uuid.UUID


class AssistanceRequestPublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    description: str
    status: Status
    late: bool  # open past `due_at`, or answered after it
    requested_at: datetime
    requested_by: uuid.UUID
    due_at: datetime
    answered_at: datetime | None


class AssistanceRequestDetail(AssistanceRequestPublic):
    responses: list[AssistanceResponsePublic]
