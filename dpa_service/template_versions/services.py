"""Template governance (four-eyes, immutable content, one state machine) and previews.

    draft --submit--> in_review --approve--> approved --retire--> retired

The approver must be a legal user other than the author. Approving makes a version the current one for its key
(the most recently approved, not retired); earlier approved versions stay valid for DPAs made with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, serialize
from dpa_service.core.events import TemplateRetired, reactions
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import (
    RenderedPdf,
    RenderJob,
    TemplateRenderError,
    TemplateSourceError,
    check_source,
    render_html,
)
from dpa_service.http.pagination import Page, decode_id_cursor, encode_cursor
from dpa_service.template_versions.bundle import TemplateBundle, assets_dir, content_sha256, shipped_bundles
from dpa_service.template_versions.context import build_context, subprocessor_annex
from dpa_service.template_versions.models import (
    RULE_FIGURES,
    DeadlineRule,
    ObligationEntry,
    TemplateCreate,
    TemplateDetail,
    TemplatePublic,
    TemplateStatus,
    TemplateVersion,
)
from dpa_service.template_versions.variables import check_schema, validate_variables
from dpa_service.template_versions.variables import mechanism_problem as mechanism_problem

# A template posted without a schema accepts any variables; a variable the text needs and the agreement lacks is
# then reported when the document renders (422 naming it).
PERMISSIVE_SCHEMA: dict[str, Any] = {"type": "object"}

# What other domains use from here, beside the functions below.
__all__ = ["DeadlineRule", "TemplateVersion", "build_context", "subprocessor_annex", "validate_variables"]

# The one lifecycle of a template version: (status, action) -> new status. Anything else is 409.
TRANSITIONS: dict[tuple[str, str], str] = {
    (TemplateStatus.DRAFT, "submit"): TemplateStatus.IN_REVIEW,
    (TemplateStatus.IN_REVIEW, "approve"): TemplateStatus.APPROVED,
    (TemplateStatus.APPROVED, "retire"): TemplateStatus.RETIRED,
}
PAST_TENSE = {"submit": "submitted", "approve": "approved", "retire": "retired"}


def next_status(current: str, action: str) -> str:
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise Conflict(f"A {current} template version cannot be {action}d.") from None


async def _latest(session: AsyncSession, key: str) -> TemplateVersion | None:
    query = select(TemplateVersion).where(col(TemplateVersion.key) == key).order_by(col(TemplateVersion.version).desc())
    return (await session.execute(query.limit(1))).scalar_one_or_none()


def _shipped(key: str) -> TemplateBundle | None:
    return next((b for b in shipped_bundles() if b.key == key), None)


@dataclass(frozen=True)
class PreparedVersion:
    """A new version's content, checked (schema, source, sample, a trial render) before any write transaction, so
    no database lock is held while it renders."""

    candidate: TemplateVersion
    via: str


async def _prepare(actor: Actor, *, via: str, **content: Any) -> PreparedVersion:
    errors = check_schema(content["variables_schema"])
    try:
        check_source(content["entrypoint"], content["source"])
    except TemplateSourceError as exc:
        errors.append(FieldError("source", f"is not a valid Jinja2 template ({exc})"))
    if errors:
        raise InvalidInput("The template cannot be used as it is.", errors)
    if content["sample_variables"]:
        try:
            validate_variables(content["variables_schema"], content["sample_variables"], prefix="sample_variables")
        except InvalidInput as exc:
            raise InvalidInput("The sample variables do not fit the template's schema.", exc.errors) from exc
    sha256 = content_sha256(
        content["source"], content["stylesheet"], content["variables_schema"], content["obligations"]
    )
    candidate = TemplateVersion(version=0, sha256=sha256, author_id=actor.user_id, **content)
    if candidate.sample_variables:
        await _check_renders(candidate)
    return PreparedVersion(candidate, via)


async def _insert(session: AsyncSession, actor: Actor, prepared: PreparedVersion) -> TemplateVersion:
    """Number the prepared version (the next of its key) and store it, audited."""
    version = TemplateVersion.model_validate(prepared.candidate.model_dump(exclude={"id"}))
    number = await session.scalar(
        select(func.max(col(TemplateVersion.version))).where(col(TemplateVersion.key) == version.key)
    )
    version.version = (number or 0) + 1
    session.add(version)
    await session.flush()
    await audit.record(
        session,
        actor,
        "template.created",
        "template_version",
        version.id,
        tenant_id=None,
        data={"key": version.key, "version": version.version, "sha256": version.sha256, "via": prepared.via},
    )
    return version


async def _check_renders(version: TemplateVersion) -> None:
    """A template that compiles can still fail on real data: try it on its sample before accepting it."""
    context = build_context(
        version, version.sample_variables, reference="CHECK", status="preview", generated_on=utcnow().date()
    )
    try:
        await Renderer().run(render_html, render_job(version, context))  # Jinja is CPU work too: the pool
    except (TemplateRenderError, InvalidInput) as exc:
        raise InvalidInput.field("source", f"does not render with the sample variables: {exc.detail}") from exc


def obligation_entries(entries: list[ObligationEntry]) -> list[dict[str, Any]]:
    """A posted `obligations` list as the version stores it (the shape of `obligations.yaml`), or InvalidInput naming
    each repeated code and each figure its rule lacks or does not take."""
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"obligations.{index}"
        if entry.code in seen:
            errors.append(FieldError(f"{where}.code", f"repeats the code of obligations.{seen[entry.code]}"))
        seen.setdefault(entry.code, index)
        required, optional = RULE_FIGURES[entry.deadline.rule]
        given = {name for name in ("hours", "days", "business_days", "every_months") if getattr(entry.deadline, name)}
        errors += [FieldError(f"{where}.deadline.{name}", f"is required for the rule {entry.deadline.rule.value}")
                   for name in sorted(required - given)]  # fmt: skip
        errors += [FieldError(f"{where}.deadline.{name}", f"does not apply to the rule {entry.deadline.rule.value}")
                   for name in sorted(given - required - optional)]  # fmt: skip
    if errors:
        raise InvalidInput("The obligations cannot be used as they are.", errors)
    return [entry.model_dump(mode="json", exclude_none=True) for entry in entries]


async def prepare_version(db: Database, actor: Actor, data: TemplateCreate) -> PreparedVersion:
    """Check a new version; what the request leaves out is taken from the key's latest version (or its files)."""
    obligations = obligation_entries(data.obligations) if data.obligations is not None else None
    async with db.transaction(Scope.system(), write=False) as session:
        latest = await _latest(session, data.key)
    base: Any = latest or _shipped(data.key)
    schema = data.variables_schema if data.variables_schema is not None else getattr(base, "variables_schema", None)
    samples = data.sample_variables if data.sample_variables is not None else getattr(base, "sample_variables", {})
    return await _prepare(
        actor,
        via="api",
        key=data.key,
        title=data.title,
        source=data.source,
        stylesheet=data.stylesheet if data.stylesheet is not None else getattr(base, "stylesheet", ""),
        entrypoint=getattr(base, "entrypoint", "dpa.html.j2"),
        variables_schema=schema if schema is not None else PERMISSIVE_SCHEMA,
        sample_variables=samples,
        obligations=obligations if obligations is not None else list(getattr(base, "obligations", [])),
    )


