"""Users, staff and API keys; each public function is one transaction (see core.db)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.users.keys import authenticate, generate_api_key
from dpa_service.users.models import (
    ApiKey,
    ApiKeyCreated,
    ApiKeyPublic,
    EmailVerified,
    Me,
    StaffCreate,
    User,
    UserCreate,
    UserCreated,
    UserPublic,
    VerificationMethod,
)
from dpa_service.users.verification import (
    ConfirmationMails,
    Verification,
    open_confirmation,
    verification,
    verification_of,
)
from dpa_service.users.verification import (
    resend as resend_verification,
)
from dpa_service.users.verification import (
    send as send_confirmations,
)

# Other domains reach these through this module (the import contracts: another domain only through its services).
__all__ = [
    "ConfirmationMails",
    "Verification",
    "VerificationMethod",
    "authenticate",
    "resend_verification",
    "send_confirmations",
    "verification_of",
]


@dataclass(frozen=True)
class NewUser:
    """A user just made, with its first API key in clear (shown once)."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    email: str
    name: str
    role: str
    api_key: str
    api_key_id: uuid.UUID
    api_key_prefix: str

    def created(self) -> UserCreated:
        return UserCreated(
            id=self.id,
            email=self.email,
            name=self.name,
            role=self.role,
            tenant_id=self.tenant_id,
            api_key=self.api_key,
            api_key_id=self.api_key_id,
        )


def _verified(user: User) -> dict[str, Any]:
    found = verification(user)
    return EmailVerified(
        email_verified=found is not None,
        email_verified_at=found.at if found else None,
        email_verification=found.method if found else None,
    ).model_dump()


def user_public(user: User) -> UserPublic:
    return UserPublic(id=user.id, email=user.email, name=user.name, role=user.role, created_at=user.created_at,
                      **_verified(user))  # fmt: skip


async def me(db: Database, principal: Principal) -> Me:
    """The caller, with whether its address is verified (read afresh: a confirmation may have just landed)."""
    async with db.transaction(principal.scope, write=False) as session:
        user = await session.get(User, principal.user_id)
    if user is None:  # deleted between authentication and now
        raise NotFound("User not found.")
    return Me(id=user.id, email=user.email, name=user.name, role=user.role, tenant_id=user.tenant_id,
              **_verified(user))  # fmt: skip


def _taken(field: str) -> Conflict:
    # Which account uses it is not said: it may be another tenant's.
    return Conflict.field(field, "is already used by another account (an address belongs to one account only)")


def new_api_key(user: User, name: str | None) -> tuple[ApiKey, str]:
    key, prefix, digest = generate_api_key()
    return ApiKey(tenant_id=user.tenant_id, user_id=user.id, name=name, prefix=prefix, key_hash=digest), key


async def add_user(
    db: Database, scope: Scope, *, tenant_id: uuid.UUID | None, email: str, name: str, role: Role,
    confirmations: ConfirmationMails | None = None, added_by: str | None = None, email_field: str = "email",
) -> NewUser:  # fmt: skip
    """A new user with a first API key (for a tenant being created, or staff); not audited here: the caller's
    event says why the user exists. With `confirmations`, a confirmation link for the address waits there to be
    e-mailed after the commit (the HTTP paths; the CLI's bootstrap and demo have no mailbox to send it to).
    An address another account uses is a 409 naming `email_field`."""
    async with db.transaction(scope) as session:
        email = email.lower()
        user = User(tenant_id=tenant_id, email=email, name=name, role=role.value)
        session.add(user)
        try:
            # The key's foreign key needs the user row first. The unique index on the address decides whether it is
            # free: it sees every tenant's rows, where a query in this tenant's scope would not (row-level
            # security), and it settles two concurrent requests. A failed insert rolls the whole change back.
            await session.flush()
        except IntegrityError as exc:
            raise _taken(email_field) from exc
        if confirmations is not None:
            await open_confirmation(session, user, confirmations, added_by=added_by)
        api_key, key = new_api_key(user, name="initial")
        session.add(api_key)
        await session.flush()
        return NewUser(user.id, tenant_id, user.email, user.name, user.role, key, api_key.id, api_key.prefix)


