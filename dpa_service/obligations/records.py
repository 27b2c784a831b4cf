"""The processor's records of processing: one record per controller tenant, built from its executed DPA.

Art. 30(2) GDPR has each processor keep a record of all categories of processing it carries out on behalf of a
controller, containing:
    (a) the name and contact details of the processor and of each controller on whose behalf it acts and, where
        applicable, of the controller's or the processor's representative and data protection officer;
    (b) the categories of processing carried out on behalf of each controller;
    (c) where applicable, transfers of personal data to a third country or an international organisation, naming
        it, and for transfers under the second subparagraph of Art. 49(1) the documentation of suitable safeguards;
    (d) where possible, a general description of the technical and organisational security measures of Art. 32(1).
(Regulation (EU) 2016/679, Art. 30(2); Art. 30(3): in writing, including in electronic form.) The Subscriber's own
record as controller (Art. 30(1)) is its own to keep: it attests that it does in the obligations ledger
(`records_of_processing`, clause 9 of the standard DPA).

Where each part of a record comes from, so that it says what the executed DPA says:
    processor            registry/processor.yaml (Annex I.A, the importer's column)
    controller           the DPA's `variables.controller` (Annex I.A), with the tenant profile's contact person,
                         phone, DPO and EU representative (tenants domain)
    processing           the DPA's `variables.processing` (Annex I.B) and `variables.transfers.mechanisms`
    subprocessors        the list the tenant authorized (subprocessors domain): Annex III, advanced by the
                         changes it accepted since
    transfers            the tenant's register (transfers domain): every transfer not ended, with its mechanism's
                         legal reference, certification, transfer impact assessment and supplementary measures
    security_measures    the areas of Annex II, read from the DPA's own template version (data, not code)

A tenant with no executed DPA has no record: the all-tenants export skips it, its own export is empty. Exports are
read in keyset-paged batches of executed DPAs (one query per table per batch, however many tenants), so the
all-tenants CSV streams in bounded memory. Every export is one event in the audit log: the tenant's chain for one
tenant's record, the platform chain for legal's all-tenants export.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cache
from html import unescape
from typing import Any

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Actor, Principal
from dpa_service.http.pagination import decode_id_cursor, encode_cursor
from dpa_service.obligations import records_csv
from dpa_service.obligations.records_models import (
    Contact,
    ControllerParty,
    ProcessingDescription,
    ProcessingRecord,
    ProcessorParty,
    RecordPage,
    RecordSubprocessor,
    RecordSubprocessors,
    RecordTransfer,
    SecurityMeasures,
)
from dpa_service.subprocessors import services as subprocessors
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants
from dpa_service.transfers import services as transfers

FORMATS = ("json", "csv")
BATCH = 500  # executed DPAs per batch of the CSV export: 5-6 queries each, a few MB of rows at most
EXPORTED = "records_of_processing.exported"


def export_format(requested: str | None, accept: str = "") -> str:
    """`?format=` (json or csv); without it, CSV when the client asks for `text/csv`, else JSON."""
    if requested is None or requested == "":
        return "csv" if "text/csv" in accept.lower() else "json"
    if requested not in FORMATS:
        raise InvalidInput.field("format", "must be json or csv")
    return requested


def target_tenant(principal: Principal, tenant_id: uuid.UUID | None) -> uuid.UUID | None:
    """Whose records: a Subscriber always its own (a `tenant_id` it passes is ignored, as everywhere in the API);
    legal the tenant it names, or every tenant (None)."""
    return principal.tenant_id if principal.tenant_id is not None else tenant_id


# --- Reading -------------------------------------------------------------------------------------------------


async def records_page(
    db: Database, principal: Principal, *, tenant_id: uuid.UUID | None, cursor: str | None, limit: int
) -> RecordPage:
    """A page of records (a Subscriber's: its one record or none), without auditing: the pages' readable view."""
    records, more = await _batch(
        db, principal.scope, tenant=target_tenant(principal, tenant_id), after=decode_id_cursor(cursor), limit=limit
    )
    next_cursor = encode_cursor(str(records[-1].tenant_id)) if more and records else None
    return RecordPage(items=records, next_cursor=next_cursor)


async def record_of(db: Database, principal: Principal, tenant_id: uuid.UUID | None) -> ProcessingRecord | None:
    """One tenant's record (the caller's own for a Subscriber), or None without an executed DPA."""
    page = await records_page(db, principal, tenant_id=tenant_id, cursor=None, limit=1)
    return page.items[0] if page.items else None


@dataclass(frozen=True)
class TenantChoice:
    tenant_id: uuid.UUID
    name: str
    legal_name: str


async def tenants_with_records(
    db: Database, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[TenantChoice], str | None]:
    """The tenants that have a record (an executed DPA), by id, a page at a time: legal's tenant picker."""
    async with db.transaction(principal.scope, write=False):
        found = await agreements.executed_agreements(
            db, principal.scope, tenant_id=None, after_tenant=decode_id_cursor(cursor), limit=limit + 1
        )
        executed = _one_per_tenant(found[:limit])
        profiles = await tenants.profiles(db, principal.scope, [a.tenant_id for a in executed])
    choices = [
        TenantChoice(a.tenant_id, profiles[a.tenant_id].name, profiles[a.tenant_id].legal_name)
        for a in executed
        if a.tenant_id in profiles
    ]
    more = len(found) > limit and executed
    return choices, encode_cursor(str(executed[-1].tenant_id)) if more else None


