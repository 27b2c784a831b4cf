"""Which domain reacts to which agreement lifecycle event, and which may refuse an agreement step (the composition
root wires them once at start)."""

from __future__ import annotations

from dpa_service.contracts import reactions as contracts
from dpa_service.core.events import (
    AgreementExecuted,
    AgreementVoided,
    MechanismInvalidated,
    TemplateRetired,
    checks,
    reactions,
)
from dpa_service.obligations import reactions as obligations
from dpa_service.subprocessors import reactions as subprocessors
from dpa_service.transfers import reactions as transfers


def install() -> None:
    """Register every domain's handlers and checks (idempotent). The order is the order they run in."""
    reactions.subscribe(AgreementExecuted, subprocessors.on_executed)
    reactions.subscribe(AgreementExecuted, transfers.on_executed)
    reactions.subscribe(AgreementExecuted, obligations.on_executed)
    # Contracts last: the superseding DPA is attached and every affected contract's DPA status derived again.
    reactions.subscribe(AgreementExecuted, contracts.on_executed)
    reactions.subscribe(AgreementVoided, contracts.on_voided)
    reactions.subscribe(TemplateRetired, contracts.on_template_retired)
    reactions.subscribe(MechanismInvalidated, contracts.on_mechanism_invalidated)
    # Vetoes: a tenant in exit requests and signs no new DPA (agreements asks `checks`, importing no obligations).
    checks.add_before_new_agreement(obligations.refuse_in_exit, bulk=obligations.refuse_in_exit_many)
    checks.add_before_signing(obligations.refuse_in_exit)
    reactions.installed = True
