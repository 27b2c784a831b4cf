"""Which domain reacts to which agreement lifecycle event (the composition root wires them once at start)."""

from __future__ import annotations

from dpa_service.core.events import AgreementExecuted, reactions
from dpa_service.obligations import reactions as obligations
from dpa_service.subprocessors import reactions as subprocessors
from dpa_service.transfers import reactions as transfers


def install() -> None:
    """Register every domain's handlers (idempotent). The order is the order they run in."""
    reactions.subscribe(AgreementExecuted, subprocessors.on_executed)
    reactions.subscribe(AgreementExecuted, transfers.on_executed)
    reactions.subscribe(AgreementExecuted, obligations.on_executed)
    reactions.installed = True
