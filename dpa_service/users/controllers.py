"""Identity endpoints: who am I, staff, a tenant's users, and one's own API keys."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from dpa_service.core.identity import Principal
from dpa_service.http.auth import platform_admin_only, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, MailerDep, PrincipalDep, SettingsDep, public_base_url
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.users import services
from dpa_service.users.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    Me,
    StaffCreate,
    UserCreate,
    UserCreated,
    VerificationSent,
)


class IdentityController(Controller):
    path = "/api/v1"
    tags = ["Identity"]

    @get("/me", operation_id="getMe")
    async def me(self, principal: PrincipalDep, db: DbDep) -> Me:
        """The caller: id, e-mail, name, role, tenant (`tenant_id` is null for staff) and `email_verified` (with
        `email_verified_at` and `email_verification`: `confirmation_link` or `sign_in_link`)."""
        return await services.me(db, principal)

    @post("/staff", guards=[platform_admin_only], operation_id="createStaff", responses=created(UserCreated))
    async def create_staff(
        self, data: JSONBody[StaffCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep,
        mailer: MailerDep, settings: SettingsDep,
    ) -> Response[bytes]:  # fmt: skip
        """The platform admin adds a member of staff (`legal`, `sales`, `platform_admin`); the key is shown once,
        and the new address is e-mailed a link to confirm it. An address any account uses is 409 naming `email`."""
        out = services.ConfirmationMails(public_base_url(request, settings))
        work = partial(services.create_staff, db, actor, data, out, request.user.name)
        response = await create_once(db, request, request.user, work)
        await services.send_confirmations(mailer, out)  # a replay opened no link: nothing is sent twice
        return response

    @post("/users", guards=[subscriber_admin], operation_id="createUser", responses=created(UserCreated))
    async def create_user(
        self, data: JSONBody[UserCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep,
        mailer: MailerDep, settings: SettingsDep,
    ) -> Response[bytes]:  # fmt: skip
        """An owner or admin adds a user to its own tenant (only an owner makes another owner); the new address is
        e-mailed a link to confirm it. An address any account uses (here, another tenant's, or staff's) is 409
        naming `email`."""
        out = services.ConfirmationMails(public_base_url(request, settings))
        work = partial(services.create_tenant_user, db, actor, request.user, data, out)
        response = await create_once(db, request, request.user, work)
        await services.send_confirmations(mailer, out)
        return response

    @post("/users/{user_id:uuid}/verification", operation_id="resendVerification", status_code=202)
    async def resend_verification(
        self, user_id: FromPath[uuid.UUID], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep,
        mailer: MailerDep, settings: SettingsDep,
    ) -> VerificationSent:  # fmt: skip
        """E-mail a new confirmation link to an unverified user: oneself, a user of one's tenant (owner, admin),
        or a member of staff (platform admin); a verified address is 409, anyone else 404."""
        out = services.ConfirmationMails(public_base_url(request, settings))
        sent = await services.resend_verification(db, actor, request.user, user_id, out)
        await services.send_confirmations(mailer, out)
        return sent


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["Identity"]

    @post("/", operation_id="createApiKey", responses=created(ApiKeyCreated))
    async def create_key(
        self,
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        data: JSONBody[ApiKeyCreate | None] = None,
    ) -> Response[bytes]:
        """A new API key for the caller (`name` optional); the key is shown this once, only its prefix later."""
        work = partial(services.create_own_api_key, db, actor, request.user, data.name if data else None)
        return await create_once(db, request, request.user, work)

    @get("/", operation_id="listApiKeys")
    async def list_keys(
        self, principal: PrincipalDep, db: DbDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[ApiKeyPublic]:
        """The caller's own keys, by prefix (never the key itself)."""
        return await services.list_own_api_keys(db, principal, cursor=cursor, limit=limit)

    @delete("/{key_id:uuid}", operation_id="revokeApiKey", status_code=204)
    async def revoke_key(
        self, key_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> None:
        """Revoke one of the caller's keys: it is refused (401) from its next use on."""
        await services.revoke_own_api_key(db, actor, principal, key_id)
