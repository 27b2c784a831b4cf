"""How the obligations ledger reacts to the agreement lifecycle."""

from __future__ import annotations

from dpa_service.core.db import Database
from dpa_service.core.events import AgreementExecuted
from dpa_service.obligations import ledger


async def on_executed(db: Database, event: AgreementExecuted) -> None:
    """The executed DPA's obligations (its template version's list) become the tenant's ledger; the superseded
    DPAs' rows end and stay as history."""
    await ledger.instantiate(db, event)
