"""How the obligations domain reacts to the agreement lifecycle, and the agreement steps it refuses."""

from __future__ import annotations

import uuid

from dpa_service.core.db import Database, Scope
from dpa_service.core.events import AgreementExecuted
from dpa_service.core.exceptions import Conflict
from dpa_service.obligations import exit_lookup, ledger


async def on_executed(db: Database, event: AgreementExecuted) -> None:
    """The executed DPA's obligations (its template version's list) become the tenant's ledger; the superseded
    DPAs' rows end and stay as history."""
    await ledger.instantiate(db, event)


async def refuse_in_exit(db: Database, scope: Scope, tenant_id: uuid.UUID) -> None:
    """A tenant whose main agreement has an end date recorded gets no new DPA: none requested, sent for signature,
    signed or countersigned (409 with the end date; registered on `core.events.checks`)."""
    ends_on = await exit_lookup.exit_of(db, scope, tenant_id)
    if ends_on is not None:
        raise Conflict(
            f"Signing new DPAs is refused for a tenant in exit: the main agreement ends on {ends_on.isoformat()}."
        )
