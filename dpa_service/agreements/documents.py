"""The PDFs of an agreement: the draft render the signer sees, and the sealed executed document.

The executed PDF is the DPA rendered as executed, a signature page and a certificate of completion (the
evidence trail), in one file sealed by the service. Draft renders are deterministic (their date is the day the
agreement's text last changed, `content_changed_at`), so the PDF shown to a signer can be rebuilt byte for byte
and checked by hash.
"""

from __future__ import annotations

import difflib
import hashlib
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from dpa_service.agreements.links import consent_text
from dpa_service.agreements.models import Agreement, EmailVerification, Signature, SignatureMethod, SignatureRequest
from dpa_service.core.clock import as_utc, rfc3339
from dpa_service.core.registry import processor
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import RenderedPdf, RenderJob, compiled_template, layout, render_html
from dpa_service.documents.seal import Attachment, Seal
from dpa_service.documents.text import visible_text
from dpa_service.template_versions.services import TemplateVersion, build_context, render_job, subprocessor_annex

CERTIFICATE = "certificate.html.j2"


@cache
def _certificate_source() -> str:
    return (resources.files("dpa_service.agreements") / CERTIFICATE).read_text(encoding="utf-8")


def draft_context(
    version: TemplateVersion, agreement: Agreement, subprocessors: dict[str, Any], status: str = "draft"
) -> dict[str, Any]:
    """`subprocessors` is the list version Annex III shows (`subprocessors.services.listing_for`)."""
    return build_context(
        version,
        agreement.variables,
        reference=str(agreement.id),
        status=status,
        generated_on=as_utc(agreement.content_changed_at).date(),
        custom_clauses=agreement.custom_clauses,
        subprocessors=subprocessors,
    )


async def draft_pdf(
    renderer: Renderer, version: TemplateVersion, agreement: Agreement, subprocessors: dict[str, Any]
) -> RenderedPdf:
    return await renderer.render(render_job(version, draft_context(version, agreement, subprocessors)))


_VERIFIED_BY = {
    EmailVerification.CONFIRMATION_LINK: "by the signer opening the confirmation link e-mailed to it",
    EmailVerification.SIGN_IN_LINK: "by the signer signing in with a sign-in link e-mailed to it",
    EmailVerification.SIGNING_LINK: "by the signer using the signing link e-mailed to it (only that inbox had it)",
    EmailVerification.DOCUSIGN: "by DocuSign, which delivered the envelope to it (see DocuSign's certificate)",
}


def verification_text(method: str | None, at: datetime | None) -> str:
    """How the certificate says a signer's address was verified."""
    if method is None or at is None:
        return "none recorded"
    return f"{_VERIFIED_BY[EmailVerification(method)]}, at {rfc3339(at)}"


def signed_draft_name(sha256: str) -> str:
    """The embedded file holding the exact draft the Subscriber signed, named by its fingerprint."""
    return f"signed-draft-{sha256[:16]}.pdf"


def _authentication(s: Signature, request: SignatureRequest | None) -> str:
    """How the certificate says the signer was authenticated."""
    if s.method == SignatureMethod.AUTOMATIC:
        return f"Applied automatically by the service under the authority of {s.authority}; nobody signed in or typed."
    if s.role == "processor":
        return f"Signed in to the service as {s.email} (a member of the processor's legal team) and countersigned."
    if request is None:
        return "Not recorded."
    if request.signer_email_verified_at is not None:
        how = "handed back, for embedded signing, to the signed-in user with that address (verified before)"
    else:
        how = "sent to that address only"
    return (
        f"Single-use signing link (request {request.id}), {how}: {request.signer_email}, valid until "
        f"{rfc3339(request.expires_at)}; using it burned the link."
    )