async def _batch(
    db: Database, scope: Scope, *, tenant: uuid.UUID | None, after: uuid.UUID | None, limit: int
) -> tuple[list[ProcessingRecord], bool]:
    """Up to `limit` records from the tenant after `after`, and whether there are more. One read transaction, and
    one query per table for the whole batch (the services' transactions join this one)."""
    async with db.transaction(scope, write=False):
        found = await agreements.executed_agreements(db, scope, tenant_id=tenant, after_tenant=after, limit=limit + 1)
        more = len(found) > limit
        executed = _one_per_tenant(found[:limit])
        ids = [agreement.tenant_id for agreement in executed]
        profiles = await tenants.profiles(db, scope, ids)
        authorized = await subprocessors.authorized_lists(db, scope, ids)
        registered = await transfers.current_transfers(db, scope, ids, utcnow().date())
        measures = {tid: await _measures(db, scope, tid) for tid in {a.template_id for a in executed}}
    records = [
        _record(
            agreement,
            profiles.get(agreement.tenant_id),
            authorized.get(agreement.tenant_id),
            registered.get(agreement.tenant_id, []),
            measures[agreement.template_id],
        )
        for agreement in executed
    ]
    return records, more


def _one_per_tenant(executed: Sequence[Any]) -> list[Any]:
    """The newest executed DPA of each tenant (there is one: executing supersedes; this only guards the export)."""
    seen: set[uuid.UUID] = set()
    kept = []
    for agreement in executed:  # ordered by tenant, newest execution first
        if agreement.tenant_id not in seen:
            seen.add(agreement.tenant_id)
            kept.append(agreement)
    return kept


# --- Building one record -------------------------------------------------------------------------------------


@cache
def processor_party() -> ProcessorParty:
    data = registry.processor()
    dpo = data.get("dpo") or {}
    representative = data.get("eu_representative") or data.get("representative")
    return ProcessorParty(
        name=data["legal_name"],
        trading_name=data.get("trading_name"),
        address=data["address"],
        country=data["country"],
        registration_number=data.get("registration_number"),
        contact_email=data["contact_email"],
        dpo=Contact(name=dpo.get("name"), email=dpo.get("email")) if dpo else None,
        representative=Contact(**representative) if representative else None,
    )


def _contact(name: str | None, email: str | None, address: str | None = None) -> Contact | None:
    return Contact(name=name, email=email, address=address) if (name or email or address) else None


def _controller(agreement: Any, profile: Any) -> ControllerParty:
    """Annex I.A as executed; the profile adds what Annex I.A does not carry (Art. 30(2)(a): DPO, representative)."""
    stated: dict[str, Any] = agreement.variables.get("controller", {})
    return ControllerParty(
        tenant_id=agreement.tenant_id,
        name=str(stated.get("legal_name") or getattr(profile, "legal_name", "")),
        address=stated.get("address") or getattr(profile, "address", None),
        country=str(stated.get("country") or getattr(profile, "country", "")),
        registration_number=stated.get("registration_number") or getattr(profile, "registration_number", None),
        contact_name=getattr(profile, "contact_name", None),
        contact_email=stated.get("contact_email") or getattr(profile, "contact_email", None),
        contact_phone=getattr(profile, "contact_phone", None),
        dpo=_contact(getattr(profile, "dpo_name", None), getattr(profile, "dpo_email", None)),
        representative=_contact(
            getattr(profile, "eu_representative_name", None),
            getattr(profile, "eu_representative_email", None),
            getattr(profile, "eu_representative_address", None),
        ),
    )


