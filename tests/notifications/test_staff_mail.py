"""A notice to the processor (`email_staff`): e-mailed to its staff of that role, not to the tenant's users, while
the webhook event still goes to the tenant's endpoints without the addressing key."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from dpa_service.core.db import Database, Scope
from dpa_service.notifications.models import MailDelivery
from dpa_service.notifications.outbox import OutboxMessage, enqueue_many
from dpa_service.notifications.worker import event_body, fan_out
from tests.helpers.api import Api


async def test_a_message_for_a_staff_role_is_mailed_to_that_role_only(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    legal, sales = await admin.new_staff("legal"), await admin.new_staff("sales")
    emails = {name: (await api.get("/me")).json()["email"] for name, api in (("legal", legal), ("sales", sales))}
    async with db.transaction(Scope.system()) as session:
        await enqueue_many(session, "breach_notice.reported", [
            (uuid.UUID(owner.tenant_id), "to-legal", {"email_staff": "legal", "subject": "S", "text": "T"}),
            (uuid.UUID(owner.tenant_id), "to-tenant", {"subject": "S2", "text": "T2"}),
        ])  # fmt: skip
    assert await fan_out(db) == 2
    async with db.transaction(Scope.system(), write=False) as session:
        mails = {(m.subject, m.recipient) for m in (await session.execute(select(MailDelivery))).scalars()}
        message = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == "to-legal"))
        ).scalar_one()
    owner_email = (await owner.get("/me")).json()["email"]
    assert mails == {("S", emails["legal"]), ("S2", owner_email)}
    assert "email_staff" not in event_body(message)