def _signature_rows(
    signatures: list[Signature], controller: str, request: SignatureRequest | None = None
) -> list[dict[str, Any]]:
    rows = []
    for s in signatures:
        automatic = s.method == SignatureMethod.AUTOMATIC
        rows.append(
            {
                "role_label": "Subscriber (controller)" if s.role == "subscriber" else "Processor",
                "party": controller if s.role == "subscriber" else processor()["legal_name"],
                "automatic": automatic,
                "docusign": s.method == SignatureMethod.DOCUSIGN,
                "action": s.method == SignatureMethod.ACTION,
                "authority": s.authority,
                "authentication": _authentication(s, request if s.role == "subscriber" else None),
                "typed_name": None if automatic or s.method == SignatureMethod.ACTION else s.typed_name,
                "name": s.name,
                "title": s.title,
                "email": s.email,
                "signed_at": rfc3339(s.signed_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
                "consent": s.consent,
                "consent_text_sha256": s.consent_text_sha256,
                "authority_confirmed": s.authority_confirmed,
                "document_sha256": s.document_sha256,
                "email_verification": verification_text(s.email_verification, s.email_verified_at),
            }
        )
    return rows


async def executed_pdf(
    renderer: Renderer,
    seal: Seal,
    version: TemplateVersion,
    agreement: Agreement,
    signatures: list[Signature],
    *,
    effective_date: date,
    executed_at: datetime,
    signed_document_sha256: str,
    subprocessors: dict[str, Any],
    chain_head: tuple[int, str],
    signed_draft: bytes,
    request: SignatureRequest | None = None,
    requested_by: str | None = None,
    verify_url: str = "/verify",
) -> bytes:
    """`subprocessors` is the list version the agreement pinned when it went out for signature; `chain_head` is
    the tenant's audit chain head `(seq, hash)` just before the execution event; `signed_draft` the exact PDF the
    Subscriber signed (SHA-256 `signed_document_sha256`), embedded in the sealed file; `request` the signature
    request it was signed through, `requested_by` who asked for it."""
    if sha256_of(signed_draft) != signed_document_sha256:
        raise ValueError("the draft to embed is not the one the Subscriber signed")
    context = build_context(
        version,
        agreement.variables,
        reference=str(agreement.id),
        status="executed",
        generated_on=effective_date,
        custom_clauses=agreement.custom_clauses,
        subprocessors=subprocessors,
    )
    job = render_job(version, context)
    controller = agreement.variables.get("controller", {}).get("legal_name", "")
    annex = subprocessor_annex(subprocessors)
    certificate_context = {
        "agreement": {
            "reference": str(agreement.id),
            "template_key": version.key,
            "template_version": version.version,
            "template_title": version.title,
            "template_sha256": version.sha256,
            "controller": controller,
            "processor": processor()["legal_name"],
            "effective_date": effective_date.isoformat(),
            "executed_at": rfc3339(executed_at),
            "document_sha256": signed_document_sha256,
            "subprocessor_list": f"version {subprocessors['version']}",
            "audit_head_seq": chain_head[0],
            "audit_head_hash": chain_head[1],
            "request_id": str(request.id) if request else "not recorded",
        },
        "signatures": _signature_rows(signatures, controller, request),
        "consent_text": consent_text(),
        "annex_items": len(annex["items"]),
        "timeline": _timeline(signatures, request, requested_by, executed_at, seal.config.level),
        "seal": {
            "level": seal.config.level,
            "tsa_url": seal.config.tsa_url,
            "verify_url": verify_url,
            "signed_draft_name": signed_draft_name(signed_document_sha256),
        },
    }
    pdf = await renderer.run(build_executed, job, certificate_context)
    draft = Attachment(
        name=signed_draft_name(signed_document_sha256),
        content=signed_draft,
        description=f"The exact draft the Subscriber signed, SHA-256 {signed_document_sha256}",
    )
    return await seal.seal(
        pdf, reason=f"Executed DPA {agreement.id}", location=processor().get("country"), attachments=(draft,)
    )


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _event(event: str, at: datetime | None, detail: str) -> dict[str, str]:
    return {"event": event, "at": rfc3339(at) if at is not None else "not recorded", "detail": detail}


def _timeline(
    signatures: list[Signature],
    request: SignatureRequest | None,
    requested_by: str | None,
    executed_at: datetime,
    level: str,
) -> list[dict[str, str]]:
    """Requested (by whom), sent, opened, signed, countersigned, sealed: what the certificate lists, in order."""
    rows: list[dict[str, str]] = []
    if request is not None:
        who = requested_by or "a user of the Subscriber (not recorded)"
        rows.append(_event("Signature requested", request.created_at, f"by {who}, request {request.id}"))
        how = "handed back for embedded signing to" if request.signer_email_verified_at else "e-mailed to"
        rows.append(_event("Signing link sent", request.created_at, f"{how} {request.signer_email}"))
        rows.append(_event("Signing page opened", request.opened_at, "first view of the signing page"))
    for s in signatures:
        if s.role == "subscriber":
            detail = f"{s.name} ({s.email}): name typed, consent given, authority confirmed"
            rows.append(_event("Signed by the Subscriber", s.signed_at, detail))
        elif s.method == SignatureMethod.AUTOMATIC:
            detail = f"applied automatically under the authority of {s.authority}"
            rows.append(_event("Countersigned for the Processor", s.signed_at, detail))
        else:
            rows.append(_event("Countersigned for the Processor", s.signed_at, f"by {s.name} ({s.email})"))
    rows.append(_event("Sealed", executed_at, f"electronic seal of the service, {level}"))
    return rows


def build_executed(job: RenderJob, certificate_context: dict[str, Any]) -> bytes:
    """The DPA as executed followed by its certificate of completion, as one PDF (CPU work: runs in the pool)."""
    certificate = compiled_template("certificate:" + CERTIFICATE, CERTIFICATE, _certificate_source())
    dpa = layout(render_html(job), job.stylesheet, job.assets)
    appended = layout(certificate.render({**certificate_context, "dpa_pages": len(dpa.pages)}), "", None)
    return dpa.copy([*dpa.pages, *appended.pages]).write_pdf()


async def custom_clause_diff(
    renderer: Renderer, version: TemplateVersion, agreement: Agreement, subprocessors: dict[str, Any]
) -> list[str]:
    """A unified diff of the agreement's text against the same agreement without its custom clauses."""
    context = draft_context(version, agreement, subprocessors)
    return await renderer.run(
        diff_text, render_job(version, context), render_job(version, {**context, "custom_clauses": []})
    )


def diff_text(customized: RenderJob, standard: RenderJob) -> list[str]:
    """Render both texts and compare what a reader sees (CPU work: runs in the pool)."""
    return list(
        difflib.unified_diff(
            visible_text(render_html(standard)),
            visible_text(render_html(customized)),
            "standard text",
            "with custom clauses",
            lineterm="",
            n=2,
        )
    )
