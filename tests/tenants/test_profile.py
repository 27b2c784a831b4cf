"""A Subscriber's own profile: read by any of its users, changed by owner/admin as a JSON merge patch."""

from __future__ import annotations

from tests.helpers.api import Api


async def test_owner_patches_profile_fields_and_keeps_the_rest(admin: Api) -> None:
    owner = await admin.new_tenant(address="Old Street 1")
    response = await owner.patch(
        "/tenant", {"dpo_name": "Dana DPO", "dpo_email": "dpo@x.example", "address": None, "legal_name": "New Name AG"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dpo_name"] == "Dana DPO" and body["address"] is None and body["legal_name"] == "New Name AG"
    assert body["country"] == "DE"
    again = (await owner.get("/tenant")).json()
    assert again == body


async def test_required_profile_fields_cannot_be_cleared_and_nothing_changes(admin: Api) -> None:
    owner = await admin.new_tenant()
    before = (await owner.get("/tenant")).json()
    response = await owner.patch("/tenant", {"legal_name": None, "country": "ZZ", "dpo_name": "changed?"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert "country" in fields
    response = await owner.patch("/tenant", {"legal_name": None, "dpo_name": "changed?"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"legal_name"}
    assert (await owner.get("/tenant")).json() == before


async def test_unknown_profile_field_is_refused(admin: Api) -> None:
    owner = await admin.new_tenant()
    response = await owner.patch("/tenant", {"tenant_id": "00000000-0000-0000-0000-000000000000"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "tenant_id"


async def test_members_read_but_cannot_change_the_profile(admin: Api) -> None:
    owner = await admin.new_tenant()
    member = await owner.new_user("member")
    assert (await member.get("/tenant")).status_code == 200
    assert (await member.patch("/tenant", {"dpo_name": "X"})).status_code == 403


async def test_staff_have_no_own_tenant_profile(admin: Api) -> None:
    assert (await admin.get("/tenant")).status_code == 403
