"""The signer's pages: `/sign/{token}` (review and sign), `/sign/{token}/document` (the exact PDF).

No API key and no CSRF token: the token in the URL is the secret. Forms get HTML pages in the web layout (errors
included, with the right status code), under the web shell's strict Content-Security-Policy (styles only from
/static/app.css); JSON requests get JSON and problem+json. Pages are never cached, never framed, and send no
referrer (the token is in the URL).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ClientException, SerializationException
from litestar.params import FromPath
from litestar.response import Template

from dpa_service.agreements import execution, signing
from dpa_service.agreements.links import consent_sha256, consent_text
from dpa_service.agreements.models import AgreementPublic
from dpa_service.core.exceptions import DPAError, FieldError, InvalidInput
from dpa_service.core.registry import processor
from dpa_service.core.settings import Settings
from dpa_service.http.deps import DbDep, RendererDep, SealDep, SettingsDep, public_base_url
from dpa_service.web.security import CONTENT_SECURITY_POLICY

logger = logging.getLogger("dpa_service.signing")

# Stricter than the web shell's defaults, which fill in the rest (the CSP among them: web/security.py).
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
PAGE = "agreements/sign.html.j2"


def page(status: int, heading: str, **context: Any) -> Template:
    """The signing page in the web layout. Not `web.views.render`: the page belongs to whoever holds the link,
    not to a signed-in session, so it shows no navigation and takes no flashed messages meant for the app."""
    defaults: dict[str, Any] = {
        "viewer": None,
        "nav": [],
        "flashed": [],
        "message": None,
        "problem": False,
        "errors": [],
        "summary": None,
        "form": False,
        "typed_name": "",
    }
    return Template(
        template_name=PAGE,
        context={**defaults, **context, "heading": heading},
        status_code=status,
        headers=SECURITY_HEADERS,
    )


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("content-type", "").startswith("application/json") or (
        "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")
    )


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in {"true", "on", "yes", "1"})


class SigningPages(Controller):
    path = "/sign"
    tags = ["Signing"]
    include_in_schema = True

    @get("/{token:str}", operation_id="signingPage", exclude_from_auth=True, media_type="text/html", security=[])
    async def view(
        self, token: FromPath[str], request: Request[Any, Any, Any], db: DbDep, settings: SettingsDep
    ) -> Template:
        """The signer's page (no key: the token is the secret): the agreement, the SHA-256 of the exact PDF, the
        consent text and the form; a used or expired link is 410, an unknown one 404, and an agreement whose signing
        is refused (its tenant is in exit) 409 with the reason and no form."""
        try:
            signing_request, agreement = await signing.signing_view(db, token)
        except DPAError as exc:
            return page(exc.status_code, "This signing link cannot be used", message=exc.detail, problem=True)
        summary = _summary(request, settings, token, signing_request, agreement)
        try:
            await signing.refuse_unsignable(db, agreement)
        except DPAError as exc:
            return page(exc.status_code, "This agreement cannot be signed", message=exc.detail, problem=True, **summary)
        await signing.mark_opened(db, signing_request)
        return page(200, "Review and sign", form=True, **summary)

    @get(
        "/{token:str}/document",
        operation_id="signingDocument",
        exclude_from_auth=True,
        media_type="application/pdf",
        security=[],
    )
    async def document(self, token: FromPath[str], db: DbDep, renderer: RendererDep) -> Response[bytes]:
        """The exact PDF the signer is asked to sign (its SHA-256 is on the page)."""
        content = await signing.signing_document(db, renderer, token)
        return Response(
            content,
            media_type="application/pdf",
            headers={
                **SECURITY_HEADERS,
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "Content-Disposition": 'inline; filename="dpa-to-sign.pdf"',
            },
        )

    @post("/{token:str}", operation_id="signAgreement", exclude_from_auth=True, status_code=200, security=[])
    async def sign(
        self,
        token: FromPath[str],
        request: Request[Any, Any, Any],
        db: DbDep,
        renderer: RendererDep,
        seal: SealDep,
        settings: SettingsDep,
    ) -> Response[Any]:
        """Sign (form or JSON): `{typed_name, consent: true, authority_confirmed: true}` -> agreement `signed`;
        missing consent or authority is 422, and nothing changes on any refusal."""
        as_json = _wants_json(request)
        try:
            agreement = await _sign(request, db, token, as_json)
        except DPAError as exc:
            if as_json:
                raise
            return await _form_error(request, db, settings, token, exc)
        base = public_base_url(request, settings)
        agreement = await _countersigned_if_automatic(db, renderer, seal, settings, agreement, base)
        if as_json:
            return Response(agreement.model_dump(mode="json"), status_code=200)
        return page(200, "Signed", message=SIGNED_MESSAGE)


async def _countersigned_if_automatic(
    db: Any, renderer: Any, seal: Any, settings: Any, agreement: AgreementPublic, base_url: str
) -> AgreementPublic:
    """The deployment's standing authority countersigns at once, when one is configured."""
    return await execution.auto_countersign(
        db,
        renderer,
        seal,
        settings.auto_countersign_email,
        agreement,
        base_url=base_url,
        authority=settings.auto_countersign_authority,
    )


