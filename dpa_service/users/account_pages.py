"""A tenant's users and everyone's own API keys, as pages: `/app/users` (the users, "Add user" for owners and
admins, one's own keys) and `/staff/keys` (a member of staff's own keys). The same services as `POST /api/v1/users`
and `/api/v1/api-keys`.

A new key is shown once: the page that shows it is the answer to the POST itself (201, `Cache-Control: no-store`),
not a redirect to a page that reads it back from the session, so the key is never stored anywhere on our side, and
reloading or going back to the list never shows it again.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, InvalidInput, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.http.deps import ActorDep, DbDep, MailerDep, PrincipalDep, SettingsDep, public_base_url
from dpa_service.http.pagination import DEFAULT_LIMIT
from dpa_service.users import services
from dpa_service.users.models import ApiKeyCreate, UserCreate
from dpa_service.web.auth import staff_pages, subscriber_admin_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

USERS = "users/users.html.j2"
STAFF_KEYS = "users/staff_keys.html.j2"
ROLES = [(Role.OWNER.value, "Owner"), (Role.ADMIN.value, "Admin"), (Role.MEMBER.value, "Member")]


def _keys_path(back: str) -> str:
    """Where a page's keys live: `/app/users` -> `/app/users/keys`; `/staff/keys` is its own."""
    return back if back == "/staff/keys" else f"{back}/keys"


async def _keys(db: Database, principal: Principal, back: str, cursor: str | None) -> dict[str, Any]:
    keys = await services.list_own_api_keys(db, principal, cursor=cursor or None, limit=DEFAULT_LIMIT)
    return {"keys": keys.items, "keys_next": next_page(back, keys.next_cursor, cursor_name="keys_cursor"),
            "keys_base": _keys_path(back)}  # fmt: skip


async def _users(
    db: Database, principal: Principal, cursor: str | None = None, keys_cursor: str | None = None
) -> dict[str, Any]:
    # Who the tenant's users are is for its owners and admins (who add them); a member manages its own keys.
    manager = principal.role in (Role.OWNER, Role.ADMIN)
    users = (
        await services.list_tenant_users(db, principal, cursor=cursor or None, limit=DEFAULT_LIMIT) if manager else None
    )
    return {
        "heading": "Users and API keys" if manager else "Your API keys",
        "users": users.items if users else [],
        "users_next": next_page("/app/users", users.next_cursor) if users else None,
        "can_add": manager,
        "roles": ROLES,
        "refused": None,
        **await _keys(db, principal, "/app/users", keys_cursor),
    }


def _shown_once(request: Request[Any, Any, Any], back: str, **context: Any) -> Template:
    """The one page a new key is ever shown on (see the module's docstring)."""
    page = render(request, "users/key_shown.html.j2", status=201, back=back, **context)
    page.headers["Cache-Control"] = "no-store"
    return page


def _user_refused(exc: InvalidInput | PermissionDenied | Conflict) -> tuple[int, dict[str, str]]:
    """A refused new user: the status, and each message beside the field it is about."""
    if isinstance(exc, InvalidInput):
        return 422, field_errors(exc)
    if isinstance(exc, Conflict) and exc.errors:  # an address another account uses
        return exc.status_code, {error.field: f"This address {error.message}." for error in exc.errors}
    return exc.status_code, {"role" if isinstance(exc, PermissionDenied) else "email": exc.detail}


async def _create_key(request: Request[Any, Any, Any], db: Database, actor: Actor, principal: Principal,
                      base: str) -> Response[Any]:  # fmt: skip
    """A new key for the viewer from the `key_name` field (the API's `name`), shown once."""
    form = await form_data(request)
    try:
        data = validated(ApiKeyCreate, {"name": one(form, "key_name").strip() or None})
    except InvalidInput as exc:
        errors = {"key_name" if field == "name" else field: message for field, message in field_errors(exc).items()}
        template = USERS if base == "/app/users" else STAFF_KEYS
        context = await _users(db, principal) if base == "/app/users" else await _staff_context(db, principal)
        return render(request, template, status=422, errors=errors, form=form, **context)
    created = await services.create_own_api_key(db, actor, principal, data.name)
    return _shown_once(request, base, heading="Your new API key", key=created.api_key, name=created.name, user=None)


async def _staff_context(db: Database, principal: Principal, keys_cursor: str | None = None) -> dict[str, Any]:
    return {"heading": "API keys", **await _keys(db, principal, "/staff/keys", keys_cursor)}


