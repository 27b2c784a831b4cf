"""Users, staff and API keys. Callers pass a session inside one transaction (`Database.transaction`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.users.keys import generate_api_key
from dpa_service.users.models import ApiKey, ApiKeyCreated, ApiKeyPublic, StaffCreate, User, UserCreate, UserCreated


async def _ensure_email_free(session: AsyncSession, tenant_id: uuid.UUID | None, email: str) -> None:
    owner = User.tenant_id == tenant_id if tenant_id else User.tenant_id.is_(None)
    taken = await session.scalar(select(func.count()).select_from(User).where(owner, User.email == email))
    if taken:
        raise Conflict(f"A user with e-mail {email} already exists here.")


async def add_user(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, email: str, name: str, role: Role
) -> tuple[User, ApiKey, str]:
    """A new user with a first API key; the key is returned in clear this once."""
    email = email.lower()
    await _ensure_email_free(session, tenant_id, email)
    user = User(tenant_id=tenant_id, email=email, name=name, role=role.value)
    session.add(user)
    await session.flush()  # the key's foreign key needs the user row first
    api_key, key = new_api_key(user, name="initial")
    session.add(api_key)
    await session.flush()
    return user, api_key, key


def new_api_key(user: User, name: str | None) -> tuple[ApiKey, str]:
    key, prefix, digest = generate_api_key()
    return ApiKey(tenant_id=user.tenant_id, user_id=user.id, name=name, prefix=prefix, key_hash=digest), key


def _created(user: User, api_key: ApiKey, key: str) -> UserCreated:
    return UserCreated(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        tenant_id=user.tenant_id,
        api_key=key,
        api_key_id=api_key.id,
    )


async def create_staff(session: AsyncSession, actor: Actor, data: StaffCreate) -> UserCreated:
    user, api_key, key = await add_user(session, tenant_id=None, email=data.email, name=data.name, role=Role(data.role))
    await audit.record(
        session,
        actor,
        "staff.created",
        "user",
        user.id,
        tenant_id=None,
        data={"email": user.email, "role": user.role, "api_key_prefix": api_key.prefix},
    )
    return _created(user, api_key, key)


async def create_tenant_user(
    session: AsyncSession, actor: Actor, principal: Principal, data: UserCreate
) -> UserCreated:
    tenant_id = principal.tenant_id
    if tenant_id is None:
        raise PermissionDenied("Only a Subscriber's owner or admin adds users to its tenant.")
    if data.role == Role.OWNER and principal.role != Role.OWNER:
        raise PermissionDenied("Only an owner can make another owner.")
    user, api_key, key = await add_user(
        session, tenant_id=tenant_id, email=data.email, name=data.name, role=Role(data.role)
    )
    await audit.record(
        session,
        actor,
        "user.created",
        "user",
        user.id,
        tenant_id=tenant_id,
        data={"email": user.email, "role": user.role, "api_key_prefix": api_key.prefix},
    )
    return _created(user, api_key, key)


async def create_own_api_key(
    session: AsyncSession, actor: Actor, principal: Principal, name: str | None
) -> ApiKeyCreated:
    user = await session.get(User, principal.user_id)
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
        tenant_id=principal.tenant_id,
        data={"user_id": str(user.id), "prefix": api_key.prefix, "name": name},
    )
    return ApiKeyCreated(**ApiKeyPublic.model_validate(api_key, from_attributes=True).model_dump(), api_key=key)


async def list_own_api_keys(
    session: AsyncSession, principal: Principal, *, after: uuid.UUID | None, limit: int
) -> Sequence[ApiKey]:
    query = select(ApiKey).where(ApiKey.user_id == principal.user_id).order_by(ApiKey.id).limit(limit + 1)
    if after is not None:
        query = query.where(ApiKey.id > after)
    return (await session.execute(query)).scalars().all()


async def revoke_own_api_key(session: AsyncSession, actor: Actor, principal: Principal, key_id: uuid.UUID) -> None:
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


async def bootstrap_platform_admin(session: AsyncSession, email: str, name: str) -> UserCreated:
    """The very first platform admin; refused once one exists."""
    existing = await session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.PLATFORM_ADMIN.value)
    )
    if existing:
        raise Conflict("A platform admin already exists; ask them for a key (POST /api/v1/staff).")
    if "@" not in email:
        raise InvalidInput.field("email", "must be an e-mail address")
    user, api_key, key = await add_user(session, tenant_id=None, email=email, name=name, role=Role.PLATFORM_ADMIN)
    await audit.record(
        session,
        Actor.system("bootstrap"),
        "staff.bootstrapped",
        "user",
        user.id,
        tenant_id=None,
        data={"email": user.email, "role": user.role, "api_key_prefix": api_key.prefix},
    )
    return _created(user, api_key, key)
