"""The CSV form of the records of processing: a header row, one row per (tenant, processing), list fields joined by
"; ", and every cell a spreadsheet would run as a formula neutralized (OWASP CSV Injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dpa_service.obligations.records_models import Contact, ProcessingRecord, RecordSubprocessor, RecordTransfer

# A cell a spreadsheet would read as a formula starts with one of these (OWASP CSV Injection; ASVS 1.2.10 adds
# tab and NUL): such a cell is written with a leading apostrophe, which spreadsheets take as "this is text".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
LIST_SEPARATOR = "; "


def neutralized(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def lines(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as CSV bytes (RFC 4180 quoting, CRLF line ends), each cell neutralized."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for cells in rows:
        writer.writerow([neutralized(cell) for cell in cells])
    return buffer.getvalue().encode("utf-8")


def _joined(values: Sequence[str]) -> str:
    return LIST_SEPARATOR.join(values)


def contact_text(contact: Contact | None) -> str:
    if contact is None:
        return ""
    text = " ".join(part for part in (contact.name, f"<{contact.email}>" if contact.email else None) if part)
    return f"{text}, {contact.address}" if contact.address else text


def _subprocessor_text(item: RecordSubprocessor) -> str:
    return f"{item.name} ({', '.join(item.locations)}: {item.transfer_mechanism or 'none required (EEA)'})"


def _transfer_text(transfer: RecordTransfer) -> str:
    text = f"{transfer.importer} ({transfer.destination_country}): {transfer.mechanism_name}"
    if transfer.importer_certified:
        text += ", importer certified"
    if transfer.tia_reference:
        text += f", TIA {transfer.tia_reference}"
    if transfer.supplementary_measures:
        text += f", supplementary measures: {transfer.supplementary_measures}"
    return text


Column = tuple[str, Callable[[ProcessingRecord], Any]]
COLUMNS: tuple[Column, ...] = (
    ("tenant_id", lambda r: r.tenant_id),
    ("agreement_id", lambda r: r.agreement_id),
    ("template", lambda r: f"{r.template_key} v{r.template_version}"),
    ("effective_date", lambda r: r.effective_date),
    ("document_sha256", lambda r: r.document_sha256),
    ("controller_name", lambda r: r.controller.name),
    ("controller_address", lambda r: r.controller.address),
    ("controller_country", lambda r: r.controller.country),
    ("controller_registration_number", lambda r: r.controller.registration_number),
    ("controller_contact_name", lambda r: r.controller.contact_name),
    ("controller_contact_email", lambda r: r.controller.contact_email),
    ("controller_contact_phone", lambda r: r.controller.contact_phone),
    ("controller_dpo", lambda r: contact_text(r.controller.dpo)),
    ("controller_representative", lambda r: contact_text(r.controller.representative)),
    ("processor_name", lambda r: r.processor.name),
    ("processor_address", lambda r: r.processor.address),
    ("processor_country", lambda r: r.processor.country),
    ("processor_contact_email", lambda r: r.processor.contact_email),
    ("processor_dpo", lambda r: contact_text(r.processor.dpo)),
    ("processor_representative", lambda r: contact_text(r.processor.representative)),
    ("subject_matter", lambda r: r.processing.subject_matter),
    ("nature_and_purpose", lambda r: r.processing.nature_and_purpose),
    ("duration", lambda r: r.processing.duration),
    ("retention", lambda r: r.processing.retention),
    ("data_subject_categories", lambda r: _joined(r.processing.data_subject_categories)),
    ("personal_data_categories", lambda r: _joined(r.processing.personal_data_categories)),
    ("special_categories", lambda r: _joined(r.processing.special_categories)),
    ("transfer_mechanisms", lambda r: _joined(r.transfer_mechanisms)),
    ("subprocessor_list_version", lambda r: r.subprocessors.version),
    ("subprocessors", lambda r: _joined([_subprocessor_text(item) for item in r.subprocessors.items])),
    ("transfers", lambda r: _joined([_transfer_text(transfer) for transfer in r.transfers])),
    ("security_measures", lambda r: _joined(r.security_measures.areas)),
)


HEADER = [name for name, _ in COLUMNS]


def row(record: ProcessingRecord) -> list[Any]:
    return [value(record) for _, value in COLUMNS]
