"""Requesting and customizing a DPA, legal's review, voiding, and reading agreements, documents and evidence.

Each public function is one transaction (see core.db). Signing lives in `signing`, execution in `execution`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import documents, envelopes, links
from dpa_service.agreements.bulk import OPEN_STATUSES as OPEN_STATUSES
from dpa_service.agreements.bulk import AgreementState as AgreementState
from dpa_service.agreements.bulk import DraftsCreated as DraftsCreated
from dpa_service.agreements.bulk import ExecutedDpa as ExecutedDpa
from dpa_service.agreements.bulk import NewDraft as NewDraft
from dpa_service.agreements.bulk import create_drafts as create_drafts
from dpa_service.agreements.bulk import executed_matching as executed_matching
from dpa_service.agreements.bulk import states as states
from dpa_service.agreements.bulk import status_counts as status_counts
from dpa_service.agreements.facts import AgreementFacts, agreement_facts
from dpa_service.agreements.lifecycle import BEFORE_EXECUTION, move, next_status
from dpa_service.agreements.models import (
    Agreement,
    AgreementCreate,
    AgreementDocument,
    AgreementListItem,
    AgreementPage,
    AgreementPatch,
    AgreementPublic,
    AgreementStatus,
    Evidence,
    ReviewCreate,
    ReviewDecision,
    ReviewView,
    SignaturePublic,
)
from dpa_service.agreements.tenant_reads import TenantDpa as TenantDpa
from dpa_service.agreements.tenant_reads import dpa_status as dpa_status
from dpa_service.agreements.tenant_reads import executed_agreements as executed_agreements
from dpa_service.agreements.tenant_reads import executed_templates as executed_templates
from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, tenant_of
from dpa_service.core.events import AgreementVoided, checks, reactions
from dpa_service.core.exceptions import Conflict, DPAError, FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal
from dpa_service.documents.renderer import Renderer
from dpa_service.http.pagination import decode_id_cursor, encode_cursor
from dpa_service.subprocessors import services as subprocessors
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants
from dpa_service.transfers import services as transfers

logger = logging.getLogger("dpa_service.agreements")

# What other domains use from here, beside the functions below.
__all__ = ["AgreementFacts", "agreement_facts"]


def public(agreement: Agreement) -> AgreementPublic:
    return AgreementPublic.model_validate(agreement, from_attributes=True)


# --- Reading -------------------------------------------------------------------------------------------------


async def find(session: AsyncSession, agreement_id: uuid.UUID, *, lock: bool = False) -> Agreement:
    """Within the session's tenant scope: another tenant's agreement is simply not found."""
    query = select(Agreement).where(col(Agreement.id) == agreement_id)
    if (tenant := tenant_of(session)) is not None:
        query = query.where(col(Agreement.tenant_id) == tenant)
    if lock:
        query = query.with_for_update()
    agreement = (await session.execute(query)).scalar_one_or_none()
    if agreement is None:
        raise NotFound("Agreement not found.")
    return agreement


async def get_agreement(db: Database, principal: Principal, agreement_id: uuid.UUID) -> AgreementPublic:
    async with db.transaction(principal.scope, write=False) as session:
        return public(await find(session, agreement_id))


# The list is the busiest read: it selects exactly the public columns through a Core connection (no ORM identity
# map) and builds msgspec items from rows the database already typed (`AgreementPage`, the same JSON as
# `Page[AgreementPublic]`).
_PUBLIC_COLUMNS = [Agreement.__table__.c[name] for name in AgreementPublic.model_fields]  # type: ignore[attr-defined]


@lru_cache(maxsize=8)
def _list_query(by_tenant: bool, by_status: bool, after: bool) -> Any:
    """Built once per shape, with bound parameters: SQLAlchemy then skips rebuilding its cache key per request."""
    query = select(*_PUBLIC_COLUMNS).order_by(col(Agreement.id)).limit(bindparam("limit"))
    if by_tenant:
        query = query.where(col(Agreement.tenant_id) == bindparam("tenant"))
    if by_status:
        query = query.where(col(Agreement.status) == bindparam("status"))
    if after:
        query = query.where(col(Agreement.id) > bindparam("after"))
    return query


async def list_agreements(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Any:
    """A page of agreements (an `AgreementPage`): the caller's tenant's, or for staff all (or `tenant_id`'s)."""
    tenant = principal.scope.tenant_id or tenant_id
    after = decode_id_cursor(cursor)
    query = _list_query(tenant is not None, status is not None, after is not None)
    params = {"tenant": tenant, "status": status, "after": after, "limit": limit + 1}
    async with db.read_connection(principal.scope) as conn:
        rows = (await conn.execute(query, params)).all()
    more = len(rows) > limit
    items = [AgreementListItem(**row._mapping) for row in rows[:limit]]
    return AgreementPage(items=items, next_cursor=encode_cursor(str(rows[limit - 1].id)) if more else None)


# --- Request and customize -----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _controller_from_profile(profile: Any) -> dict[str, Any]:
    fields = {
        "legal_name": profile.legal_name,
        "address": profile.address,
        "country": profile.country,
        "contact_email": profile.contact_email,
        "registration_number": profile.registration_number,
    }
    return {key: value for key, value in fields.items() if value}


async def _refuse_invalidated_mechanisms(db: Database, scope: Scope, variables: dict[str, Any]) -> None:
    """A DPA offers no mechanism legal recorded as invalid from today or earlier (the registry's own dates are
    checked with the schema): 422 naming each, like any other mechanism no longer in force."""
    selected = (variables.get("transfers") or {}).get("mechanisms") if isinstance(variables, dict) else None
    if not isinstance(selected, list) or not selected:
        return
    invalid = await transfers.invalidations(db, scope)
    today = utcnow().date()
    errors = [
        FieldError(
            f"variables.transfers.mechanisms.{index}",
            f"{code} was recorded as invalid from {invalid[code].isoformat()}: a DPA made on {today.isoformat()} "
            "cannot rely on it",
        )
        for index, code in enumerate(selected)
        if isinstance(code, str) and code in invalid and invalid[code] <= today
    ]
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


async def create_agreement(db: Database, actor: Actor, principal: Principal, data: AgreementCreate) -> AgreementPublic:
    """A draft from the key's current approved template; the controller is pre-filled from the tenant profile."""
    if principal.tenant_id is None:
        raise PermissionDenied("Agreements are requested by a Subscriber.")
    async with db.transaction(principal.scope) as session:
        # Another domain may refuse (a tenant in exit requests no new DPA): `core.events.checks`.
        await checks.before_new_agreement(db, principal.scope, principal.tenant_id)
        version = await templates.current_version(db, principal.scope, data.template_key)
        if version is None:
            raise InvalidInput.field("template_key", "has no approved template version")
        profile = await tenants.get_tenant(db, principal.scope, principal.tenant_id)
        variables = merge_patch({"controller": _controller_from_profile(profile)}, data.variables)
        templates.validate_variables(version.variables_schema, variables)
        await _refuse_invalidated_mechanisms(db, principal.scope, variables)
        now = utcnow()
        agreement = Agreement(
            tenant_id=principal.tenant_id,
            template_id=version.id,
            template_key=version.key,
            template_version=version.version,
            template_sha256=version.sha256,
            variables=variables,
            custom_clauses=[clause.model_dump() for clause in data.custom_clauses],
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
            content_changed_at=now,
        )
        session.add(agreement)
        await session.flush()
        await audit.record(
            session,
            actor,
            "agreement.created",
            "agreement",
            agreement.id,
            tenant_id=agreement.tenant_id,
            data={
                "template": f"{version.key} v{version.version}",
                "template_sha256": version.sha256,
                "custom_clauses": len(agreement.custom_clauses),
            },
        )
        return public(agreement)


async def update_agreement(
    db: Database, actor: Actor, principal: Principal, agreement_id: uuid.UUID, patch: AgreementPatch
) -> AgreementPublic:
    """Merge-patch the variables and/or replace the custom clauses, only while the draft is editable."""
    async with db.transaction(principal.scope) as session:
        agreement = await find(session, agreement_id, lock=True)
        next_status(agreement, "edit")
        version = await templates.version_by_id(db, principal.scope, agreement.template_id)
        changed: list[str] = []
        if "variables" in patch.model_fields_set and patch.variables is not None:
            variables = merge_patch(agreement.variables, patch.variables)
            templates.validate_variables(version.variables_schema, variables)
            await _refuse_invalidated_mechanisms(db, principal.scope, variables)
            if variables != agreement.variables:
                agreement.variables, changed = variables, [*changed, "variables"]
        if "custom_clauses" in patch.model_fields_set:
            clauses = [clause.model_dump() for clause in patch.custom_clauses or []]
            if clauses != agreement.custom_clauses:
                agreement.custom_clauses, changed = clauses, [*changed, "custom_clauses"]
        if changed:
            await move(session, actor, agreement, "edit", {"changed": changed})
        return public(agreement)


async def submit(db: Database, actor: Actor, principal: Principal, agreement_id: uuid.UUID) -> AgreementPublic:
    """To `ready_for_signature`, or to `in_legal_review` when the agreement has custom clauses."""
    async with db.transaction(principal.scope) as session:
        agreement = await find(session, agreement_id, lock=True)
        version = await templates.version_by_id(db, principal.scope, agreement.template_id)
        action = "submit_for_review" if agreement.custom_clauses else "submit"
        next_status(agreement, action)
        templates.validate_variables(version.variables_schema, agreement.variables)
        await _refuse_invalidated_mechanisms(db, principal.scope, agreement.variables)
        agreement.submitted_at = utcnow()
        await move(session, actor, agreement, action, {"custom_clauses": len(agreement.custom_clauses)})
        return public(agreement)


async def review(
    db: Database, actor: Actor, principal: Principal, agreement_id: uuid.UUID, data: ReviewCreate
) -> AgreementPublic:
    """Legal approves the custom clauses or requests changes (with a comment saying what to change)."""
    if data.decision == ReviewDecision.REQUEST_CHANGES and not data.comment:
        raise InvalidInput.field("comment", "is required when requesting changes: say what to change")
    async with db.transaction(principal.scope) as session:
        agreement = await find(session, agreement_id, lock=True)
        action = "approve" if data.decision == ReviewDecision.APPROVE else "request_changes"
        next_status(agreement, action)
        agreement.review_comment = data.comment or None
        agreement.reviewed_by, agreement.reviewed_at = actor.user_id, utcnow()
        await move(session, actor, agreement, action, {"comment": data.comment})
        return public(agreement)


async def void(
    db: Database, actor: Actor, principal: Principal, agreement_id: uuid.UUID, reason: str
) -> AgreementPublic:
    """Subscribers void before signing; legal also after (never once executed)."""
    # The write runs in the agreement's own tenant scope, as the reactions to it do (a contract re-derives its DPA
    # status in that tenant's scope), also when legal, working across tenants, voids it.
    async with db.transaction(principal.scope, write=False) as session:
        tenant_id = (await find(session, agreement_id)).tenant_id
    async with db.transaction(Scope.tenant(tenant_id)) as session:
        agreement = await find(session, agreement_id, lock=True)
        if not principal.is_staff and agreement.status not in BEFORE_EXECUTION:
            raise Conflict("A signed agreement can only be voided by the processor's legal team.")
        previous = agreement.status
        next_status(agreement, "void")
        await links.void_pending(session, agreement.id)
        await envelopes.void_active(session, agreement.id, reason or "The agreement was voided")
        agreement.voided_at, agreement.void_reason = utcnow(), reason or None
        agreement.execution_queued_at = None  # a countersignature queued for the worker will find nothing to do
        await move(session, actor, agreement, "void", {"reason": reason})
        await reactions.publish(db, AgreementVoided(actor, agreement.tenant_id, agreement.id, previous))
        return public(agreement)


# --- Documents -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    content: bytes
    sha256: str
    executed: bool


class StoredDocumentCorrupted(DPAError):
    """The stored executed PDF no longer matches its recorded SHA-256: never served, the operator is alerted."""


async def document(db: Database, renderer: Renderer, principal: Principal, agreement_id: uuid.UUID) -> Document:
    """The draft render, or the stored sealed bytes once executed (checked against their hash first).

    Drafts render after the read transaction has ended: no connection is held while waiting for layout.
    """
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        if agreement.status in (AgreementStatus.EXECUTED, AgreementStatus.SUPERSEDED):
            return _checked(agreement, await session.get(AgreementDocument, agreement.id))
        version = await templates.version_by_id(db, principal.scope, agreement.template_id)
        _, listing = await subprocessors.listing_for(db, principal.scope, agreement.subprocessor_list_version)
    rendered = await documents.draft_pdf(renderer, version, agreement, listing)
    return Document(rendered.content, rendered.sha256, executed=False)


def _checked(agreement: Agreement, stored: AgreementDocument | None) -> Document:
    if stored is None or stored.sha256 != agreement.document_sha256:
        problem = f"agreement {agreement.id}: executed document missing or re-labelled"
    elif (actual := sha256(stored.content)) != stored.sha256:
        problem = f"agreement {agreement.id}: stored PDF hashes to {actual}, recorded {stored.sha256}"
    else:
        return Document(stored.content, stored.sha256, executed=True)
    logger.critical("ALARM: refusing to serve an executed DPA whose bytes changed: %s", problem)
    raise StoredDocumentCorrupted("The stored document failed its integrity check; the operator has been alerted.")


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def review_view(db: Database, renderer: Renderer, principal: Principal, agreement_id: uuid.UUID) -> ReviewView:
    """What legal reviews: the custom clauses, and the agreement's text against the standard text."""
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        version = await templates.version_by_id(db, principal.scope, agreement.template_id)
        _, listing = await subprocessors.listing_for(db, principal.scope, agreement.subprocessor_list_version)
    diff = await documents.custom_clause_diff(renderer, version, agreement, listing)
    return ReviewView(
        agreement_id=agreement.id,
        status=agreement.status,
        template={"key": version.key, "version": version.version, "sha256": version.sha256},
        custom_clauses=agreement.custom_clauses,
        review_comment=agreement.review_comment,
        diff=diff,
    )


async def evidence(db: Database, principal: Principal, agreement_id: uuid.UUID) -> Evidence:
    """Every signature's evidence (who, when, from where, on which bytes, with what consent)."""
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        signatures = await links.signatures_of(session, agreement.id)
        envelopes_ = await envelopes.envelopes_in(session, agreement.id)
    return Evidence(
        agreement_id=agreement.id,
        status=agreement.status,
        signatures=[SignaturePublic.of(s) for s in signatures],
        executed_sha256=agreement.document_sha256,
        sealed_at=agreement.sealed_at,
        docusign=envelopes_,
    )
