"""Thousands of tenants with an executed DPA, fast: clones of ONE DPA executed through the real flow.

Executing a DPA renders and seals its PDF (about half a second of CPU each), so a test over 2,000 tenants cannot
execute 2,000. Instead a test executes one through the API (request, submit, sign, countersign) and `clone_executed`
copies that agreement's row for every other tenant, with new ids, in bulk INSERTs.

What a clone has is the minimum rows a real executed DPA has for what reads it here: the tenant row (name, legal
name, country; with `new_tenants`) and the `agreements` row (template version and key, variables, custom clauses,
status `executed`, executed/effective/sealed dates and the document hash). It has NO sealed PDF
(`agreement_documents`), signatures, users, obligations ledger, transfers or sub-processor authorization: fine for
what a re-papering campaign's selection, drafts, notices and progress read, wrong for a test that downloads the
executed PDF of a clone, verifies it, or reads the obligations of a cloned tenant. A tenant that must act (sign
the campaign's draft) is made through the API (`Api.new_tenant`) and its executed DPA may still be a clone:
superseding it touches only its agreement row.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select

from dpa_service.agreements.models import Agreement
from dpa_service.core.db import Database, Scope
from dpa_service.core.ids import new_id
from dpa_service.tenants.models import Tenant

BATCH = 1000


async def new_tenants(db: Database, count: int, *, prefix: str = "Clone") -> list[uuid.UUID]:
    """`count` bare tenant rows (no users), in bulk."""
    rows = [Tenant(name=f"{prefix} {i:05d}", legal_name=f"{prefix} {i:05d} GmbH", country="DE").model_dump()
            for i in range(count)]  # fmt: skip
    async with db.transaction(Scope.system()) as session:
        for start in range(0, len(rows), BATCH):
            await session.execute(insert(Tenant), rows[start : start + BATCH])
    return [row["id"] for row in rows]


async def clone_executed(
    db: Database, agreement_id: str | uuid.UUID, tenant_ids: Sequence[uuid.UUID], **changes: Any
) -> list[uuid.UUID]:
    """A copy of executed agreement `agreement_id` as the executed DPA of each of `tenant_ids` (see the module
    docstring for what a clone lacks); `changes` overrides columns (e.g. `variables=`). Returns the new ids."""
    async with db.transaction(Scope.system()) as session:
        original = (
            await session.execute(select(Agreement).where(Agreement.id == uuid.UUID(str(agreement_id))))
        ).scalar_one()
        assert original.status == "executed", original.status
        template = original.model_dump()
    ids = [new_id() for _ in tenant_ids]
    rows = []
    for tenant_id, clone_id in zip(tenant_ids, ids, strict=True):
        row = {**copy.deepcopy(template), "id": clone_id, "tenant_id": tenant_id, "created_by": None, **changes}
        rows.append(row)
    async with db.transaction(Scope.system()) as session:
        for start in range(0, len(rows), BATCH):
            await session.execute(insert(Agreement), rows[start : start + BATCH])
    return ids
