"""Identity per API.md: /me, staff, a tenant's users, and the status codes clients rely on."""

from __future__ import annotations

import httpx

from tests.helpers.api import Api


async def test_me_without_a_key_is_401_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401 and body["title"] and body["type"] and body["detail"]


async def test_me_with_an_unknown_key_is_401(client: httpx.AsyncClient) -> None:
    for header in ("Bearer dpa_not-a-real-key", "Bearer nonsense", "Basic abc", "Bearer "):
        response = await client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_me_describes_the_caller(admin: Api) -> None:
    owner = await admin.new_tenant(admin_email="Olga@Example.COM", admin_name="Olga")
    staff_me = (await admin.get("/me")).json()
    assert staff_me["role"] == "platform_admin" and staff_me["tenant_id"] is None

    me = await owner.get("/me")
    assert me.status_code == 200
    assert me.json() == {
        "id": owner.user_id,
        "email": "olga@example.com",
        "name": "Olga",
        "role": "owner",
        "tenant_id": owner.tenant_id,
        "email_verified": False,
        "email_verified_at": None,
        "email_verification": None,
    }


async def test_platform_admin_creates_a_tenant_whose_first_user_is_its_owner(admin: Api) -> None:
    response = await admin.post(
        "/tenants",
        {
            "name": "Acme",
            "legal_name": "Acme GmbH",
            "country": "de",
            "address": "Hauptstrasse 1, Berlin",
            "registration_number": "HRB 1",
            "contact_email": "privacy@acme.example",
            "admin_email": "owner@acme.example",
            "admin_name": "Ann Owner",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["country"] == "DE" and body["legal_name"] == "Acme GmbH" and body["admin_api_key"].startswith("dpa_")
    owner = Api(admin.client, body["admin_api_key"])
    assert (await owner.get("/me")).json()["role"] == "owner"
    tenant = await owner.get("/tenant")
    assert tenant.status_code == 200 and tenant.json()["id"] == body["id"]
    assert "admin_api_key" not in tenant.json()


async def test_only_platform_admins_create_tenants_and_staff(admin: Api) -> None:
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    body = {"name": "X", "legal_name": "X Ltd", "country": "IE", "admin_email": "a@x.example", "admin_name": "A"}
    for caller in (legal, owner):
        assert (await caller.post("/tenants", body)).status_code == 403
        staff = {"email": "s@processor.example", "name": "S", "role": "sales"}
        assert (await caller.post("/staff", staff)).status_code == 403


async def test_staff_creation_answers_id_and_key_once(admin: Api) -> None:
    response = await admin.post("/staff", {"email": "lee@processor.example", "name": "Lee", "role": "legal"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] and body["api_key"].startswith("dpa_")
    me = await Api(admin.client, body["api_key"]).get("/me")
    assert me.json()["role"] == "legal" and me.json()["tenant_id"] is None


async def test_staff_role_must_be_a_staff_role(admin: Api) -> None:
    response = await admin.post("/staff", {"email": "x@processor.example", "name": "X", "role": "owner"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["role"]


async def test_duplicate_email_is_a_conflict(admin: Api) -> None:
    body = {"email": "dup@processor.example", "name": "D", "role": "sales"}
    assert (await admin.post("/staff", body)).status_code == 201
    assert (await admin.post("/staff", {**body, "email": "DUP@processor.example"})).status_code == 409


async def test_owner_and_admin_add_users_to_their_own_tenant(admin: Api) -> None:
    owner = await admin.new_tenant()
    tenant_admin = await owner.new_user("admin")
    member = await tenant_admin.new_user("member")
    assert member.tenant_id == owner.tenant_id
    assert (await member.get("/me")).json()["role"] == "member"


async def test_members_and_staff_cannot_add_tenant_users(admin: Api) -> None:
    owner = await admin.new_tenant()
    member = await owner.new_user("member")
    legal = await admin.new_staff("legal")
    body = {"email": "n@x.example", "name": "N", "role": "member"}
    assert (await member.post("/users", body)).status_code == 403
    assert (await legal.post("/users", body)).status_code == 403
    assert (await admin.post("/users", body)).status_code == 403


async def test_only_an_owner_makes_another_owner(admin: Api) -> None:
    owner = await admin.new_tenant()
    tenant_admin = await owner.new_user("admin")
    body = {"email": "o2@x.example", "name": "O2", "role": "owner"}
    assert (await tenant_admin.post("/users", body)).status_code == 403
    assert (await owner.post("/users", body)).status_code == 201


async def test_user_role_must_be_a_subscriber_role(admin: Api) -> None:
    owner = await admin.new_tenant()
    response = await owner.post("/users", {"email": "x@x.example", "name": "X", "role": "platform_admin"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "role"


async def test_tenant_listing_is_for_staff_and_paginates(admin: Api) -> None:
    owners = [await admin.new_tenant() for _ in range(3)]
    sales = await admin.new_staff("sales")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await sales.get("/tenants", **params)).json()
        assert len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert {o.tenant_id for o in owners} <= set(seen)
    assert len(seen) == len(set(seen))
    assert (await owners[0].get("/tenants")).status_code == 403
    one = await sales.get(f"/tenants/{owners[0].tenant_id}")
    assert one.status_code == 200 and one.json()["id"] == owners[0].tenant_id


async def test_unknown_tenant_is_404_for_staff(admin: Api) -> None:
    response = await admin.get("/tenants/00000000-0000-7000-8000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_limit_above_200_is_422_naming_limit(admin: Api) -> None:
    response = await admin.get("/tenants", limit=201)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"
    bad_cursor = await admin.get("/tenants", cursor="!!!")
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
