"""Executing a DPA and the domains that react to it: all of it commits, or none of it does."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from dpa_service.agreements.models import AgreementDocument
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import AgreementExecuted, AgreementSuperseded, reactions
from dpa_service.subprocessors.models import Authorization
from dpa_service.transfers.models import Transfer
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(), await admin.new_staff("legal")


async def _count(db: Database, tenant: uuid.UUID, table: type, column: str = "tenant_id") -> int:
    async with db.transaction(Scope.tenant(tenant), write=False) as session:
        return int(
            await session.scalar(select(func.count()).select_from(table).where(getattr(table, column) == tenant))
        )


async def test_a_failing_reaction_to_execution_leaves_the_agreement_signed_with_nothing_stored(
    parties: tuple[Api, Api], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, legal = parties
    tenant = uuid.UUID(owner.tenant_id or "")
    signed = await to_status(owner, legal, "signed")
    ran: list[str] = []

    async def broken_reaction(_db: Database, event: AgreementExecuted) -> None:
        ran.append(str(event.agreement_id))
        raise RuntimeError("the obligations ledger is down")

    # After the real handlers, so their writes in the same transaction must be rolled back too.
    monkeypatch.setitem(
        reactions._handlers, AgreementExecuted, [*reactions._handlers[AgreementExecuted], broken_reaction]
    )
    response = await legal.post(f"/agreements/{signed['id']}/countersign")
    assert response.status_code == 500, response.text
    assert ran == [signed["id"]]
    after = (await owner.get(f"/agreements/{signed['id']}")).json()
    assert after["status"] == "signed" and after["document_sha256"] is None and after["executed_at"] is None
    async with db.transaction(Scope.tenant(tenant), write=False) as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(AgreementDocument)
            .where(AgreementDocument.agreement_id == uuid.UUID(signed["id"]))
        )
    assert stored == 0
    assert await _count(db, tenant, Authorization) == 0, "the sub-processor authorization was rolled back"
    assert await _count(db, tenant, Transfer) == 0, "the transfers the DPA implies were rolled back"

    monkeypatch.undo()
    retried = await legal.post(f"/agreements/{signed['id']}/countersign")
    assert retried.status_code == 200 and retried.json()["status"] == "executed"
    assert await _count(db, tenant, Authorization) == 1
    assert await _count(db, tenant, Transfer) >= 1, "the seeded list has sub-processors outside the EEA"


async def test_executing_a_newer_dpa_moves_the_authorization_to_it(
    parties: tuple[Api, Api], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, legal = parties
    first = await to_status(owner, legal, "executed")
    heard: list[AgreementSuperseded] = []

    async def listener(_db: Database, event: AgreementSuperseded) -> None:
        heard.append(event)

    monkeypatch.setitem(reactions._handlers, AgreementSuperseded, [listener])
    second = await to_status(owner, legal, "executed")
    assert [(str(e.agreement_id), str(e.superseded_by)) for e in heard] == [(first["id"], second["id"])]
    tenant = uuid.UUID(owner.tenant_id or "")
    async with db.transaction(Scope.tenant(tenant), write=False) as session:
        rows = {row.agreement_id: row for row in (await session.execute(select(Authorization))).scalars()}
    assert rows[uuid.UUID(first["id"])].ended_at is not None
    assert rows[uuid.UUID(second["id"])].ended_at is None
    authorized = (await owner.get("/tenant/subprocessors")).json()
    assert authorized["agreement_id"] == second["id"]