def _processing(variables: dict[str, Any]) -> ProcessingDescription:
    stated: dict[str, Any] = variables.get("processing", {})
    return ProcessingDescription(
        subject_matter=stated.get("subject_matter", ""),
        nature_and_purpose=stated.get("nature_and_purpose", ""),
        duration=stated.get("duration", ""),
        retention=stated.get("retention", ""),
        data_subject_categories=list(stated.get("data_subject_categories") or []),
        personal_data_categories=list(stated.get("personal_data_categories") or []),
        special_categories=list(stated.get("special_categories") or []),
    )


def _subprocessors(authorized: Any) -> RecordSubprocessors:
    if authorized is None:
        return RecordSubprocessors(version=None, effective_at=None, items=[])
    return RecordSubprocessors(
        version=authorized.authorized_version,
        effective_at=authorized.effective_at,
        items=[RecordSubprocessor.model_validate(item, from_attributes=True) for item in authorized.items],
    )


def safeguards(transfer: Any) -> str:
    """What documents a transfer's safeguards (Art. 30(2)(c), Art. 46): its mechanism and legal instrument, the
    importer's certification, the transfer impact assessment and any supplementary measures."""
    mechanism = registry.mechanisms().get(transfer.mechanism)
    parts = [f"{mechanism.name} ({mechanism.legal_reference})" if mechanism else transfer.mechanism]
    if transfer.importer_certified:
        parts.append("importer certified")
    if transfer.tia_reference:
        parts.append(f"transfer impact assessment {transfer.tia_reference}")
    if transfer.supplementary_measures:
        parts.append(f"supplementary measures: {transfer.supplementary_measures}")
    return "; ".join(parts)


def _transfer(transfer: Any) -> RecordTransfer:
    mechanism = registry.mechanisms().get(transfer.mechanism)
    return RecordTransfer(
        id=transfer.id,
        importer=transfer.importer,
        importer_kind=transfer.importer_kind,
        destination_country=transfer.destination_country,
        data_categories=list(transfer.data_categories),
        mechanism=transfer.mechanism,
        mechanism_name=mechanism.name if mechanism else transfer.mechanism,
        legal_reference=mechanism.legal_reference if mechanism else "",
        start_date=transfer.start_date,
        end_date=transfer.end_date,
        importer_certified=transfer.importer_certified,
        tia_reference=transfer.tia_reference,
        supplementary_measures=transfer.supplementary_measures,
        safeguards=safeguards(transfer),
    )


def _record(
    agreement: Any, profile: Any, authorized: Any, registered: list[Any], measures: SecurityMeasures
) -> ProcessingRecord:
    return ProcessingRecord(
        tenant_id=agreement.tenant_id,
        agreement_id=agreement.id,
        template_key=agreement.template_key,
        template_version=agreement.template_version,
        effective_date=agreement.effective_date,
        document_sha256=agreement.document_sha256,
        processor=processor_party(),
        controller=_controller(agreement, profile),
        processing=_processing(agreement.variables),
        transfer_mechanisms=list(agreement.variables.get("transfers", {}).get("mechanisms") or []),
        subprocessors=_subprocessors(authorized),
        transfers=[_transfer(transfer) for transfer in registered],
        security_measures=measures,
    )


# --- Annex II: the security measures, read from the template version itself -----------------------------------

_SECTION = re.compile(r"<section\b[^>]*>(.*?)</section>", re.S | re.I)
_ANNEX_II_TITLE = re.compile(r"<h1\b[^>]*>\s*Annex\s+II(?![I\w])", re.I)
_PARAGRAPH = re.compile(r"<p\b[^>]*>(.*?)</p>", re.S | re.I)
_TBODY = re.compile(r"<tbody\b[^>]*>(.*?)</tbody>", re.S | re.I)
_ROW_HEADING = re.compile(r"<th\b[^>]*>(.*?)</th>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_NUMBERING = re.compile(r"^\d+[.)]\s*")
# Template versions are immutable, so what their Annex II says is cached by id (a handful of versions exist).
_MEASURES: dict[uuid.UUID, SecurityMeasures] = {}


