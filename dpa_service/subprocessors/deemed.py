"""The scheduled job: deemed acceptance for tenants that did not object within the notice period (clause 6.3)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.subprocessors.models import (
    Acceptance,
    AcceptanceKind,
    Authorization,
    ChangeState,
    Objection,
    SubprocessorChange,
)

DEEMED_BATCH = 500


async def record_deemed_acceptances(db: Database) -> int:
    """Write a deemed acceptance, dated at the deadline, for each tenant that did not object to an effective
    change; then mark the change recorded. Idempotent and safe to run late or twice."""
    recorded = 0
    async with db.transaction(Scope.system(), write=False) as session:
        due = list(
            (
                await session.execute(
                    select(col(SubprocessorChange.id))
                    .where(
                        col(SubprocessorChange.state) == ChangeState.PUBLISHED.value,
                        col(SubprocessorChange.effective_at) <= utcnow(),
                        col(SubprocessorChange.effective_recorded_at).is_(None),
                    )
                    .order_by(col(SubprocessorChange.version))
                )
            ).scalars()
        )
    actor = Actor.system("deemed-acceptance")
    for change_id in due:
        while True:
            async with db.transaction(Scope.system()) as session:
                change = await session.get(SubprocessorChange, change_id, with_for_update=True)
                if change is None or change.effective_recorded_at is not None:
                    break
                answered = (
                    select(col(Objection.tenant_id))
                    .where(col(Objection.change_id) == change.id)
                    .union(select(col(Acceptance.tenant_id)).where(col(Acceptance.change_id) == change.id))
                )
                tenants = list(
                    (
                        await session.execute(
                            select(col(Authorization.tenant_id))
                            .where(
                                col(Authorization.ended_at).is_(None),
                                col(Authorization.list_version) < change.version,
                                col(Authorization.tenant_id).not_in(answered),
                            )
                            .limit(DEEMED_BATCH)
                        )
                    ).scalars()
                )
                for tenant_id in tenants:
                    session.add(
                        Acceptance(
                            id=new_id(),
                            tenant_id=tenant_id,
                            change_id=change.id,
                            version=change.version or 0,
                            kind=AcceptanceKind.DEEMED.value,
                            accepted_at=change.effective_at,  # type: ignore[arg-type]
                        )
                    )
                    await audit.record(
                        session,
                        actor,
                        "subprocessor_change.deemed_accepted",
                        "subprocessor_change",
                        change.id,
                        tenant_id=tenant_id,
                        data={"version": change.version, "deadline": rfc3339(change.effective_at)},  # type: ignore[arg-type]
                    )
                recorded += len(tenants)
                if len(tenants) < DEEMED_BATCH:
                    change.effective_recorded_at = utcnow()
                    await audit.record(
                        session,
                        actor,
                        "subprocessor_change.effective",
                        "subprocessor_change",
                        change.id,
                        tenant_id=None,
                        data={"version": change.version, "effective_at": rfc3339(change.effective_at)},  # type: ignore[arg-type]
                    )
                    break
    return recorded
