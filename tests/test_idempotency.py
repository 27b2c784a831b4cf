"""Idempotency-Key on creates: one object per key, the first response replayed, other bodies refused."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from dpa_service.core.db import Database, Scope
from dpa_service.tenants.models import Tenant
from tests.helpers.api import Api

TENANT = {
    "name": "Once Ltd",
    "legal_name": "Once Ltd",
    "country": "IE",
    "admin_email": "owner@once.example",
    "admin_name": "Orla",
}


async def count_tenants(db: Database, legal_name: str) -> int:
    async with db.transaction(Scope.system(), write=False) as session:
        return await session.scalar(select(func.count()).select_from(Tenant).where(Tenant.legal_name == legal_name))


async def test_fifty_concurrent_identical_creates_make_one_tenant(admin: Api, db: Database) -> None:
    legal_name = f"Once {uuid.uuid4().hex[:6]} Ltd"
    body = {**TENANT, "legal_name": legal_name}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    responses = await asyncio.gather(*(admin.post("/tenants", body, headers) for _ in range(50)))
    assert {r.status_code for r in responses} == {201}, {r.status_code: r.text for r in responses}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.json()["admin_api_key"] for r in responses}) == 1
    assert await count_tenants(db, legal_name) == 1
    replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replays) == 49


async def test_same_key_and_body_replays_the_first_response(admin: Api, db: Database) -> None:
    headers = {"Idempotency-Key": "create-staff-1"}
    body = {"email": "once@processor.example", "name": "Once", "role": "sales"}
    first = await admin.post("/staff", body, headers)
    # Same JSON, different key order and spacing: still the same request.
    second = await admin.client.post(
        "/api/v1/staff",
        content=b'{ "role": "sales",  "name": "Once", "email": "once@processor.example" }',
        headers={"Authorization": f"Bearer {admin.key}", "Content-Type": "application/json", **headers},
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()


async def test_same_key_with_another_body_is_422_and_creates_nothing(admin: Api, db: Database) -> None:
    headers = {"Idempotency-Key": "k-422"}
    legal_name = f"Other {uuid.uuid4().hex[:6]} Ltd"
    assert (await admin.post("/tenants", TENANT | {"legal_name": "First " + legal_name}, headers)).status_code == 201
    response = await admin.post("/tenants", TENANT | {"legal_name": legal_name}, headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await count_tenants(db, legal_name) == 0


async def test_keys_are_scoped_to_the_calling_user(admin: Api) -> None:
    other_admin = await admin.new_staff("platform_admin")
    headers = {"Idempotency-Key": "shared-key"}
    one = await admin.post("/api-keys", {"name": "x"}, headers)
    two = await other_admin.post("/api-keys", {"name": "x"}, headers)
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


async def test_a_failed_create_does_not_burn_the_key(admin: Api) -> None:
    headers = {"Idempotency-Key": "retry-after-fix"}
    body = {"email": "dupe@processor.example", "name": "D", "role": "legal"}
    assert (await admin.post("/staff", body)).status_code == 201
    assert (await admin.post("/staff", body, headers)).status_code == 409
    fixed = await admin.post("/staff", {**body, "email": "fixed@processor.example"}, headers)
    assert fixed.status_code == 201


async def test_the_stored_response_does_not_hold_the_new_key_in_clear(admin: Api, db: Database) -> None:
    from dpa_service.http.idempotency import IdempotencyRecord

    response = await admin.post("/api-keys", {"name": "secret"}, {"Idempotency-Key": "no-clear-secrets"})
    key = response.json()["api_key"]
    async with db.transaction(Scope.system(), write=False) as session:
        stored = (await session.execute(select(IdempotencyRecord.response))).scalars().all()
    assert stored and all(key.encode() not in blob for blob in stored)
