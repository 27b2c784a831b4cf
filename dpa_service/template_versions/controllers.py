"""DPA templates: legal writes, reviews (four-eyes), approves and retires versions; everyone reads approved ones."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal
from dpa_service.http.auth import legal_only
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, RendererDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.template_versions import comparison, services
from dpa_service.template_versions.models import (
    TemplateCreate,
    TemplateDetail,
    TemplateDiff,
    TemplatePublic,
    TemplateStatus,
)

KeyFilter = Annotated[str | None, QueryParameter(name="key", max_length=100)]
StatusFilter = Annotated[TemplateStatus | None, QueryParameter(name="status")]
TemplateId = FromPath[uuid.UUID]
Against = Annotated[
    uuid.UUID, QueryParameter(name="against", description="The version to compare with (the older text).")
]


class TemplatesController(Controller):
    path = "/api/v1/templates"
    tags = ["Templates"]

    @post("/", guards=[legal_only], operation_id="createTemplateVersion", responses=created(TemplateDetail))
    async def create(
        self, data: JSONBody[TemplateCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """Legal writes a new draft version of a template key (`key`, `title`, `source`, `variables_schema?`,
        `obligations?`); a new key without a schema accepts any variables, and a missing one is reported when a
        document renders; without `obligations` the version keeps the key's latest list."""
        prepared = await services.prepare_version(db, actor, data)  # checked and trial-rendered, outside any lock
        return await create_once(db, request, request.user, partial(services.create_version, db, actor, prepared))

    @get("/", operation_id="listTemplateVersions")
    async def list_versions(
        self,
        principal: PrincipalDep,
        db: DbDep,
        key: KeyFilter = None,
        status: StatusFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TemplatePublic]:
        """Template versions; Subscribers, sales and platform admins see `approved` versions only."""
        return await services.list_versions(db, principal, key=key, status=status, cursor=cursor, limit=limit)

    @get("/{template_id:uuid}", operation_id="getTemplateVersion")
    async def get_version(self, template_id: TemplateId, principal: PrincipalDep, db: DbDep) -> TemplateDetail:
        """One version with its source, stylesheet and variables schema (a draft is 404 to anyone but legal)."""
        return await services.get_version(db, principal, template_id)

    @post("/{template_id:uuid}/submit", guards=[legal_only], operation_id="submitTemplateVersion", status_code=200)
    async def submit(self, template_id: TemplateId, db: DbDep, actor: ActorDep) -> TemplatePublic:
        """`draft -> in_review`: the version goes to a second legal user for approval."""
        return await services.transition(db, actor, template_id, "submit")

    @post("/{template_id:uuid}/approve", guards=[legal_only], operation_id="approveTemplateVersion", status_code=200)
    async def approve(self, template_id: TemplateId, db: DbDep, actor: ActorDep) -> TemplatePublic:
        """`in_review -> approved` by a legal user other than its author and submitter (403 otherwise); the newest
        approved version of a key is the one new agreements use."""
        return await services.transition(db, actor, template_id, "approve")

    @post("/{template_id:uuid}/retire", guards=[legal_only], operation_id="retireTemplateVersion", status_code=200)
    async def retire(self, template_id: TemplateId, db: DbDep, actor: ActorDep) -> TemplatePublic:
        """`approved -> retired`: no new agreements with it; those made with it stay valid."""
        return await services.transition(db, actor, template_id, "retire")

    @get("/{template_id:uuid}/diff", guards=[legal_only], operation_id="diffTemplateVersions")
    async def diff(
        self,
        template_id: TemplateId,
        against: Against,
        principal: PrincipalDep,
        db: DbDep,
        renderer: RendererDep,
    ) -> TemplateDiff:
        """The rendered DPA text of `against` (the older, `from`) compared with this version (`to`), each rendered
        with its own sample variables: every changed line with its line numbers, and a unified diff. Comparing
        what a reader of each DPA sees keeps markup and template logic out of the review."""
        return await comparison.diff(db, renderer, principal, template_id, against)

    @get(
        "/{template_id:uuid}/preview",
        guards=[legal_only],
        operation_id="previewTemplateVersion",
        media_type="application/pdf",
    )
    async def preview(
        self, template_id: TemplateId, principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> Response[bytes]:
        """The version rendered as PDF with its sample variables; `X-Content-SHA256` is the PDF's hash."""
        shown = await services.preview(db, renderer, principal, template_id)
        return Response(
            shown.pdf.content,
            media_type="application/pdf",
            headers={
                "X-Content-SHA256": shown.pdf.sha256,
                "Content-Disposition": f'inline; filename="{shown.filename}"',
            },
        )