class AccountPages(Controller):
    include_in_schema = False

    @get("/app/users", guards=[subscriber_pages])
    async def users(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, cursor: FromQuery[str] = "",
        keys_cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """The tenant's users, and the viewer's own API keys (prefixes only)."""
        return render(request, USERS, **await _users(db, principal, cursor, keys_cursor))

    @post("/app/users", guards=[subscriber_admin_pages], status_code=201)
    async def add_user(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, actor: ActorDep,
        mailer: MailerDep, settings: SettingsDep,
    ) -> Response[Any]:  # fmt: skip
        """Add a user to the tenant (only an owner makes an owner); its first API key is shown this once, and the
        new address is e-mailed a link to confirm it."""
        form = await form_data(request)
        out = services.ConfirmationMails(public_base_url(request, settings))
        try:
            data = validated(UserCreate, {k: one(form, k).strip() for k in ("email", "name", "role")})
            new = await services.create_tenant_user(db, actor, principal, data, out)
        except (InvalidInput, PermissionDenied, Conflict) as exc:
            status, errors = _user_refused(exc)
            return render(request, USERS, status=status, errors=errors, form=form, **await _users(db, principal))
        await services.send_confirmations(mailer, out)
        return _shown_once(request, "/app/users", heading="User added", key=new.api_key, name=None, user=new)

    @post("/app/users/{user_id:uuid}/verification", guards=[subscriber_admin_pages], status_code=200)
    async def resend_verification(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep,
        actor: ActorDep, mailer: MailerDep, settings: SettingsDep,
    ) -> Response[Any]:  # fmt: skip
        """E-mail a new confirmation link to one of the tenant's unverified users (the users page's button)."""
        out = services.ConfirmationMails(public_base_url(request, settings))
        try:
            sent = await services.resend_verification(db, actor, principal, user_id, out)
        except Conflict as exc:  # verified meanwhile, or too many links today: said above the list
            return render(request, USERS, status=409, **{**await _users(db, principal), "refused": exc.detail})
        await services.send_confirmations(mailer, out)
        return redirect(request, "/app/users", f"We e-mailed a new confirmation link to {sent.email}.")

    @post("/app/users/keys", guards=[subscriber_pages], status_code=201)
    async def create_key(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> Response[Any]:
        """A new API key for the viewer, shown this once."""
        return await _create_key(request, db, actor, principal, "/app/users")

    @get("/app/users/keys/{key_id:uuid}/revoke", guards=[subscriber_pages])
    async def confirm_revoke(
        self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> Template:
        """Ask before revoking one of the viewer's keys."""
        key = await services.get_own_api_key(db, principal, key_id)
        return render(request, "users/revoke_key.html.j2", heading="Revoke API key", key=key, base="/app/users",
                      keys_base="/app/users/keys")  # fmt: skip

    @post("/app/users/keys/{key_id:uuid}/revoke", guards=[subscriber_pages], status_code=200)
    async def revoke(
        self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> Response[Any]:  # fmt: skip
        """Revoke one of the viewer's keys: it is refused from its next use on."""
        await services.revoke_own_api_key(db, actor, principal, key_id)
        return redirect(request, "/app/users", "The API key is revoked.")


class StaffKeyPages(Controller):
    include_in_schema = False
    guards = [staff_pages]

    @get("/staff/keys")
    async def keys(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, keys_cursor: FromQuery[str] = ""
    ) -> Template:
        """The viewer's own API keys (prefixes only)."""
        return render(request, STAFF_KEYS, **await _staff_context(db, principal, keys_cursor))

    @post("/staff/keys", status_code=201)
    async def create_key(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> Response[Any]:
        """A new API key for the viewer, shown this once."""
        return await _create_key(request, db, actor, principal, "/staff/keys")

    @get("/staff/keys/{key_id:uuid}/revoke")
    async def confirm_revoke(
        self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> Template:
        """Ask before revoking one of the viewer's keys."""
        key = await services.get_own_api_key(db, principal, key_id)
        return render(request, "users/revoke_key.html.j2", heading="Revoke API key", key=key, base="/staff/keys",
                      keys_base="/staff/keys")  # fmt: skip

    @post("/staff/keys/{key_id:uuid}/revoke", status_code=200)
    async def revoke(
        self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> Response[Any]:  # fmt: skip
        """Revoke one of the viewer's keys: it is refused from its next use on."""
        await services.revoke_own_api_key(db, actor, principal, key_id)
        return redirect(request, "/staff/keys", "The API key is revoked.")
