"""API schemas for the processor's inquiries (obligation ii, clause 9.3 of the standard DPA).

`tenant_ids` is taken as sent and checked by the service, so that each bad entry is named by its own path
(`tenant_ids.3`) rather than by pydantic's union branches, and so the page and the API share one check.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import StringConstraints, WithJsonSchema
from sqlmodel import Field, SQLModel

from dpa_service.core.validation import STRICT_BODY, SafeText
from dpa_service.obligations.timefields import UTCInstant

MAX_RECIPIENTS = 10_000  # one fan-out; "all" is not capped (it is one query, and written in batches)
MAX_QUESTION = 20_000
MAX_ANSWER = 50_000

Question = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION)]
Answer = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ANSWER)]
Recipients = Annotated[
    Any,
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "array", "items": {"type": "string", "format": "uuid"}, "minItems": 1,
                 "maxItems": MAX_RECIPIENTS},
                {"type": "string", "enum": ["all"]},
            ],
            "description": 'Tenant ids, or "all": every tenant with an executed DPA.',
        }
    ),
]  # fmt: skip


class InquiryCreate(SQLModel):
    model_config = STRICT_BODY

    tenant_ids: Recipients
    question: Question
    due_at: UTCInstant | None = Field(
        default=None,
        description="Default and minimum: 10 Business Days after today (clause 9.3), end of day UTC; at most the end "
        "of the same day a year after asking (clause 9.3: the date 'shall be reasonable').",
    )


class InquiryBatchCreated(SQLModel):
    ids: list[uuid.UUID]
    count: int
    batch_id: uuid.UUID
    due_at: datetime


class InquiryAnswerCreate(SQLModel):
    model_config = STRICT_BODY

    answer: Answer


class InquiryAnswerPublic(SQLModel):
    id: uuid.UUID
    answer: str
    answered_by: uuid.UUID
    answered_at: datetime
    late: bool  # given after the inquiry's due date


class InquiryPublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    question: str
    asked_at: datetime
    due_at: datetime
    status: str  # open | answered | overdue
    answered_at: datetime | None  # the first answer: lateness is answered_at against due_at
    late: bool
    reminded_at: datetime | None
    overdue_notified_at: datetime | None
    answers: list[InquiryAnswerPublic]
