"""How the sub-processor list reacts to the agreement lifecycle."""

from __future__ import annotations

from dpa_service.core.db import Database, Scope
from dpa_service.core.events import AgreementExecuted
from dpa_service.subprocessors.authorization import record_executed
from dpa_service.subprocessors.publishing import notify_pending_changes


async def on_executed(db: Database, event: AgreementExecuted) -> None:
    """Record what the DPA authorized; if changes are pending, its tenant gets their notice now (once each), so it
    can still object before their deadlines."""
    async with db.transaction(Scope.tenant(event.tenant_id)) as session:
        await record_executed(session, event)
        await notify_pending_changes(session, event.tenant_id, event.subprocessor_list_version, event.contact_email)
