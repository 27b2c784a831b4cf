"""Legal's template pages: versions per key, a new version, one version with its actions (four eyes shown, not only
enforced), the PDF preview and a side-by-side diff of two versions. Same services as /api/v1/templates."""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Principal
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, RendererDep
from dpa_service.template_versions import comparison, services
from dpa_service.template_versions.models import TemplateCreate, TemplatePublic, TemplateStatus
from dpa_service.users import services as users
from dpa_service.web.auth import legal_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

NEW = "template_versions/new.html.j2"
PAGE_SIZE = 50
TemplateId = FromPath[uuid.UUID]
ACTIONS = {"submit": "submitted for review", "approve": "approved", "retire": "retired"}


def template_create(form: dict[str, Any]) -> TemplateCreate:
    """The form as the API's body: the variables schema is JSON typed into a textarea (empty: none)."""
    body: dict[str, Any] = {key: one(form, key) for key in ("key", "title", "source")}
    schema_text = one(form, "variables_schema").strip()
    if schema_text:
        try:
            body["variables_schema"] = json.loads(schema_text)
        except json.JSONDecodeError as exc:
            raise InvalidInput.field("variables_schema", f"is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        if not isinstance(body["variables_schema"], dict):
            raise InvalidInput.field("variables_schema", "must be a JSON object (a JSON Schema)")
    return validated(TemplateCreate, body)


async def _names(db: Any, versions: list[Any]) -> dict[uuid.UUID, str]:
    ids = {i for v in versions for i in (v.author_id, v.submitted_by, v.approver_id) if i is not None}
    return await users.staff_names(db, ids)


def approval_refusal(version: Any, viewer: Principal) -> str | None:
    """Why the viewer may not approve (the four-eyes rule, shown before the POST would be refused)."""
    if version.author_id == viewer.user_id:
        return "You wrote this version: another legal user must approve it"
    if version.submitted_by == viewer.user_id:
        return "You submitted this version: another legal user must approve it"
    return None


def _by_key(versions: list[TemplatePublic]) -> dict[str, list[TemplatePublic]]:
    grouped: dict[str, list[TemplatePublic]] = {}
    for version in sorted(versions, key=lambda v: (v.key, -v.version)):
        grouped.setdefault(version.key, []).append(version)
    return grouped


class TemplatePages(Controller):
    path = "/staff/templates"
    guards = [legal_pages]
    include_in_schema = False

    @get("/")
    async def index(
        self, request: Request[Any, Any, Any], db: DbDep, principal: PrincipalDep, key: FromQuery[str] = "",
        cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """Every template version, grouped by key, with status, author and approver; `?key=` narrows."""
        page = await services.list_versions(
            db, principal, key=key.strip() or None, status=None, cursor=cursor or None, limit=PAGE_SIZE
        )
        next_url = next_page("/staff/templates", page.next_cursor, key=key)
        return render(request, "template_versions/index.html.j2", heading="Templates", groups=_by_key(page.items),
                      names=await _names(db, page.items), key=key, next_url=next_url)  # fmt: skip

    @get("/new")
    async def new(self, request: Request[Any, Any, Any]) -> Template:
        """The form for a new draft version of a template key."""
        return render(request, NEW, heading="New template version")

    @post("/", status_code=200)
    async def create(self, request: Request[Any, Any, Any], db: DbDep, actor: ActorDep) -> Response[Any]:
        """Save a new draft version (checked and trial-rendered like POST /api/v1/templates)."""
        form = await form_data(request)
        try:
            prepared = await services.prepare_version(db, actor, template_create(form))
        except InvalidInput as exc:
            return render(request, NEW, status=422, heading="New template version", errors=field_errors(exc),
                          form=form)  # fmt: skip
        created = await services.create_version(db, actor, prepared)
        message = f"Version {created.version} of {created.key} is saved as a draft."
        return redirect(request, f"/staff/templates/{created.id}", message)

    @get("/{template_id:uuid}")
    async def detail(
        self, request: Request[Any, Any, Any], template_id: TemplateId, db: DbDep, principal: PrincipalDep
    ) -> Template:
        """One version: its facts, source, actions (approve disabled for its author) and versions to diff against."""
        version = await services.get_version(db, principal, template_id)
        siblings = await services.list_versions(db, principal, key=version.key, status=None, cursor=None, limit=200)
        others = [v for v in siblings.items if v.id != version.id]
        return render(request, "template_versions/detail.html.j2", heading=f"{version.title} (v{version.version})",
                      version=version, names=await _names(db, [version]), others=others,
                      refusal=approval_refusal(version, principal), statuses=TemplateStatus)  # fmt: skip

    @post("/{template_id:uuid}/{action:str}", status_code=200)
    async def act(
        self, request: Request[Any, Any, Any], template_id: TemplateId, action: FromPath[str], db: DbDep,
        actor: ActorDep,
    ) -> Redirect:  # fmt: skip
        """Submit, approve or retire (the four-eyes rule refuses the author's approval with 403, changing nothing)."""
        if action not in ACTIONS:
            raise InvalidInput.field("action", "must be submit, approve or retire")
        version = await services.transition(db, actor, template_id, action)
        message = f"Version {version.version} of {version.key} is {ACTIONS[action]}."
        return redirect(request, f"/staff/templates/{version.id}", message)

    @get("/{template_id:uuid}/preview", media_type="application/pdf")
    async def preview(
        self, template_id: TemplateId, principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> Response[bytes]:
        """The version as PDF with its sample variables (the API's preview)."""
        shown = await services.preview(db, renderer, principal, template_id)
        headers = {"X-Content-SHA256": shown.pdf.sha256, "Content-Disposition": f'inline; filename="{shown.filename}"'}
        return Response(shown.pdf.content, media_type="application/pdf", headers=headers)

    @get("/{template_id:uuid}/diff")
    async def diff(
        self, request: Request[Any, Any, Any], template_id: TemplateId, principal: PrincipalDep, db: DbDep,
        renderer: RendererDep, against: FromQuery[uuid.UUID],
    ) -> Template:  # fmt: skip
        """The rendered text of `against` (left, older) and this version (right), side by side."""
        compared = await comparison.compare(db, renderer, principal, template_id, against)
        heading = f"{compared.new.key}: v{compared.old.version} against v{compared.new.version}"
        return render(request, "template_versions/diff.html.j2", heading=heading, compared=compared)
