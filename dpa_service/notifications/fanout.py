"""Fan-out: pending outbox messages become webhook deliveries (one per subscribed endpoint) and e-mails (one per
address), in one transaction per batch; the worker (`worker.py`) then sends them."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import col

from dpa_service.core.clock import rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.notifications.models import MailDelivery, WebhookDelivery, WebhookEndpoint, wants
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.users import services as users

FAN_OUT_BATCH = 500  # outbox messages per fan-out transaction
RETRY_WINDOW = timedelta(days=3)  # a delivery is retried with backoff for this long, then dead-lettered


async def any_row(db: Database, query: Select[Any]) -> bool:
    """A cheap read first, so an idle worker never takes the (SQLite) write lock."""
    async with db.transaction(Scope.system(), write=False) as session:
        return (await session.execute(query.limit(1))).first() is not None


# Payload keys that steer the e-mail, not part of the event a receiver gets. `email_staff` names a staff role
# (e.g. "legal"): the e-mail is a notice *to the processor* about the tenant (a breach report), so it goes to the
# staff holding that role instead of the tenant's owners and admins; the webhook still goes to the tenant.
EMAIL_ONLY = frozenset({"email_also", "notify_by_email", "email_staff"})


def event_body(message: OutboxMessage) -> str:
    return json.dumps(
        {
            "id": str(message.id),
            "event": message.topic,
            "created_at": rfc3339(message.created_at),
            "tenant_id": str(message.tenant_id) if message.tenant_id else None,
            "data": {key: value for key, value in message.payload.items() if key not in EMAIL_ONLY},
        },
        sort_keys=True,
        separators=(",", ":"),
    )


async def fan_out(db: Database) -> int:
    """Turn pending outbox messages into webhook and e-mail deliveries (one transaction); returns how many."""
    if not await any_row(db, select(col(OutboxMessage.id)).where(col(OutboxMessage.delivered_at).is_(None))):
        return 0
    async with db.transaction(Scope.system()) as session:
        messages = (
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.delivered_at).is_(None))
                    .order_by(col(OutboxMessage.created_at))
                    .limit(FAN_OUT_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        tenant_ids = {m.tenant_id for m in messages if m.tenant_id}
        endpoints: dict[uuid.UUID, list[WebhookEndpoint]] = defaultdict(list)
        recipients = await users.notification_addresses(db, tenant_ids)
        staff = await users.staff_addresses(
            db, {m.payload["email_staff"] for m in messages if m.payload.get("email_staff")}
        )
        if tenant_ids:
            for endpoint in (
                await session.execute(
                    select(WebhookEndpoint).where(
                        col(WebhookEndpoint.tenant_id).in_(tenant_ids), col(WebhookEndpoint.deleted_at).is_(None)
                    )
                )
            ).scalars():
                endpoints[endpoint.tenant_id].append(endpoint)
        now = utcnow()
        for message in messages:
            body = event_body(message)
            for endpoint in endpoints.get(message.tenant_id, []) if message.tenant_id else []:
                if wants(endpoint, message.topic):
                    session.add(
                        WebhookDelivery(
                            tenant_id=endpoint.tenant_id,
                            endpoint_id=endpoint.id,
                            message_id=message.id,
                            event=message.topic,
                            body=body,
                            next_attempt_at=now,
                            retry_until=now + RETRY_WINDOW,
                        )
                    )
            subject = message.payload.get("subject") or f"DPA service: {message.topic.replace('_', ' ')}"
            text = message.payload.get("text") or json.dumps(message.payload, indent=2, ensure_ascii=False)
            if message.tenant_id and message.payload.get("notify_by_email", True):  # status changes: webhooks only
                role = message.payload.get("email_staff")
                told = staff.get(role, []) if role else recipients.get(message.tenant_id, [])
                addressees = [*told, *message.payload.get("email_also", [])]
                for to in {to.casefold(): to for to in addressees}.values():  # one e-mail per address
                    session.add(
                        MailDelivery(
                            tenant_id=message.tenant_id,
                            message_id=message.id,
                            recipient=to,
                            subject=subject[:500],
                            body=text,
                            next_attempt_at=now,
                            retry_until=now + RETRY_WINDOW,
                        )
                    )
            message.delivered_at, message.attempts = now, message.attempts + 1
    return len(messages)
