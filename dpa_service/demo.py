"""Demo data for trying the service out: staff, two Subscribers, the shipped templates approved, and a fresh key for
each person (idempotent: a second run only hands out new keys).

The personas are fictitious: the seed neither marks their addresses verified nor e-mails them confirmation links.
Signing in with an e-mailed sign-in link (the mail log is their inbox) verifies one, as it would a real user; until
then a persona's own signing link goes to that inbox instead of its screen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor, Role
from dpa_service.template_versions import services as templates
from dpa_service.template_versions.models import TemplateStatus, TemplateVersion
from dpa_service.tenants.models import Tenant, TenantCreate
from dpa_service.tenants.services import create_tenant
from dpa_service.users.models import StaffCreate, StaffRole, User
from dpa_service.users.services import create_staff, issue_api_key

DEMO_STAFF = (
    ("admin@processor.example", "Pat Platform", Role.PLATFORM_ADMIN),
    ("legal@processor.example", "Lee Legal", Role.LEGAL),
    ("sales@processor.example", "Sam Sales", Role.SALES),
)
# How a person signs in to the demo's pages (printed with the keys; the README says the same).
SIGN_IN = (
    "open http://127.0.0.1:8000/login, type a persona's email and open the sign-in link the service writes to "
    "var/mail/outbox.jsonl (no mail leaves the machine), or sign in there with the persona's api_key"
)
DEMO_TENANTS = (
    TenantCreate(
        name="Acme Retail",
        legal_name="Acme Retail GmbH",
        country="DE",
        address="Friedrichstrasse 1, 10117 Berlin",
        registration_number="HRB 123456",
        contact_email="privacy@acme-retail.example",
        admin_email="owner@acme-retail.example",
        admin_name="Alex Acme",
    ),
    TenantCreate(
        name="Globex Travel",
        legal_name="Globex Travel B.V.",
        country="NL",
        address="Herengracht 100, 1015 BS Amsterdam",
        registration_number="KvK 87654321",
        contact_email="dpo@globex-travel.example",
        admin_email="owner@globex-travel.example",
        admin_name="Gina Globex",
    ),
)


async def _fresh_key(db: Database, user: User) -> str:
    return (await issue_api_key(db, Actor.system("demo"), Scope.system(), user.id, "demo")).api_key


async def _approve_shipped_templates(db: Database, actor: Actor, legal: Actor) -> dict[str, str]:
    """Import the shipped templates and have the demo legal user approve any key with no approved version."""
    await templates.sync_from_files(db, actor)
    async with db.transaction(Scope.system(), write=False) as session:
        keys = (await session.execute(select(col(TemplateVersion.key)).distinct())).scalars().all()
    approved: dict[str, str] = {}
    for key in keys:
        current = await templates.current_version(db, Scope.system(), key)
        if current is None:
            async with db.transaction(Scope.system(), write=False) as session:
                latest = (
                    await session.execute(
                        select(TemplateVersion)
                        .where(
                            col(TemplateVersion.key) == key, col(TemplateVersion.status) == TemplateStatus.DRAFT.value
                        )
                        .order_by(col(TemplateVersion.version).desc())
                    )
                ).scalars().first()  # fmt: skip
            if latest is None:
                continue
            await templates.transition(db, actor, latest.id, "submit")
            done = await templates.transition(db, legal, latest.id, "approve")
            approved[key] = f"v{done.version} approved"
        else:
            approved[key] = f"v{current.version} approved"
    return approved


async def _staff(db: Database, actor: Actor) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for email, name, role in DEMO_STAFF:
        async with db.transaction(Scope.system(), write=False) as session:
            user = await session.scalar(select(User).where(col(User.tenant_id).is_(None), col(User.email) == email))
        if user is None:
            key = (
                await create_staff(db, actor, StaffCreate(email=email, name=name, role=StaffRole(role.value)))
            ).api_key
        else:
            key = await _fresh_key(db, user)
        out[role.value] = {"email": email, "api_key": key}
    return out


async def seed_demo(db: Database) -> dict[str, Any]:
    actor = Actor.system("demo")
    out: dict[str, Any] = {"staff": await _staff(db, actor), "tenants": {}}
    legal = await _legal_actor(db)
    out["templates"] = await _approve_shipped_templates(db, actor, legal)
    for data in DEMO_TENANTS:
        async with db.transaction(Scope.system(), write=False) as session:
            tenant = await session.scalar(select(Tenant).where(col(Tenant.legal_name) == data.legal_name))
            owner = (
                await session.scalar(
                    select(User).where(col(User.tenant_id) == tenant.id, col(User.email) == data.admin_email)
                )
                if tenant
                else None
            )
        if tenant is None:
            created = await create_tenant(db, actor, data)
            tenant_id, key = created.id, created.admin_api_key
        else:
            assert owner is not None, "demo tenant without its owner"
            tenant_id, key = tenant.id, await _fresh_key(db, owner)
        out["tenants"][data.name] = {
            "id": str(tenant_id),
            "owner_email": data.admin_email,
            "email": data.admin_email,
            "api_key": key,
        }
    out["sign_in"] = SIGN_IN
    return out


async def _legal_actor(db: Database) -> Actor:
    async with db.transaction(Scope.system(), write=False) as session:
        legal = await session.scalar(
            select(User).where(col(User.tenant_id).is_(None), col(User.role) == Role.LEGAL.value)
        )
    assert legal is not None, "demo legal user missing"
    return Actor(user_id=legal.id, role=legal.role, tenant_id=None, user_agent="dpa demo")
