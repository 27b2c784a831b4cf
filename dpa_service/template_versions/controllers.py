"""DPA templates: legal writes, reviews (four-eyes), approves and retires versions; everyone reads approved ones."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import require_roles
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, RendererDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_id_cursor, encode_cursor
from dpa_service.template_versions import services
from dpa_service.template_versions.models import TemplateCreate, TemplateDetail, TemplatePublic, TemplateStatus

legal_only = require_roles(Role.LEGAL)

KeyFilter = Annotated[str | None, QueryParameter(name="key", max_length=100)]
StatusFilter = Annotated[TemplateStatus | None, QueryParameter(name="status")]


class TemplatesController(Controller):
    path = "/api/v1/templates"
    tags = ["Templates"]

    @post("/", guards=[legal_only], operation_id="createTemplateVersion", responses=created(TemplateDetail))
    async def create(
        self, data: JSONBody[TemplateCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        async def work(session: Any) -> TemplateDetail:
            version = await services.create_version(session, actor, data)
            return TemplateDetail.model_validate(version, from_attributes=True)

        return await create_once(db, request, request.user, work)

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
        async with db.transaction(principal.scope, write=False) as session:
            rows, current = await services.list_versions(
                session, principal, key=key, status=status, after=decode_id_cursor(cursor), limit=limit
            )
        shown = rows[:limit]
        return Page[TemplatePublic](
            items=[services.public(row, current) for row in shown],
            next_cursor=encode_cursor(str(shown[-1].id)) if len(rows) > limit else None,
        )

    @get("/{template_id:uuid}", operation_id="getTemplateVersion")
    async def get_version(self, template_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> TemplateDetail:
        async with db.transaction(principal.scope, write=False) as session:
            version = await services.get_version(session, principal, template_id)
            current = await services.current_ids(session, {version.key})
        return TemplateDetail.model_validate(
            version, from_attributes=True, update={"current": current.get(version.key) == version.id}
        )

    @post("/{template_id:uuid}/submit", guards=[legal_only], operation_id="submitTemplateVersion", status_code=200)
    async def submit(
        self, template_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> TemplatePublic:
        return await self._transition(template_id, "submit", principal, db, actor)

    @post("/{template_id:uuid}/approve", guards=[legal_only], operation_id="approveTemplateVersion", status_code=200)
    async def approve(
        self, template_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> TemplatePublic:
        return await self._transition(template_id, "approve", principal, db, actor)

    @post("/{template_id:uuid}/retire", guards=[legal_only], operation_id="retireTemplateVersion", status_code=200)
    async def retire(
        self, template_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> TemplatePublic:
        return await self._transition(template_id, "retire", principal, db, actor)

    @staticmethod
    async def _transition(
        template_id: uuid.UUID, action: str, principal: Principal, db: Any, actor: Any
    ) -> TemplatePublic:
        async with db.transaction(principal.scope) as session:
            version = await services.transition(session, actor, template_id, action)
            current = await services.current_ids(session, {version.key})
        return services.public(version, current)

    @get(
        "/{template_id:uuid}/preview",
        guards=[legal_only],
        operation_id="previewTemplateVersion",
        media_type="application/pdf",
    )
    async def preview(
        self, template_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> Response[bytes]:
        async with db.transaction(principal.scope, write=False) as session:
            version = await services.get_version(session, principal, template_id)
        pdf = await services.preview(renderer, version)
        return Response(
            pdf.content,
            media_type="application/pdf",
            headers={
                "X-Content-SHA256": pdf.sha256,
                "Content-Disposition": f'inline; filename="{version.key}-v{version.version}-preview.pdf"',
            },
        )
