"""API keys: shown once, stored as a hash, listed by prefix, revoked at once."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select

from dpa_service.core.db import Database, Scope
from dpa_service.users.models import ApiKey
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated


async def test_a_new_key_is_shown_once_and_works(admin: Api) -> None:
    owner = await admin.new_tenant()
    response = await owner.post("/api-keys", {"name": "ci"})
    assert response.status_code == 201
    body = response.json()
    assert body["api_key"].startswith(body["prefix"]) and body["name"] == "ci"
    assert (await Api(owner.client, body["api_key"]).get("/me")).json()["id"] == owner.user_id

    listed = (await owner.get("/api-keys")).json()["items"]
    assert body["id"] in {k["id"] for k in listed}
    assert all("api_key" not in k and "key_hash" not in k for k in listed)
    assert body["api_key"] not in str(listed)


async def test_a_key_without_a_body_is_fine(admin: Api) -> None:
    response = await admin.client.post("/api/v1/api-keys", headers={"Authorization": f"Bearer {admin.key}"})
    assert response.status_code == 201, response.text


async def test_only_the_sha256_of_a_key_is_stored(admin: Api, db: Database) -> None:
    body = (await admin.post("/api-keys", {"name": "x"})).json()
    async with db.transaction(Scope.system(), write=False) as session:
        stored = (await session.execute(select(ApiKey).where(ApiKey.id == uuid.UUID(body["id"])))).scalar_one()
    assert stored.key_hash == hashlib.sha256(body["api_key"].encode()).hexdigest()
    assert body["api_key"] not in repr(stored.model_dump())
    assert len(body["api_key"]) - len("dpa_") >= 22  # at least 128 random bits, URL-safe base64


async def test_a_revoked_key_is_refused_on_its_next_request(admin: Api) -> None:
    owner = await admin.new_tenant()
    created = (await owner.post("/api-keys", {"name": "laptop"})).json()
    laptop = Api(owner.client, created["api_key"])
    assert (await laptop.get("/me")).status_code == 200
    assert (await owner.delete(f"/api-keys/{created['id']}")).status_code == 204
    assert (await laptop.get("/me")).status_code == 401
    listed = {k["id"]: k for k in (await owner.get("/api-keys")).json()["items"]}
    assert listed[created["id"]]["revoked_at"] is not None


async def test_one_can_revoke_the_key_one_is_using(admin: Api) -> None:
    owner = await admin.new_tenant()
    key_id = (await owner.get("/api-keys")).json()["items"][0]["id"]
    assert (await owner.delete(f"/api-keys/{key_id}")).status_code == 204
    assert (await owner.get("/me")).status_code == 401


async def test_another_users_key_is_404_even_in_the_same_tenant(admin: Api) -> None:
    owner = await admin.new_tenant()
    member = await owner.new_user("member")
    owner_key_id = (await owner.get("/api-keys")).json()["items"][0]["id"]
    assert (await member.delete(f"/api-keys/{owner_key_id}")).status_code == 404
    assert (await owner.get("/me")).status_code == 200


async def test_keys_and_tenants_are_isolated_between_tenants(admin: Api) -> None:
    tenant_a = await admin.new_tenant()
    tenant_b = await admin.new_tenant()
    key_a = (await tenant_a.post("/api-keys", {"name": "a"})).json()
    await assert_isolated(
        tenant_a,
        tenant_b,
        [
            Probe(
                "tenant A's API key",
                key_a["id"],
                direct=[("DELETE", f"/api-keys/{key_a['id']}", None)],
                lists=["/api-keys"],
            ),
            Probe("tenant A's audit trail", tenant_a.tenant_id or "", lists=["/audit-events"]),
        ],
    )
    own = (await tenant_b.get("/tenant")).json()
    assert own["id"] == tenant_b.tenant_id
    assert (await Api(admin.client, key_a["api_key"]).get("/me")).status_code == 200