def _text(fragment: str) -> str:
    return " ".join(unescape(_TAG.sub(" ", fragment)).split())


def annex_ii(source: str, label: str) -> SecurityMeasures:
    """The general description of Annex II in a template's source: its introduction and the heading of each area
    of measures (the rows of its table). A template without an Annex II gives an empty description."""
    for section in _SECTION.findall(source):
        if not _ANNEX_II_TITLE.search(section):
            continue
        intro = _PARAGRAPH.search(section)
        body = _TBODY.search(section)
        areas = [_NUMBERING.sub("", _text(h)) for h in _ROW_HEADING.findall(body.group(1))] if body else []
        return SecurityMeasures(
            source=f"Annex II of {label}", summary=_text(intro.group(1)) if intro else None, areas=areas
        )
    return SecurityMeasures(source=label, summary=None, areas=[])


async def _measures(db: Database, scope: Scope, template_id: uuid.UUID) -> SecurityMeasures:
    if (known := _MEASURES.get(template_id)) is not None:
        return known
    version = await templates.version_by_id(db, scope, template_id)
    measures = annex_ii(version.source, f"{version.key} v{version.version}")
    if len(_MEASURES) > 256:
        _MEASURES.clear()
    _MEASURES[template_id] = measures
    return measures


# --- Exports (audited) ---------------------------------------------------------------------------------------


async def _audit_export(
    db: Database, actor: Actor, principal: Principal, tenant: uuid.UUID | None, data: dict[str, Any]
) -> None:
    """One event per export: in the tenant's chain for one tenant's record (legal's reads of it too), in the
    platform chain for legal's all-tenants export. A tenant legal names must exist (404 otherwise)."""
    async with db.transaction(principal.scope) as session:
        if tenant is not None and principal.tenant_id is None:
            await tenants.get_tenant(db, principal.scope, tenant)
        await audit.record(session, actor, EXPORTED, "records_of_processing", tenant, tenant_id=tenant, data=data)


async def export_json(
    db: Database,
    actor: Actor,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> RecordPage:
    """`GET /records-of-processing?format=json`: a page of records, audited (each page is one export event)."""
    tenant = target_tenant(principal, tenant_id)
    decode_id_cursor(cursor)  # a bad cursor is 422 before anything is recorded
    await _audit_export(db, actor, principal, tenant, {"format": "json", "all_tenants": tenant is None,
                                                       "continued": bool(cursor)})  # fmt: skip
    return await records_page(db, principal, tenant_id=tenant, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class CsvExport:
    filename: str
    chunks: AsyncIterator[bytes]


async def export_csv(
    db: Database, actor: Actor, principal: Principal, *, tenant_id: uuid.UUID | None, batch: int = BATCH
) -> CsvExport:
    """`GET /records-of-processing?format=csv`: the header row, then one row per (tenant, processing), streamed in
    batches; the export is audited before the first byte leaves."""
    tenant = target_tenant(principal, tenant_id)
    await _audit_export(db, actor, principal, tenant, {"format": "csv", "all_tenants": tenant is None})
    day = utcnow().date().isoformat()
    filename = f"records-of-processing-{tenant or 'all-tenants'}-{day}.csv"
    return CsvExport(filename, csv_chunks(db, principal.scope, tenant=tenant, batch=batch))


async def csv_chunks(
    db: Database, scope: Scope, *, tenant: uuid.UUID | None, batch: int = BATCH
) -> AsyncIterator[bytes]:
    """The CSV, one chunk per batch of records: never more than one batch in memory. Each batch is its own read
    transaction, so no connection is held while the client reads."""
    yield records_csv.lines([records_csv.HEADER])
    after: uuid.UUID | None = None
    while True:
        records, more = await _batch(db, scope, tenant=tenant, after=after, limit=batch)
        if records:
            yield records_csv.lines([records_csv.row(record) for record in records])
        if not more or not records:
            return
        after = records[-1].tenant_id