SIGNED_MESSAGE = (
    "Thank you: your signature is recorded. Once the processor countersigns, you will be e-mailed a link to "
    "download the executed agreement."
)


async def _sign(request: Request[Any, Any, Any], db: Any, token: str, as_json: bool) -> AgreementPublic:
    # The link first: an unknown, used or expired link says so whatever the form holds.
    await signing.signing_view(db, token)
    form = await _signing_form(request, as_json)
    client = request.client.host if request.client else None
    return await signing.sign_with_token(db, token, form, ip=client, user_agent=request.headers.get("user-agent"))


async def _signing_form(request: Request[Any, Any, Any], as_json: bool) -> signing.SigningForm:
    try:
        raw: Any = (await request.json() or {}) if as_json else dict(await request.form())
    except SerializationException as exc:
        raise ClientException("The request body is not valid JSON.") from exc
    if not isinstance(raw, dict):
        raise InvalidInput.field("body", "must be a JSON object")
    # Typed fields typed: a number, an object or (in a multipart form) a file is refused, never turned into text.
    wrong = [FieldError(name, "must be a string") for name in TEXT_FIELDS if not isinstance(raw.get(name, ""), str)]
    if wrong:
        raise InvalidInput("The signature is not complete.", wrong)
    return signing.SigningForm(
        typed_name=raw.get("typed_name") or "",
        consent=_truthy(raw.get("consent")),
        authority_confirmed=_truthy(raw.get("authority_confirmed")),
        document_sha256=raw.get("document_sha256") or None,
    )


TEXT_FIELDS = ("typed_name", "document_sha256")


async def _form_error(
    request: Request[Any, Any, Any], db: Any, settings: Settings, token: str, exc: DPAError
) -> Template:
    if isinstance(exc, InvalidInput):
        try:
            signing_request, agreement = await signing.signing_view(db, token)
        except DPAError as gone:
            return page(gone.status_code, "This signing link cannot be used", message=gone.detail, problem=True)
        typed = (dict(await request.form())).get("typed_name")
        typed = typed if isinstance(typed, str) else ""
        return page(
            422,
            "Review and sign",
            form=True,
            errors=exc.errors,
            typed_name=typed,
            **_summary(request, settings, token, signing_request, agreement),
        )
    return page(exc.status_code, "This signing link cannot be used", message=exc.detail, problem=True)


def _summary(
    request: Request[Any, Any, Any], settings: Settings, token: str, signing_request: Any, agreement: Any
) -> dict[str, Any]:
    base = public_base_url(request, settings)
    return {
        "summary": {
            "title": "Data Processing Agreement",
            "template": f"{agreement.template_key} v{agreement.template_version}",
            "reference": str(agreement.id),
            "controller": agreement.variables.get("controller", {}).get("legal_name", ""),
            "processor": processor()["legal_name"],
            "signer_name": signing_request.signer_name,
            "signer_title": signing_request.signer_title,
            "signer_email": signing_request.signer_email,
            "expires_at": signing_request.expires_at,
            "document_url": f"{base}/sign/{token}/document",
            "document_sha256": signing_request.document_sha256,
            "privacy_contact": processor().get("contact_email", ""),
        },
        "consent_paragraphs": consent_paragraphs(),
        "consent_sha256": consent_sha256(),
    }


def consent_paragraphs() -> list[str]:
    """The consent text as the reader's screen should flow it: the file's hard line breaks joined, its paragraphs
    and numbered points kept (the signed hash is of the file's exact text, shown beside it)."""
    joined = re.sub(r"\n(?!\n|\d+\. )", " ", consent_text().strip())
    return [part.strip() for part in re.split(r"\n+", joined) if part.strip()]
