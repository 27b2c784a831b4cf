"""The processor's record of processing (Art. 30(2) GDPR), as the API and the CSV export give it: one record per
controller tenant, built from its executed DPA (see `records`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel


class Contact(BaseModel):
    """A data protection officer or a representative (Art. 27 GDPR): whoever the party named."""

    name: str | None = None
    email: str | None = None
    address: str | None = None


class ProcessorParty(BaseModel):
    """The processor itself (registry/processor.yaml), as Annex I.A of every DPA names it."""

    name: str
    trading_name: str | None = None
    address: str
    country: str
    registration_number: str | None = None
    contact_email: str
    dpo: Contact | None = None
    representative: Contact | None = None


class ControllerParty(BaseModel):
    """The Subscriber as controller: Annex I.A of its executed DPA, with the contacts, DPO and EU representative of
    its profile."""

    tenant_id: uuid.UUID
    name: str
    address: str | None = None
    country: str
    registration_number: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    dpo: Contact | None = None
    representative: Contact | None = None


class ProcessingDescription(BaseModel):
    """The categories of processing carried out for the controller: Annex I.B of its executed DPA."""

    subject_matter: str
    nature_and_purpose: str
    duration: str
    retention: str
    data_subject_categories: list[str]
    personal_data_categories: list[str]
    special_categories: list[str]


class RecordSubprocessor(BaseModel):
    name: str
    entity: str
    purpose: str
    locations: list[str]
    data_categories: list[str]
    transfer_mechanism: str | None = None  # None: located in the EU/EEA only, no mechanism required


class RecordSubprocessors(BaseModel):
    """The sub-processors the controller authorized: its DPA's Annex III, advanced by the changes it accepted."""

    version: int | None
    effective_at: datetime | None
    items: list[RecordSubprocessor]


class RecordTransfer(BaseModel):
    """A transfer in the tenant's register, with the mechanism it relies on and the documented safeguards."""

    id: uuid.UUID
    importer: str
    importer_kind: str
    destination_country: str
    data_categories: list[str]
    mechanism: str
    mechanism_name: str
    legal_reference: str
    start_date: date
    end_date: date | None
    importer_certified: bool | None
    tia_reference: str | None
    supplementary_measures: str | None
    safeguards: str


class SecurityMeasures(BaseModel):
    """A general description of the security measures (Art. 32(1) GDPR): the areas of the template's Annex II."""

    source: str
    summary: str | None
    areas: list[str]


class ProcessingRecord(BaseModel):
    """One controller tenant's entry in the processor's record of processing activities."""

    tenant_id: uuid.UUID
    agreement_id: uuid.UUID
    template_key: str
    template_version: int
    effective_date: date | None
    document_sha256: str | None
    processor: ProcessorParty
    controller: ControllerParty
    processing: ProcessingDescription
    transfer_mechanisms: list[str]
    subprocessors: RecordSubprocessors
    transfers: list[RecordTransfer]
    security_measures: SecurityMeasures


class RecordPage(BaseModel):
    """The catalogue-like envelope: `{items, next_cursor}`."""

    items: list[ProcessingRecord]
    next_cursor: str | None
