"""How the transfer register reacts to the agreement lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import AgreementExecuted
from dpa_service.core.identity import Actor
from dpa_service.transfers.models import ImporterKind, Transfer


async def on_executed(db: Database, event: AgreementExecuted) -> None:
    """An executed DPA's transfers join the register; those of the DPAs it supersedes end."""
    async with db.transaction(Scope.tenant(event.tenant_id)) as session:
        await record_from_dpa(
            session,
            event.actor,
            tenant_id=event.tenant_id,
            agreement_id=event.agreement_id,
            effective=event.effective_date,
            subprocessors=list(event.subprocessors),
            superseded=event.superseded,
            controller_country=event.controller_country,
        )


async def record_from_dpa(
    session: AsyncSession,
    actor: Actor,
    *,
    tenant_id: uuid.UUID,
    agreement_id: uuid.UUID,
    effective: date,
    subprocessors: list[dict[str, Any]],
    superseded: Sequence[uuid.UUID],
    controller_country: str | None = None,
) -> int:
    """The transfers an executed DPA implies: the Subscriber's own transfer to the processor when the processor is
    established or hosts outside the EU/EEA (first), then one per authorized sub-processor location outside it.

    The transfers of the agreements it supersedes end the day before it takes effect.
    """
    if superseded:
        for old in (
            await session.execute(
                select(Transfer).where(
                    col(Transfer.tenant_id) == tenant_id,
                    col(Transfer.agreement_id).in_(superseded),
                    col(Transfer.end_date).is_(None),
                )
            )
        ).scalars():
            old.end_date, old.updated_at = max(old.start_date, effective - timedelta(days=1)), utcnow()
    created = 0
    processor_transfer = _processor_transfer(tenant_id, agreement_id, effective, controller_country)
    if processor_transfer is not None:
        session.add(processor_transfer)
        created += 1
    for item in subprocessors:
        code: str = item.get("transfer_mechanism") or ""
        mechanism = registry.mechanisms().get(code)
        for location in item.get("locations", []):
            country = registry.country(location)
            if country is None or country.eea or mechanism is None:
                continue
            session.add(
                Transfer(
                    tenant_id=tenant_id,
                    importer=item.get("entity", item["name"]),
                    importer_kind=ImporterKind.SUBPROCESSOR.value,
                    destination_country=location,
                    data_categories=list(item.get("data_categories", [])),
                    mechanism=code,
                    # Legal lists a DPF sub-processor as certified (listing_problem); the check itself is recorded
                    # only when the list entry carries it, else the assessment flags it as unverified.
                    importer_certified=True if mechanism.requires_certified_importer else None,
                    importer_certification=item.get("certification") if mechanism.requires_certified_importer else None,
                    origin=origin_of(controller_country),
                    start_date=effective,
                    instrument_date=effective,
                    source="dpa",
                    agreement_id=agreement_id,
                )
            )
            created += 1
    if created or superseded:
        await audit.record(
            session,
            actor,
            "transfer.recorded_from_dpa",
            "agreement",
            agreement_id,
            tenant_id=tenant_id,
            data={"created": created, "ended_from_superseded": [str(a) for a in superseded]},
        )
    return created


# The regime a Subscriber exports under, by its country of establishment (the DPA accepts EU/EEA, UK, Swiss ones).
ORIGIN_OF = {"GB": "uk", "CH": "ch"}


def origin_of(country_code: str | None) -> str:
    return ORIGIN_OF.get((country_code or "").upper(), "eea")


def _processor_transfer(
    tenant_id: uuid.UUID, agreement_id: uuid.UUID, effective: date, controller_country: str | None
) -> Transfer | None:
    """The Subscriber-to-processor transfer (SCC Module Two, incorporated by Clause 12.3; under UK law with the UK
    Addendum, Clause 12.4), when the processor sits or hosts outside the EU/EEA: None otherwise."""
    destination = registry.processor_transfer_destination()
    if destination is None:
        return None
    origin = origin_of(controller_country)
    data = registry.processor()
    return Transfer(
        tenant_id=tenant_id,
        importer=data["legal_name"],
        importer_kind=ImporterKind.PROCESSOR.value,
        destination_country=destination,
        data_categories=["Customer Personal Data (Annex I.B of the DPA)"],
        mechanism="uk-addendum" if origin == "uk" else "scc-2021",
        origin=origin,
        start_date=effective,
        instrument_date=effective,
        tia_reference=data.get("transfer_impact_assessment"),
        source="dpa",
        agreement_id=agreement_id,
    )
