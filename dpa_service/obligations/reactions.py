"""How the obligations domain reacts to the agreement lifecycle, and the agreement steps it refuses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

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
        raise Conflict(_in_exit(ends_on))


async def refuse_in_exit_many(db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """`refuse_in_exit` for a fan-out (a re-papering campaign): the tenants in exit, each with the reason."""
    in_exit = await exit_lookup.exits_of(db, scope, tenant_ids)
    return {tenant_id: _in_exit(ends_on) for tenant_id, ends_on in in_exit.items()}


def _in_exit(ends_on: date) -> str:
    return f"Signing new DPAs is refused for a tenant in exit: the main agreement ends on {ends_on.isoformat()}."