async def create_version(db: Database, actor: Actor, prepared: PreparedVersion) -> TemplateDetail:
    """Store a prepared version as the key's next draft."""
    async with db.transaction(Scope.system()) as session:
        return detail(await _insert(session, actor, prepared), current=False)


SYNC_LOCK = 0x54504C53  # "TPLS": one import of the shipped templates at a time (PostgreSQL advisory lock)


async def sync_from_files(
    db: Database, actor: Actor, *, only_new_keys: bool = False, bundles: Sequence[TemplateBundle] | None = None
) -> list[TemplatePublic]:
    """Import each shipped template (or each of `bundles`) whose content is new as a draft version (idempotent by
    content hash).

    `only_new_keys`: import only keys with no version at all (a fresh service's first start)."""
    candidates = shipped_bundles() if bundles is None else list(bundles)
    async with db.transaction(Scope.system(), write=False) as session:
        new = [bundle for bundle in candidates if not await _known(session, bundle, only_new_keys)]
    if not new:  # every start of a running service: no write transaction, no lock
        return []
    prepared = [
        await _prepare(
            actor,
            via="sync",
            key=bundle.key,
            title=bundle.title,
            source=bundle.source,
            stylesheet=bundle.stylesheet,
            entrypoint=bundle.entrypoint,
            variables_schema=bundle.variables_schema,
            sample_variables=bundle.sample_variables,
            obligations=bundle.obligations,
        )
        for bundle in new
    ]
    async with db.transaction(Scope.system()) as session:
        # Checked again under the write lock (SQLite's one writer; an advisory lock on PostgreSQL, where two app
        # processes starting at once both numbered the same version 1 and one start failed): imported once.
        await serialize(session, SYNC_LOCK)
        fresh = [p for p, bundle in zip(prepared, new, strict=True) if not await _known(session, bundle, only_new_keys)]
        return [public(await _insert(session, actor, p), {}) for p in fresh]