async def _add_audited(
    db: Database, actor: Actor, scope: Scope, action: str, *, tenant_id: uuid.UUID | None, email: str, name: str,
    role: Role, confirmations: ConfirmationMails | None = None, added_by: str | None = None,
) -> UserCreated:  # fmt: skip
    async with db.transaction(scope) as session:
        new = await add_user(
            db, scope, tenant_id=tenant_id, email=email, name=name, role=role, confirmations=confirmations,
            added_by=added_by,
        )  # fmt: skip
        await audit.record(
            session,
            actor,
            action,
            "user",
            new.id,
            tenant_id=tenant_id,
            data={
                "email": new.email,
                "role": new.role,
                "api_key_prefix": new.api_key_prefix,
                "verification_sent": confirmations is not None,
            },
        )
        return new.created()


async def create_staff(
    db: Database, actor: Actor, data: StaffCreate, confirmations: ConfirmationMails | None = None,
    added_by: str | None = None,
) -> UserCreated:  # fmt: skip
    """A member of the processor's staff (legal, sales, platform admin) and a first API key; with
    `confirmations`, a link to confirm the address."""
    return await _add_audited(
        db, actor, Scope.system(), "staff.created", tenant_id=None, email=data.email, name=data.name,
        role=Role(data.role), confirmations=confirmations, added_by=added_by,
    )  # fmt: skip


async def create_tenant_user(
    db: Database, actor: Actor, principal: Principal, data: UserCreate, confirmations: ConfirmationMails | None = None
) -> UserCreated:
    """A user of the caller's own tenant; only an owner makes another owner. With `confirmations`, a link to
    confirm the address (the new user is unverified until it is opened)."""
    if principal.tenant_id is None:
        raise PermissionDenied("Only a Subscriber's owner or admin adds users to its tenant.")
    if data.role == Role.OWNER and principal.role != Role.OWNER:
        raise PermissionDenied("Only an owner can make another owner.")
    return await _add_audited(
        db, actor, principal.scope, "user.created", tenant_id=principal.tenant_id, email=data.email, name=data.name,
        role=Role(data.role), confirmations=confirmations, added_by=principal.name,
    )  # fmt: skip


async def create_own_api_key(db: Database, actor: Actor, principal: Principal, name: str | None) -> ApiKeyCreated:
    return await issue_api_key(db, actor, principal.scope, principal.user_id, name)


async def issue_api_key(
    db: Database, actor: Actor, scope: Scope, user_id: uuid.UUID, name: str | None
) -> ApiKeyCreated:
    """A new key for an existing user (shown this once), audited in the user's chain."""
    async with db.transaction(scope) as session:
        user = await session.get(User, user_id)
        if user is None:  # the user vanished between authentication and now
            raise NotFound("User not found.")
        api_key, key = new_api_key(user, name)
        session.add(api_key)
        await session.flush()
        await audit.record(
            session,
            actor,
            "api_key.created",
            "api_key",
            api_key.id,
            tenant_id=user.tenant_id,
            data={"user_id": str(user.id), "prefix": api_key.prefix, "name": name},
        )
        return ApiKeyCreated(**ApiKeyPublic.model_validate(api_key, from_attributes=True).model_dump(), api_key=key)


async def list_own_api_keys(
    db: Database, principal: Principal, *, cursor: str | None, limit: int
) -> Page[ApiKeyPublic]:
    query = select(ApiKey).where(col(ApiKey.user_id) == principal.user_id).order_by(col(ApiKey.id)).limit(limit + 1)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(ApiKey.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, lambda k: ApiKeyPublic.model_validate(k, from_attributes=True), lambda k: str(k.id))


async def list_tenant_users(db: Database, principal: Principal, *, cursor: str | None, limit: int) -> Page[UserPublic]:
    """The users of the caller's own tenant, oldest first (staff have no tenant: an empty list)."""
    if principal.tenant_id is None:
        return Page[UserPublic](items=[], next_cursor=None)
    query = select(User).where(col(User.tenant_id) == principal.tenant_id).order_by(col(User.id)).limit(limit + 1)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(User.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, user_public, lambda u: str(u.id))


async def get_own_api_key(db: Database, principal: Principal, key_id: uuid.UUID) -> ApiKeyPublic:
    """One of the caller's own keys, by prefix (another user's is not found)."""
    async with db.transaction(principal.scope, write=False) as session:
        api_key = await session.get(ApiKey, key_id)
    if api_key is None or api_key.user_id != principal.user_id:
        raise NotFound("API key not found.")
    return ApiKeyPublic.model_validate(api_key, from_attributes=True)


