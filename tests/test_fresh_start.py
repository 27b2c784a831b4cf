"""A new install, as a new user meets it: the shipped template waits for legal (the API docs working offline are
tests/http/test_openapi_offline.py's)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.api import Api

pytestmark = pytest.mark.first_start  # on a database no service has started on: the app imports the template


async def test_a_fresh_service_offers_standard_dpa_to_legal_and_a_second_legal_user_approves_it(
    client: httpx.AsyncClient, admin: Api
) -> None:
    author, reviewer = await admin.new_staff("legal"), await admin.new_staff("legal")
    drafts = (await author.get("/templates", key="standard-dpa")).json()["items"]
    assert [t["status"] for t in drafts] == ["draft"], "imported on first start, as a draft for legal"
    owner = await admin.new_tenant()
    assert (await owner.get("/templates")).json()["items"] == [], "a Subscriber sees no draft"
    tid = drafts[0]["id"]
    assert (await author.post(f"/templates/{tid}/submit")).status_code == 200
    assert (await author.post(f"/templates/{tid}/approve")).status_code == 403, "four eyes"
    approved = await reviewer.post(f"/templates/{tid}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved" and approved.json()["current"]
    assert [t["key"] for t in (await owner.get("/templates")).json()["items"]] == ["standard-dpa"]
