"""A new install, as a new user meets it: the shipped template waits for legal, and the API docs work offline."""

from __future__ import annotations

import re

import httpx

from tests.helpers.api import Api


async def test_a_fresh_service_offers_standard_dpa_to_legal_and_a_second_legal_user_approves_it(
    client: httpx.AsyncClient, admin: Api
) -> None:
    author, reviewer = await admin.new_staff("legal"), await admin.new_staff("legal")
    drafts = (await author.get("/templates", key="standard-dpa")).json()["items"]
    assert [t["status"] for t in drafts] == ["draft"], "imported on first start, as a draft for legal"
    assert (await admin.new_tenant()).key  # (a Subscriber sees no template until legal approves one)
    tid = drafts[0]["id"]
    assert (await author.post(f"/templates/{tid}/submit")).status_code == 200
    assert (await author.post(f"/templates/{tid}/approve")).status_code == 403, "four eyes"
    approved = await reviewer.post(f"/templates/{tid}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved" and approved.json()["current"]
    owner = await admin.new_tenant()
    assert [t["key"] for t in (await owner.get("/templates")).json()["items"]] == ["standard-dpa"]


async def test_the_api_docs_load_without_network(client: httpx.AsyncClient) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200 and asset.content, url
