"""A Subscriber's own profile as pages: `/app/profile` for everyone in the tenant, `/app/profile/edit` for its
owners and admins. The same services as `GET` and `PATCH /api/v1/tenant`; the form sends every field, so an emptied
optional field is cleared (the merge patch's null) and an emptied required one is refused beside it."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Template

from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Role
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.tenants import services
from dpa_service.tenants.models import TenantPublic, TenantUpdate
from dpa_service.web.auth import subscriber_admin_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, one, redirect, render

# (heading, [(field, label, kind)]): kind is the input type, or "textarea".
SECTIONS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("Organisation", (
        ("name", "Display name", "text"),
        ("legal_name", "Legal name", "text"),
        ("country", "Country (ISO code, e.g. DE)", "text"),
        ("address", "Registered address", "textarea"),
        ("registration_number", "Registration number", "text"),
    )),
    ("Privacy contact", (
        ("contact_name", "Contact name", "text"),
        ("contact_email", "Contact e-mail", "email"),
        ("contact_phone", "Contact phone", "text"),
    )),
    ("Data protection officer", (
        ("dpo_name", "DPO name", "text"),
        ("dpo_email", "DPO e-mail", "email"),
    )),
    ("EU representative (Art. 27 GDPR)", (
        ("eu_representative_name", "Representative name", "text"),
        ("eu_representative_address", "Representative address", "textarea"),
        ("eu_representative_email", "Representative e-mail", "email"),
    )),
)  # fmt: skip
REQUIRED = frozenset({"name", "legal_name", "country"})
EDIT = "tenants/profile_edit.html.j2"


def _patch(form: dict[str, Any]) -> dict[str, Any]:
    """Every profile field from the form; an empty box is null (cleared, or refused when required)."""
    return {field: (one(form, field).strip() or None) for field in TenantUpdate.model_fields}


def _values(tenant: TenantPublic) -> dict[str, Any]:
    return {field: getattr(tenant, field) for field in TenantUpdate.model_fields}


class ProfilePages(Controller):
    include_in_schema = False

    @get("/app/profile", guards=[subscriber_pages])
    async def profile(self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep) -> Template:
        """The tenant's profile: what pre-fills the controller's part of its DPAs."""
        tenant = await services.own_tenant(db, principal)
        can_edit = principal.role in (Role.OWNER, Role.ADMIN)
        return render(request, "tenants/profile.html.j2", heading="Organisation profile", tenant=tenant,
                      values=_values(tenant), sections=SECTIONS, can_edit=can_edit)  # fmt: skip

    @get("/app/profile/edit", guards=[subscriber_admin_pages])
    async def edit_form(self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep) -> Template:
        """The profile form, filled with the current values."""
        tenant = await services.own_tenant(db, principal)
        return render(request, EDIT, heading="Edit organisation profile", form=_values(tenant), sections=SECTIONS,
                      required=REQUIRED)  # fmt: skip

    @post("/app/profile/edit", guards=[subscriber_admin_pages], status_code=200)
    async def edit(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> Response[Any]:
        """Save the profile (the same change as `PATCH /api/v1/tenant`); errors come back beside their fields."""
        form = await form_data(request)
        try:
            await services.update_profile(db, actor, principal, validated(TenantUpdate, _patch(form)))
        except InvalidInput as exc:
            return render(request, EDIT, status=422, heading="Edit organisation profile", form=form,
                          sections=SECTIONS, required=REQUIRED, errors=field_errors(exc))  # fmt: skip
        return redirect(request, "/app/profile", "Profile saved.")
