"""The deletion certificate's PDF: the processor's statement that it deleted a former Subscriber's data (Art. 28(3)(g)
GDPR), laid out by the same pipeline as the DPAs (sandboxed Jinja2, WeasyPrint in the document pool, only the
fonts packaged with the standard template) and then sealed by the caller like an executed DPA."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from dpa_service.core.registry import country_name, processor
from dpa_service.documents.rendering import compiled_template, layout
from dpa_service.template_versions import services as templates

TEMPLATE = "deletion_certificate.html.j2"
STYLESHEET = "deletion_certificate.css"
FONTS_FROM = "standard-dpa"  # the template folder whose packaged fonts the certificate uses


@cache
def _source(name: str) -> str:
    return (resources.files("dpa_service.obligations") / name).read_text(encoding="utf-8")


def certificate_context(
    *,
    certificate_id: uuid.UUID,
    tenant: dict[str, Any],
    termination: dict[str, Any],
    agreements: list[dict[str, Any]],
    deleted_on: date,
    systems: list[str],
    statement: str,
    issued_by: dict[str, str],
    issued_at: str,
) -> dict[str, Any]:
    """Everything the certificate shows, as plain data (it crosses to a pool worker)."""
    party = processor()
    return {
        "reference": str(certificate_id),
        "processor": {
            "legal_name": party["legal_name"],
            "address": party.get("address", ""),
            "country": country_name(party.get("country", "")),
            "registration_number": party.get("registration_number", ""),
            "contact_email": party.get("contact_email", ""),
        },
        "subscriber": {
            "legal_name": tenant["legal_name"],
            "name": tenant["name"],
            "address": tenant.get("address") or "",
            "country": country_name(tenant.get("country") or ""),
            "registration_number": tenant.get("registration_number") or "",
        },
        "termination": {
            "ends_on": termination["ends_on"],
            "deletion_due_on": termination["deletion_due_on"],
            "recorded_at": termination["recorded_at"],
        },
        "agreements": agreements,
        "deleted_on": deleted_on.isoformat(),
        "systems": systems,
        "statement": statement,
        "issued_by": issued_by,
        "issued_at": issued_at,
    }


def build_certificate(context: dict[str, Any]) -> bytes:
    """HTML to PDF (CPU work: runs in the document pool). User text is only ever data in the context."""
    source = _source(TEMPLATE)
    digest = hashlib.sha256(source.encode()).hexdigest()
    html = compiled_template(f"deletion-certificate:{digest}", TEMPLATE, source).render(context)
    return layout(html, _source(STYLESHEET), templates.assets_dir(FONTS_FROM)).write_pdf()
