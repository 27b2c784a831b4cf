"""What the Subscriber's agreement pages show, gathered from the same service functions the JSON API calls:
the dashboard's overview, the request form's fields, an agreement's page, and sending it for signature."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from litestar import Request
from pydantic import ValidationError

from dpa_service.agreements import forms, providers, services, signing
from dpa_service.agreements.lifecycle import BEFORE_EXECUTION, TRANSITIONS
from dpa_service.agreements.models import (
    AgreementCreate,
    AgreementPatch,
    AgreementPublic,
    AgreementStatus,
    SignatureRequestCreate,
)
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import FieldError, InvalidInput
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.mailer import Mailer
from dpa_service.core.settings import Settings
from dpa_service.documents.renderer import Renderer
from dpa_service.http.deps import public_base_url
from dpa_service.obligations import services as obligations
from dpa_service.subprocessors import services as subprocessors
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants
from dpa_service.transfers import services as transfers
from dpa_service.web.panels import AGREEMENT, DASHBOARD, panels
from dpa_service.web.views import one

TEMPLATE_KEY = "standard-dpa"
EDITABLE = frozenset(TRANSITIONS["edit"])
IN_PROGRESS = frozenset({*BEFORE_EXECUTION, AgreementStatus.SIGNED})
VOIDABLE = frozenset(BEFORE_EXECUTION)
CURRENT = frozenset({AgreementStatus.EXECUTED})


def manages(principal: Principal) -> bool:
    """Owners and admins send for signature and void; members read."""
    return principal.role in (Role.OWNER, Role.ADMIN)


# --- The request form ----------------------------------------------------------------------------------------


def _mechanism_options(catalogue: Any, today: date) -> list[tuple[str, str]]:
    """In-force mechanisms first, by name; those no longer valid (or closed to new contracts) last, saying since
    when. Article 49 is never offered: it is never a DPA mechanism."""
    valid, ended = [], []
    for m in sorted(catalogue.items, key=lambda m: m.name):
        if not m.dpa_selectable:
            continue
        closed = registry.mechanisms()[m.code].new_transfers_until if m.code in registry.mechanisms() else None
        stops = [d for d in (m.valid_until, m.invalidated_from, closed) if d is not None]
        if stops and min(stops) <= today:
            ended.append((m.code, f"{m.name} (not valid since {min(stops).isoformat()})"))
        else:
            valid.append((m.code, m.name))
    return valid + ended


async def form_fields(db: Database, principal: Principal, schema: dict[str, Any]) -> tuple[forms.FormField, ...]:
    catalogue = await transfers.catalogue(db, principal)
    return forms.build_fields(schema, _mechanism_options(catalogue, utcnow().date()))


async def new_request_schema(db: Database, principal: Principal) -> dict[str, Any]:
    version = await templates.current_version(db, principal.scope, TEMPLATE_KEY)
    if version is None:
        raise InvalidInput.field("template_key", "has no approved template version yet: ask the processor")
    return version.variables_schema


async def agreement_schema(db: Database, principal: Principal, agreement: AgreementPublic) -> dict[str, Any]:
    return (await templates.version_by_id(db, principal.scope, agreement.template_id)).variables_schema


@dataclass
class FormPage:
    """The request/edit form's context: fields, the values shown, the errors beside them, the clause rows."""

    fields: tuple[forms.FormField, ...]
    form: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    clauses: list[dict[str, str]] = field(default_factory=list)

    def context(self) -> dict[str, Any]:
        names = {f.name for f in forms.leaves(self.fields)}
        return {"fields": self.fields, "form": self.form, "errors": forms.placed(self.errors, names),
                "clauses": self.clauses}  # fmt: skip


async def blank_form(db: Database, principal: Principal) -> FormPage:
    """A new request, pre-filled from the tenant profile and the signed-in user."""
    fields = await form_fields(db, principal, await new_request_schema(db, principal))
    profile = await tenants.own_tenant(db, principal)
    return FormPage(fields, forms.prefill(profile, principal.name, principal.email), clauses=forms.clause_rows({}))


async def stored_form(db: Database, principal: Principal, agreement: AgreementPublic) -> FormPage:
    fields = await form_fields(db, principal, await agreement_schema(db, principal, agreement))
    return FormPage(fields, forms.values_from(fields, agreement.variables),
                    clauses=forms.clause_rows({}, agreement.custom_clauses))  # fmt: skip


def refused_form(fields: tuple[forms.FormField, ...], posted: dict[str, Any], exc: InvalidInput) -> FormPage:
    """The form shown again after a refusal: the input exactly as typed, each error beside its field."""
    errors: dict[str, str] = {}
    for error in exc.errors or [FieldError("variables", exc.detail)]:
        errors.setdefault(error.field, error.message)
    return FormPage(fields, forms.kept(fields, posted), errors, forms.clause_rows(posted))


def request_body(fields: tuple[forms.FormField, ...], posted: dict[str, Any], *, patch: bool = False) -> Any:
    """The posted form as the API's body (`AgreementCreate`, or for an edit `AgreementPatch`): an incomplete
    clause is refused here, before the service checks the variables."""
    body = {"variables": forms.variables_from(fields, posted), "custom_clauses": forms.clauses_from(posted)}
    try:
        if patch:
            return AgreementPatch.model_validate(body)
        return AgreementCreate.model_validate({"template_key": TEMPLATE_KEY, **body})
    except ValidationError as exc:
        raise forms.invalid_from(exc) from None


# --- An agreement's page -------------------------------------------------------------------------------------


