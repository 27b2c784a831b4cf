"""What the contract tests share: the people (a tenant's owner, legal, sales) and a contract made through the API."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from dpa_service.core.db import Database, Scope
from dpa_service.notifications.outbox import OutboxMessage
from tests.helpers.api import Api

STATUS_CHANGED = "contract.dpa_status_changed"


async def new_contract(sales: Api, tenant_id: str, **fields: Any) -> dict[str, Any]:
    body = {"tenant_id": tenant_id, "reference": f"CRM-{secrets.token_hex(3)}", "title": "Live chat, 200 seats",
            **fields}  # fmt: skip
    response = await sales.post("/contracts", body)
    assert response.status_code == 201, response.text
    return response.json()


async def attach(sales: Api, contract_id: str, agreement_id: str) -> dict[str, Any]:
    response = await sales.post(f"/contracts/{contract_id}/agreements", {"agreement_id": agreement_id})
    assert response.status_code == 200, response.text
    return response.json()


async def status_changes(db: Database, contract_id: str | None = None) -> list[dict[str, Any]]:
    """The `contract.dpa_status_changed` messages queued (what webhooks receive), oldest first."""
    async with db.transaction(Scope.system(), write=False) as session:
        rows = (
            await session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.topic) == STATUS_CHANGED)
                .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
            )
        ).scalars()
        found = [row.payload for row in rows]
    return [p for p in found if contract_id is None or p["contract_id"] == contract_id]