async def _known(session: AsyncSession, bundle: TemplateBundle, only_new_keys: bool) -> bool:
    if only_new_keys and await _latest(session, bundle.key) is not None:
        return True
    same = await session.scalar(
        select(func.count())
        .select_from(TemplateVersion)
        .where(col(TemplateVersion.key) == bundle.key, col(TemplateVersion.sha256) == bundle.sha256)
    )
    return bool(same)


async def transition(db: Database, actor: Actor, template_id: uuid.UUID, action: str) -> TemplatePublic:
    """Move a version through `draft -> in_review -> approved -> retired` (four eyes on approval)."""
    async with db.transaction(Scope.system()) as session:
        version = await _transition(session, actor, template_id, action)
        if action == "retire":  # DPAs made with it are no longer current: other domains react (contracts)
            await reactions.publish(db, TemplateRetired(actor, version.id, version.key, version.version))
        return public(version, await current_ids(session, {version.key}))


async def _transition(session: AsyncSession, actor: Actor, template_id: uuid.UUID, action: str) -> TemplateVersion:
    version = await session.get(TemplateVersion, template_id, with_for_update=True)
    if version is None:
        raise NotFound("Template version not found.")
    new_status = next_status(version.status, action)
    now = utcnow()
    if action == "approve":
        if actor.user_id is None or actor.user_id in {version.author_id, version.submitted_by}:
            raise PermissionDenied(
                "Four eyes: a template version is approved by a legal user other than its author and submitter."
            )
        version.approver_id, version.approved_at = actor.user_id, now
    elif action == "submit":
        version.submitted_at, version.submitted_by = now, actor.user_id
    else:
        version.retired_at = now
    previous, version.status = version.status, new_status
    await audit.record(
        session,
        actor,
        f"template.{PAST_TENSE[action]}",
        "template_version",
        version.id,
        tenant_id=None,
        data={
            "key": version.key,
            "version": version.version,
            "from": previous,
            "to": new_status,
            "sha256": version.sha256,
        },
    )
    return version


def _sees_all_versions(principal: Principal) -> bool:
    """Legal works on drafts; everyone else (Subscribers, sales, platform admins) reads approved versions only."""
    return principal.role == Role.LEGAL


def _visible(principal: Principal) -> list[Any]:
    return [] if _sees_all_versions(principal) else [TemplateVersion.status == TemplateStatus.APPROVED]


async def current_ids(session: AsyncSession, keys: set[str]) -> dict[str, uuid.UUID]:
    """The current (most recently approved, not retired) version of each key."""
    if not keys:
        return {}
    query = (
        select(col(TemplateVersion.key), col(TemplateVersion.id))
        .where(col(TemplateVersion.key).in_(keys), col(TemplateVersion.status) == TemplateStatus.APPROVED)
        .order_by(
            col(TemplateVersion.key), col(TemplateVersion.approved_at).desc(), col(TemplateVersion.version).desc()
        )
    )
    current: dict[str, uuid.UUID] = {}
    for key, version_id in (await session.execute(query)).all():
        current.setdefault(key, version_id)
    return current


async def current_version(db: Database, scope: Scope, key: str) -> TemplateVersion | None:
    """The version of `key` new agreements are made with (None if no version is approved)."""
    async with db.transaction(scope, write=False) as session:
        ids = await current_ids(session, {key})
        return await session.get(TemplateVersion, ids[key]) if key in ids else None


