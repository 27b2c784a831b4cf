"""A ledger for a tenant without executing a DPA (which renders and seals a PDF): a draft agreement of the tenant,
and the reaction that execution would run for it, at a chosen moment. The ledger test itself executes real DPAs;
the rule tests only need the rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.events import AgreementExecuted
from dpa_service.core.identity import Actor
from dpa_service.obligations import ledger
from tests.helpers.agreements import approve_standard_dpa, new_agreement
from tests.helpers.api import Api

CODES = [
    "breach_notice_72h",
    "answer_inquiries",
    "records_of_processing",
    "transfer_prior_notice",
    "personnel_awareness",
    "delete_end_user_data",
]


async def ledger_for(db: Database, owner: Api, *, executed_at: datetime | None = None) -> dict[str, Any]:
    """The standard DPA's ledger for `owner`'s tenant, in force from `executed_at` (default now); the draft
    agreement standing in for the executed one is returned."""
    await approve_standard_dpa(db)
    draft = await new_agreement(owner)
    moment = executed_at or utcnow()
    event = AgreementExecuted(
        actor=Actor.system("test"),
        tenant_id=uuid.UUID(owner.tenant_id or ""),
        agreement_id=uuid.UUID(draft["id"]),
        template_id=uuid.UUID(draft["template_id"]),
        executed_at=moment,
        effective_date=moment.date(),
        subprocessor_list_version=1,
        subprocessors=(),
        superseded=(),
        contact_email=None,
    )
    assert await ledger.instantiate(db, event) == len(CODES)
    return draft


def by_code(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["code"]: item for item in items}
