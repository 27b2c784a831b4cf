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
            mechanisms=event.mechanisms,
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
    mechanisms: Sequence[str] = (),
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
    processor_transfer = _processor_transfer(tenant_id, agreement_id, effective, controller_country, mechanisms)
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


origin_of = registry.origin_of


def _processor_transfer(
    tenant_id: uuid.UUID,
    agreement_id: uuid.UUID,
    effective: date,
    controller_country: str | None,
    mechanisms: Sequence[str] = (),
) -> Transfer | None:
    """The Subscriber-to-processor transfer, when the processor sits or hosts outside the EU/EEA (None otherwise),
    under the mechanism Clause 12.2 gives it: the first the Subscriber selected that is available for it on the day
    the DPA takes effect, else the SCCs of Clause 12.3 (Module Two; under UK law with the UK Addendum, 12.4)."""
    destination = registry.processor_transfer_destination()
    if destination is None:
        return None
    origin = origin_of(controller_country)
    data = registry.processor()
    mechanism = processor_mechanism(mechanisms, origin, destination, effective)
    certification = next(
        (c for c in registry.processor_certifications().get(mechanism, ()) if c.covers(effective)), None
    )
    return Transfer(
        tenant_id=tenant_id,
        importer=data["legal_name"],
        importer_kind=ImporterKind.PROCESSOR.value,
        destination_country=destination,
        data_categories=["Customer Personal Data (Annex I.B of the DPA)"],
        mechanism=mechanism,
        importer_certified=True if certification is not None else None,
        # The processor's own certification, as its file records it (`processor.yaml`), checked on the day the
        # DPA takes effect: recorded, so the register does not flag its own transfer as unverified.
        importer_certification=(
            {"checked_by": data["legal_name"], "checked_on": effective.isoformat(), "entry": certification.entry}
            if certification is not None
            else None
        ),
        origin=origin,
        start_date=effective,
        instrument_date=effective,
        tia_reference=data.get("transfer_impact_assessment"),
        source="dpa",
        agreement_id=agreement_id,
    )


def processor_mechanism(selected: Sequence[str], origin: str, destination: str, day: date) -> str:
    """Clause 12.2's rule for the Subscriber-to-processor transfer: the first selected mechanism available for it on
    `day` (in force under the origin's law, for that destination, and, for a certification framework, with the
    processor certified under it that day: `certifications` in registry/processor.yaml), else the SCCs of Clause
    12.3 in force that day (the 2021 SCCs, or before them the 2010 ones; under UK law the UK Addendum once it
    exists)."""
    catalogue, certified = registry.mechanisms(), registry.processor_certifications()
    for code in selected:
        mechanism = catalogue.get(code)
        if mechanism is None or mechanism.kind == "derogation" or not mechanism.in_force_on(day, origin):
            continue
        if mechanism.destinations and destination not in mechanism.destinations:
            continue
        if code == "adequacy" and not registry.adequate_destination(origin, destination, day):
            continue
        if mechanism.requires_certified_importer and not any(c.covers(day) for c in certified.get(code, ())):
            continue
        return code
    fallbacks = ("uk-addendum", "uk-idta", "scc-2010") if origin == "uk" else ("scc-2021", "scc-2010")
    return next((code for code in fallbacks if catalogue[code].in_force_on(day, origin)), fallbacks[0])
