"""How contracts react to the agreement lifecycle, to a retired template version and to an invalidated mechanism:
each may move contracts' DPA status, which `standing.refresh` stores and announces in the publisher's
transaction (the publishers import nothing of contracts)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.contracts import standing
from dpa_service.contracts.models import Contract, ContractAgreement, ContractStatus
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import AgreementExecuted, AgreementVoided, MechanismInvalidated, TemplateRetired


async def on_executed(db: Database, event: AgreementExecuted) -> None:
    """The new DPA is attached to every contract holding one it supersedes (audited, `via: supersession`), so a
    re-papered contract goes `outdated` -> `executed` again; then the status of every contract holding any of them
    is derived again."""
    scope = Scope.tenant(event.tenant_id)
    async with db.transaction(scope) as session:
        if event.superseded:
            link = ContractAgreement
            # Open contracts only: a closed one is a record of what was attached when it closed.
            holding = set(
                (await session.execute(
                    select(col(link.contract_id))
                    .join(Contract, col(Contract.id) == col(link.contract_id))
                    .where(col(link.agreement_id).in_(list(event.superseded)))
                    .where(col(Contract.status) == ContractStatus.OPEN.value)
                )).scalars()
            )  # fmt: skip
            has_new = set(
                (await session.execute(
                    select(col(link.contract_id)).where(col(link.agreement_id) == event.agreement_id)
                )).scalars()
            )  # fmt: skip
            added = sorted(holding - has_new)
            for contract_id in added:
                session.add(ContractAgreement(tenant_id=event.tenant_id, contract_id=contract_id,
                                              agreement_id=event.agreement_id, via="supersession"))  # fmt: skip
            data = {"agreement_id": str(event.agreement_id), "via": "supersession",
                    "replaces": [str(a) for a in event.superseded]}  # fmt: skip
            await audit.record_many(
                session, event.actor, "contract.agreement_attached", "contract",
                [(event.tenant_id, contract_id, data) for contract_id in added],
            )  # fmt: skip
        await standing.refresh(
            db, scope, event.actor, cause="agreement_executed", agreement_ids=[event.agreement_id, *event.superseded]
        )


async def on_voided(db: Database, event: AgreementVoided) -> None:
    await standing.refresh(
        db, Scope.tenant(event.tenant_id), event.actor, cause="agreement_voided", agreement_ids=[event.agreement_id]
    )


async def on_template_retired(db: Database, event: TemplateRetired) -> None:
    """Every contract is derived again in a handful of statements (the retiring transaction is processor-wide)."""
    await standing.refresh(db, Scope.system(), event.actor, cause="template_retired")


async def on_mechanism_invalidated(db: Database, event: MechanismInvalidated) -> None:
    await standing.refresh(db, Scope.system(), event.actor, cause="mechanism_invalidated")