async def revoke_own_api_key(db: Database, actor: Actor, principal: Principal, key_id: uuid.UUID) -> None:
    async with db.transaction(principal.scope) as session:
        api_key = await session.get(ApiKey, key_id, with_for_update=True)
        if api_key is None or api_key.user_id != principal.user_id:
            raise NotFound("API key not found.")
        if api_key.revoked_at is not None:
            return
        api_key.revoked_at = utcnow()
        await audit.record(
            session,
            actor,
            "api_key.revoked",
            "api_key",
            api_key.id,
            tenant_id=principal.tenant_id,
            data={"user_id": str(api_key.user_id), "prefix": api_key.prefix},
        )


async def bootstrap_platform_admin(db: Database, email: str, name: str) -> UserCreated:
    """The very first platform admin; refused once one exists. No confirmation link is sent: `dpa bootstrap` runs
    at a console with no base URL for links and often no mail yet. The admin verifies by signing in with an e-mailed
    link, or asks for a confirmation link (`POST /api/v1/users/{own id}/verification`)."""
    if "@" not in email:
        raise InvalidInput.field("email", "must be an e-mail address")
    async with db.transaction(Scope.system()) as session:
        existing = await session.scalar(
            select(func.count()).select_from(User).where(col(User.role) == Role.PLATFORM_ADMIN.value)
        )
        if existing:
            raise Conflict("A platform admin already exists; ask them for a key (POST /api/v1/staff).")
        return await _add_audited(
            db, Actor.system("bootstrap"), Scope.system(), "staff.bootstrapped", tenant_id=None, email=email,
            name=name, role=Role.PLATFORM_ADMIN,
        )  # fmt: skip


@dataclass(frozen=True)
class StaffMember:
    id: uuid.UUID
    email: str
    name: str
    role: Role


async def staff_member(db: Database, email: str, role: Role) -> StaffMember | None:
    """A member of staff with this e-mail and role (the configured auto-countersigner, a CLI author)."""
    async with db.transaction(Scope.system(), write=False) as session:
        user = await session.scalar(
            select(User).where(
                col(User.tenant_id).is_(None), col(User.email) == email.lower(), col(User.role) == role.value
            )
        )
    return StaffMember(user.id, user.email, user.name, Role(user.role)) if user else None


async def notification_addresses(
    db: Database, tenant_ids: set[uuid.UUID], roles: tuple[Role, ...] = (Role.OWNER, Role.ADMIN)
) -> dict[uuid.UUID, list[str]]:
    """Each tenant's owners' and admins' addresses (who is told of notices)."""
    found: dict[uuid.UUID, list[str]] = {tenant_id: [] for tenant_id in tenant_ids}
    if not tenant_ids:
        return found
    async with db.transaction(Scope.system(), write=False) as session:
        rows = await session.execute(
            select(col(User.tenant_id), col(User.email)).where(
                col(User.tenant_id).in_(tenant_ids), col(User.role).in_([role.value for role in roles])
            )
        )
        for tenant_id, email in rows.all():
            assert tenant_id is not None  # the IN filter above: staff (no tenant) are never selected
            found[tenant_id].append(email)
    return found


async def staff_addresses(db: Database, roles: set[str]) -> dict[str, list[str]]:
    """The addresses of the processor's staff holding each of `roles` (who is told of a notice to the processor,
    such as a Subscriber's breach report to legal). Tenants' users are never selected, whatever the role."""
    found: dict[str, list[str]] = {role: [] for role in roles}
    if not roles:
        return found
    async with db.transaction(Scope.system(), write=False) as session:
        rows = await session.execute(
            select(col(User.role), col(User.email)).where(col(User.tenant_id).is_(None), col(User.role).in_(roles))
        )
        for role, email in rows.all():
            found[role].append(email)
    return found


async def staff_names(db: Database, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of members of staff (who wrote or approved a template version); other ids are left out."""
    if not user_ids:
        return {}
    async with db.transaction(Scope.system(), write=False) as session:
        rows = await session.execute(
            select(col(User.id), col(User.name)).where(col(User.id).in_(user_ids), col(User.tenant_id).is_(None))
        )
        return {user_id: name for user_id, name in rows.all()}


async def tenant_user_label(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> str | None:
    """ "Name <e-mail>" of a user of `tenant_id` (who requested a signature, for the certificate); None if unknown."""
    if user_id is None:
        return None
    async with db.transaction(Scope.tenant(tenant_id), write=False) as session:
        row = (
            await session.execute(
                select(col(User.name), col(User.email)).where(col(User.id) == user_id, col(User.tenant_id) == tenant_id)
            )
        ).first()
    return f"{row[0]} <{row[1]}>" if row else None
