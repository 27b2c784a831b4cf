"""Demo data for trying the service out: staff, two Subscribers, and a fresh key for each person."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dpa_service.audit import services as audit
from dpa_service.core.identity import Actor, Role
from dpa_service.tenants.models import Tenant, TenantCreate
from dpa_service.tenants.services import create_tenant
from dpa_service.users.models import User
from dpa_service.users.services import add_user, new_api_key

DEMO_STAFF = (
    ("admin@processor.example", "Pat Platform", Role.PLATFORM_ADMIN),
    ("legal@processor.example", "Lee Legal", Role.LEGAL),
    ("sales@processor.example", "Sam Sales", Role.SALES),
)
DEMO_TENANTS = (
    TenantCreate(
        name="Acme Retail",
        legal_name="Acme Retail GmbH",
        country="DE",
        address="Friedrichstrasse 1, 10117 Berlin, Germany",
        registration_number="HRB 123456",
        contact_email="privacy@acme-retail.example",
        admin_email="owner@acme-retail.example",
        admin_name="Alex Acme",
    ),
    TenantCreate(
        name="Globex Travel",
        legal_name="Globex Travel B.V.",
        country="NL",
        address="Herengracht 100, 1015 BS Amsterdam, Netherlands",
        registration_number="KvK 87654321",
        contact_email="dpo@globex-travel.example",
        admin_email="owner@globex-travel.example",
        admin_name="Gina Globex",
    ),
)


async def _fresh_key(session: AsyncSession, user: User) -> str:
    api_key, key = new_api_key(user, name="demo")
    session.add(api_key)
    await session.flush()
    await audit.record(
        session,
        Actor.system("demo"),
        "api_key.created",
        "api_key",
        api_key.id,
        tenant_id=user.tenant_id,
        data={"user_id": str(user.id), "prefix": api_key.prefix, "name": "demo"},
    )
    return key


async def _approve_shipped_templates(session: AsyncSession, actor: Actor) -> dict[str, str]:
    """Import the shipped templates and have the demo legal user approve any key with no approved version."""
    from dpa_service.template_versions import services as templates
    from dpa_service.template_versions.models import TemplateStatus, TemplateVersion

    await templates.sync_from_files(session, actor)
    legal = await session.scalar(select(User).where(User.tenant_id.is_(None), User.role == Role.LEGAL.value))
    assert legal is not None, "demo legal user missing"
    reviewer = Actor(user_id=legal.id, role=legal.role, tenant_id=None, user_agent="dpa demo")
    approved: dict[str, str] = {}
    keys = (await session.execute(select(TemplateVersion.key).distinct())).scalars().all()
    for key in keys:
        current = await templates.current_version(session, key)
        if current is None:
            latest = (
                (
                    await session.execute(
                        select(TemplateVersion)
                        .where(TemplateVersion.key == key, TemplateVersion.status == TemplateStatus.DRAFT.value)
                        .order_by(TemplateVersion.version.desc())
                    )
                )
                .scalars()
                .first()
            )
            if latest is None:
                continue
            await templates.transition(session, actor, latest.id, "submit")
            current = await templates.transition(session, reviewer, latest.id, "approve")
        approved[key] = f"v{current.version} approved"
    return approved


async def seed_demo(session: AsyncSession) -> dict[str, Any]:
    actor = Actor.system("demo")
    out: dict[str, Any] = {"staff": {}, "tenants": {}}
    for email, name, role in DEMO_STAFF:
        user = await session.scalar(select(User).where(User.tenant_id.is_(None), User.email == email))
        if user is None:
            user, api_key, key = await add_user(session, tenant_id=None, email=email, name=name, role=role)
            await audit.record(
                session,
                actor,
                "staff.created",
                "user",
                user.id,
                tenant_id=None,
                data={"email": email, "role": role.value, "api_key_prefix": api_key.prefix},
            )
        else:
            key = await _fresh_key(session, user)
        out["staff"][role.value] = {"email": email, "api_key": key}
    out["templates"] = await _approve_shipped_templates(session, actor)
    for data in DEMO_TENANTS:
        tenant = await session.scalar(select(Tenant).where(Tenant.legal_name == data.legal_name))
        if tenant is None:
            created = await create_tenant(session, actor, data)
            tenant_id, key = created.id, created.admin_api_key
        else:
            owner = await session.scalar(
                select(User).where(User.tenant_id == tenant.id, User.email == data.admin_email)
            )
            assert owner is not None, "demo tenant without its owner"
            tenant_id, key = tenant.id, await _fresh_key(session, owner)
        out["tenants"][data.name] = {"id": str(tenant_id), "owner_email": data.admin_email, "api_key": key}
    return out