def readable(fields: tuple[forms.FormField, ...], variables: dict[str, Any]) -> list[dict[str, Any]]:
    """The variables as sections of (label, text or list of texts), in the form's order, names instead of codes."""
    values = forms.values_from(fields, variables)
    sections = []
    for top in fields:
        rows = []
        for f in forms.leaves([top]):
            value = values.get(f.name)
            if value is None:
                continue
            if f.kind in ("select", "checkboxes"):
                names = dict(f.options)
                shown: Any = [names.get(v, v) for v in value] if isinstance(value, list) else names.get(value, value)
            else:
                shown = value.splitlines() if f.kind == "lines" else value
            rows.append({"label": f.label, "value": shown})
        sections.append({"label": top.label, "rows": rows})
    return sections


async def agreement_page(
    db: Database, principal: Principal, agreement_id: uuid.UUID, *, docusign_offered: bool = False
) -> dict[str, Any]:
    agreement = await services.get_agreement(db, principal, agreement_id)
    evidence = await services.evidence(db, principal, agreement_id)
    fields = await form_fields(db, principal, await agreement_schema(db, principal, agreement))
    signatory = agreement.variables.get("signatory") or {}
    return {
        "agreement": agreement,
        "sections": readable(fields, agreement.variables),
        "signer": {f"signer.{k}": signatory.get(k, "") for k in ("name", "email", "title")},
        "editable": agreement.status in EDITABLE,
        "voidable": agreement.status in VOIDABLE,
        "manager": manages(principal),
        "processor": registry.processor()["legal_name"],
        # What other domains add to the page (a re-papering campaign's reason, due date and decline form).
        "panels": await panels.gather(AGREEMENT, db, principal, agreement.id),
        "docusign_offered": docusign_offered,
        "envelopes": evidence.docusign,
    }


# --- Sending for signature -----------------------------------------------------------------------------------


def signature_request(posted: dict[str, Any]) -> SignatureRequestCreate:
    signer = {key: one(posted, f"signer.{key}").strip() for key in ("name", "email", "title")}
    provider = one(posted, "provider").strip() or "builtin"
    try:
        return SignatureRequestCreate.model_validate({"provider": provider, "signer": signer})
    except ValidationError as exc:
        raise forms.invalid_from(exc) from None


async def send_for_signature(
    request: Request[Any, Any, Any],
    db: Database,
    renderer: Renderer,
    mailer: Mailer,
    settings: Settings,
    actor: Actor,
    agreement_id: uuid.UUID,
    data: SignatureRequestCreate,
) -> str | None:
    """What `POST /api/v1/agreements/{id}/signature-requests` does: the link e-mailed to the signer; the signing
    URL comes back only when the signer is the signed-in user and their address is verified."""
    principal: Principal = request.user
    account = request.app.state.get("docusign")
    provider = providers.provider_for(data.provider, account=account, mailer=mailer,
                                      base_url=public_base_url(request, settings),
                                      valid_for=timedelta(days=settings.signing_link_days))  # fmt: skip
    prepared = await signing.prepare_signature(db, renderer, principal, agreement_id, data, providers.offered(account))
    created = await provider.open(db, actor, principal, prepared, data)
    await provider.after_commit()
    return created.signing_url


# --- The dashboard -------------------------------------------------------------------------------------------


def _action(agreement: Any, manager: bool) -> dict[str, Any] | None:
    """What the Subscriber should do next about an agreement in progress (None: nothing of theirs to do)."""
    status = agreement.status
    if status == AgreementStatus.DRAFT:
        return {"text": "Your draft is not submitted yet: check it, then submit it.", "link": "Review and submit"}
    if status == AgreementStatus.CHANGES_REQUESTED:
        return {"text": "The processor's legal team asked for changes.", "comment": agreement.review_comment,
                "link": "Make the changes"}  # fmt: skip
    if status == AgreementStatus.READY_FOR_SIGNATURE:
        text = "Ready for signature: send it to your signatory." if manager else (
            "Ready for signature: an owner or admin of your organisation sends it for signature.")  # fmt: skip
        return {"text": text, "link": "Send for signature" if manager else "View the agreement"}
    if status == AgreementStatus.OUT_FOR_SIGNATURE:
        return {"text": "Out for signature: the signer was e-mailed a link to sign.", "link": "View the agreement"}
    return None


async def _all_agreements(db: Database, principal: Principal) -> list[Any]:
    found: list[Any] = []
    cursor = None
    while True:
        page = await services.list_agreements(db, principal, tenant_id=None, status=None, cursor=cursor, limit=200)
        found.extend(page.items)
        if not (cursor := page.next_cursor):
            return found


async def overview(db: Database, principal: Principal) -> dict[str, Any]:
    """The dashboard: the current DPA, what is in progress and needs action, pending sub-processor changes, and how
    the tenant stands on its obligations as controller."""
    agreements = await _all_agreements(db, principal)
    current = next((a for a in reversed(agreements) if a.status in CURRENT), None)
    in_progress = [a for a in reversed(agreements) if a.status in IN_PROGRESS]
    actions = [(a, act) for a in in_progress if (act := _action(a, manages(principal))) is not None]
    authorization = await subprocessors.tenant_authorization(db, principal)
    return {
        "current": current,
        "in_progress": in_progress,
        "actions": actions,
        "pending_changes": authorization.pending_changes,
        "can_request": not in_progress,
        "obligations": await obligations.status_counts(db, principal),
        # What other domains add (a re-papering campaign's new DPA waiting for the Subscriber).
        "panels": await panels.gather(DASHBOARD, db, principal),
    }
