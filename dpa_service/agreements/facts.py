"""What other domains need to know of a set of agreements (contracts derive their DPA status from it), read in one
query per few thousand ids: never one per agreement."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements.lifecycle import BEFORE_EXECUTION
from dpa_service.agreements.models import Agreement, AgreementStatus
from dpa_service.core.db import Database, Scope

# Ids per query: well under SQLite's and asyncpg's bound-parameter limits (32766 / 32767).
_CHUNK = 5000
# On its way to execution: from the first draft to the Subscriber's signature.
IN_PROGRESS = frozenset({*(s.value for s in BEFORE_EXECUTION), AgreementStatus.SIGNED.value})


@dataclass(frozen=True)
class AgreementFacts:
    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    template_id: uuid.UUID
    template_key: str
    template_version: int
    mechanisms: tuple[str, ...]
    """`variables.transfers.mechanisms`: the transfer mechanisms the DPA relies on."""
    controller_country: str | None
    """`variables.controller.country`: where the Subscriber exports from (its transfers' origin regime)."""
    superseded_by: uuid.UUID | None
    executed_at: datetime | None
    effective_date: date | None
    document_sha256: str | None

    @property
    def in_progress(self) -> bool:
        return self.status in IN_PROGRESS


def _controller_country(variables: object) -> str | None:
    controller = variables.get("controller") if isinstance(variables, dict) else None
    country = controller.get("country") if isinstance(controller, dict) else None
    return country if isinstance(country, str) else None


def _mechanisms(variables: object) -> tuple[str, ...]:
    transfers = variables.get("transfers") if isinstance(variables, dict) else None
    codes = transfers.get("mechanisms") if isinstance(transfers, dict) else None
    return tuple(code for code in codes if isinstance(code, str)) if isinstance(codes, list) else ()


async def agreement_facts(
    db: Database, scope: Scope, agreement_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, AgreementFacts]:
    """Status, template and mechanisms of each of `agreement_ids` the scope can see (others are simply absent)."""
    ids = list(dict.fromkeys(agreement_ids))
    found: dict[uuid.UUID, AgreementFacts] = {}
    if not ids:
        return found
    a = Agreement
    columns = (col(a.id), col(a.tenant_id), col(a.status), col(a.template_id), col(a.template_key),
               col(a.template_version), col(a.variables), col(a.superseded_by), col(a.executed_at),
               col(a.effective_date), col(a.document_sha256))  # fmt: skip
    async with db.transaction(scope, write=False) as session:
        for start in range(0, len(ids), _CHUNK):
            rows = await session.execute(select(*columns).where(col(a.id).in_(ids[start : start + _CHUNK])))
            for row in rows.all():
                found[row.id] = AgreementFacts(
                    row.id, row.tenant_id, row.status, row.template_id, row.template_key, row.template_version,
                    _mechanisms(row.variables), _controller_country(row.variables), row.superseded_by,
                    row.executed_at, row.effective_date, row.document_sha256,
                )  # fmt: skip
    return found