async def list_versions(
    db: Database,
    principal: Principal,
    *,
    key: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[TemplatePublic]:
    """Versions by id; legal sees every status, everyone else approved ones."""
    query = select(TemplateVersion).where(*_visible(principal)).order_by(col(TemplateVersion.id)).limit(limit + 1)
    if key:
        query = query.where(col(TemplateVersion.key) == key)
    if status:
        query = query.where(col(TemplateVersion.status) == status)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(TemplateVersion.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        rows = (await session.execute(query)).scalars().all()
        current = await current_ids(session, {row.key for row in rows})
    shown = rows[:limit]
    return Page[TemplatePublic](
        items=[public(row, current) for row in shown],
        next_cursor=encode_cursor(str(shown[-1].id)) if len(rows) > limit else None,
    )


async def _visible_version(session: AsyncSession, principal: Principal, template_id: uuid.UUID) -> TemplateVersion:
    version = await session.get(TemplateVersion, template_id)
    if version is None or (not _sees_all_versions(principal) and version.status != TemplateStatus.APPROVED):
        raise NotFound("Template version not found.")
    return version


async def get_version(db: Database, principal: Principal, template_id: uuid.UUID) -> TemplateDetail:
    async with db.transaction(principal.scope, write=False) as session:
        version = await _visible_version(session, principal, template_id)
        current = await current_ids(session, {version.key})
    return detail(version, current=current.get(version.key) == version.id)


def detail(version: TemplateVersion, *, current: bool) -> TemplateDetail:
    return TemplateDetail.model_validate(version, from_attributes=True, update={"current": current})


def public(version: TemplateVersion, current: dict[str, uuid.UUID]) -> TemplatePublic:
    return TemplatePublic.model_validate(
        version, from_attributes=True, update={"current": current.get(version.key) == version.id}
    )


def render_job(version: TemplateVersion, context: dict[str, Any]) -> RenderJob:
    return RenderJob(
        template_sha256=version.sha256,
        entrypoint=version.entrypoint,
        source=version.source,
        stylesheet=version.stylesheet,
        assets=assets_dir(version.key),
        context=context,
    )


@dataclass(frozen=True)
class Preview:
    pdf: RenderedPdf
    filename: str


def preview_job(version: TemplateVersion) -> RenderJob:
    """The version with its sample variables, as the preview renders it (the diff of two versions compares these)."""
    if not version.sample_variables:
        raise Conflict("This template version has no sample variables to preview with.")
    validate_variables(version.variables_schema, version.sample_variables, prefix="sample_variables")
    context = build_context(
        version, version.sample_variables, reference="PREVIEW", status="preview", generated_on=utcnow().date()
    )
    return render_job(version, context)


async def visible_versions(db: Database, principal: Principal, *template_ids: uuid.UUID) -> list[TemplateVersion]:
    """Versions the principal may read, whole (for previews and diffs)."""
    async with db.transaction(principal.scope, write=False) as session:
        return [await _visible_version(session, principal, template_id) for template_id in template_ids]


async def current_ids_for(db: Database, scope: Scope, keys: set[str]) -> dict[str, uuid.UUID]:
    """`current_ids` in a read transaction of its own."""
    async with db.transaction(scope, write=False) as session:
        return await current_ids(session, keys)


async def preview(db: Database, renderer: Renderer, principal: Principal, template_id: uuid.UUID) -> Preview:
    """The version rendered with its sample variables (legal's preview)."""
    [version] = await visible_versions(db, principal, template_id)
    pdf = await renderer.render(preview_job(version))
    return Preview(pdf, f"{version.key}-v{version.version}-preview.pdf")


async def version_by_id(db: Database, scope: Scope, template_id: uuid.UUID) -> TemplateVersion:
    """A version for internal use (an agreement's pinned template), whatever its status."""
    async with db.transaction(scope, write=False) as session:
        version = await session.get(TemplateVersion, template_id)
    if version is None:
        raise NotFound("Template version not found.")
    return version


async def retired_ids(db: Database, scope: Scope, template_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `template_ids` legal has retired (one query, for a whole page of agreements)."""
    if not template_ids:
        return set()
    query = select(col(TemplateVersion.id)).where(
        col(TemplateVersion.id).in_(list(template_ids)), col(TemplateVersion.status) == TemplateStatus.RETIRED
    )
    async with db.transaction(scope, write=False) as session:
        return set((await session.execute(query)).scalars())


async def import_shipped(db: Database) -> list[TemplatePublic]:
    """On start: each shipped template whose key has no version yet becomes a draft for legal to approve."""
    return await sync_from_files(db, Actor.system("startup"), only_new_keys=True)
