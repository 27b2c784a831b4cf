"""The list itself: seeded from the registry file, versions immutable, bad changes refused, file edits proposed."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from dpa_service.core import registry
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.subprocessors import registry_sync, versions
from tests.helpers.agreements import to_status
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated
from tests.helpers.subprocessors import publish, vendor


async def test_every_key_reads_the_list_in_force_and_any_version_whole(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    owner = await admin.new_tenant()
    member = await owner.new_user("member")
    current = await member.get("/subprocessors")
    assert current.status_code == 200, current.text
    body = current.json()
    assert body["version"] >= 1 and body["effective_at"]
    first = (await member.get("/subprocessors/versions/1")).json()
    names = {item["name"] for item in first["items"]}
    assert {"Amazon Web Services", "Cloudflare", "SendGrid"} <= names
    # The processor's own analytics and support desk receive no Customer Personal Data: they are not sub-processors.
    assert not {"Google Analytics", "Zendesk"} & names
    item = next(i for i in first["items"] if i["name"] == "Cloudflare")
    # A CDN that terminates TLS sees the chat content in transit wherever its nearest data centre is: worldwide, so
    # the SCCs (the DPF covers the United States only).
    assert item["locations"] == ["worldwide", "US"] and item["transfer_mechanism"] == "scc-2021" and item["id"]
    assert item["address"].startswith("101 Townsend Street") and item["nature"] and item["duration"]
    # Inside the EEA there is no transfer and so no mechanism: never "adequacy".
    hosting = next(i for i in first["items"] if i["name"] == "Amazon Web Services")
    assert hosting["locations"] == ["IE", "DE"] and hosting["transfer_mechanism"] is None
    assert first["status"] == "effective" and len(first["sha256"]) == 64
    assert (await member.get("/subprocessors/versions/999999")).status_code == 404
    for number in ("0", str(2**63)):
        assert (await member.get(f"/subprocessors/versions/{number}")).status_code in (400, 404, 422), number


async def test_bad_changes_are_refused_naming_the_field_and_change_nothing(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    before = (await legal.get("/subprocessor-changes", limit=200)).json()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"remove": ["Nobody Ltd"], "reason": "cleanup"}, "remove.0"),
        ({"add": [vendor(name="Cloudflare")], "reason": "duplicate"}, "add.0.name"),
        ({"add": [vendor(transfer_mechanism="magic")], "reason": "bad mechanism"}, "add.0.transfer_mechanism"),
        ({"add": [vendor(locations=["XX"])], "reason": "bad country"}, "add.0.locations.0"),
        (
            {"add": [vendor(transfer_mechanism="eu-us-privacy-shield")], "reason": "invalidated"},
            "add.0.transfer_mechanism",
        ),
        (
            {"add": [vendor(transfer_mechanism="scc-2010")], "reason": "closed to new transfers"},
            "add.0.transfer_mechanism",
        ),
        (
            {"add": [vendor(transfer_mechanism="adequacy")], "reason": "the US are not adequate"},
            "add.0.transfer_mechanism",
        ),
        (
            {"add": [vendor(locations=["IN"], transfer_mechanism="eu-us-dpf")], "reason": "wrong country"},
            "add.0.transfer_mechanism",
        ),
        ({"add": [vendor(data_categories=[])], "reason": "no data"}, "add.0.data_categories"),
        (
            {"add": [vendor(locations=["DE"], transfer_mechanism="adequacy")], "reason": "inside the EEA"},
            "add.0.transfer_mechanism",
        ),
        ({"add": [vendor(transfer_mechanism=None)], "reason": "US without a mechanism"}, "add.0.transfer_mechanism"),
        (
            {"add": [vendor(locations=["worldwide"], transfer_mechanism="eu-us-dpf")], "reason": "DPF is US only"},
            "add.0.transfer_mechanism",
        ),
        ({"add": [vendor()], "notice_days": 10, "reason": "in a hurry"}, "notice_days"),
        ({"add": [vendor()], "notice_days": 0, "urgent": True, "reason": "now"}, "notice_days"),
        ({"reason": "nothing at all"}, "add"),
        ({"add": [vendor()]}, "reason"),
        ({"add": [vendor()], "reason": "typo", "notce_days": 40}, "notce_days"),
    ]
    for body, field in cases:
        response = await legal.post("/subprocessor-changes", body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], (field, response.json())
    assert (await owner.post("/subprocessor-changes", {"add": [vendor()], "reason": "mine"})).status_code == 403
    assert (await legal.get("/subprocessor-changes", limit=200)).json() == before


async def test_a_changed_registry_file_becomes_a_proposal_that_legal_publishes(
    web: tuple[httpx.AsyncClient, Api], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    actor = Actor.system("test")

    async def sync() -> registry_sync.SyncResult:
        return await registry_sync.sync_registry(db, actor)

    async with db.transaction(Scope.system(), write=False) as session:
        latest = await versions.latest_version(session)
    assert latest is not None
    edited = {"items": [*latest.items, vendor(name=f"Chatbot AI {secrets.token_hex(3)}")]}
    monkeypatch.setattr(registry, "subprocessor_seed", lambda: edited)
    proposed = await sync()
    assert proposed.action == "proposed"
    assert (await sync()).action == "already_proposed", "sync is idempotent"

    change_id = str(proposed.change_id)
    staff_view = (await legal.get(f"/subprocessor-changes/{change_id}")).json()
    assert staff_view["status"] == "proposed" and staff_view["version"] is None
    assert [a["name"] for a in staff_view["added"]] == [edited["items"][-1]["name"]]
    assert (await owner.get(f"/subprocessor-changes/{change_id}")).status_code == 404, "proposals are internal"
    assert change_id not in (await owner.get("/subprocessor-changes", limit=200)).text
    assert (await owner.post(f"/subprocessor-changes/{change_id}/objections", {"reason": "early"})).status_code == 404

    short = await legal.post(f"/subprocessor-changes/{change_id}/publish", {"reason": "x", "notice_days": 30})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "reason"
    published = await legal.post(f"/subprocessor-changes/{change_id}/publish", {"reason": "New chatbot vendor"})
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "pending" and published.json()["version"] == latest.number + 1
    assert (await legal.post(f"/subprocessor-changes/{change_id}/publish", {"reason": "again"})).status_code == 409
    assert (await sync()).action == "unchanged"
    assert (await owner.get(f"/subprocessor-changes/{change_id}")).json()["notified_tenants"] is None, "staff only"
    assert isinstance((await legal.get(f"/subprocessor-changes/{change_id}")).json()["notified_tenants"], int)

    # A proposal overtaken by a change published since would undo it: refused.
    stale_file = {"items": [*edited["items"], vendor(name=f"Stale {secrets.token_hex(3)}")]}
    monkeypatch.setattr(registry, "subprocessor_seed", lambda: stale_file)
    stale = await sync()
    await publish(legal)
    overtaken = await legal.post(f"/subprocessor-changes/{stale.change_id}/publish", {"reason": "Old proposal"})
    assert overtaken.status_code == 409 and "undo" in overtaken.json()["detail"]

    # A newer edit replaces an unpublished proposal.
    first = {"items": [*edited["items"], vendor(name=f"Voice {secrets.token_hex(3)}")]}
    monkeypatch.setattr(registry, "subprocessor_seed", lambda: first)
    replaced = await sync()
    second = {"items": [*edited["items"], vendor(name=f"Video {secrets.token_hex(3)}")]}
    monkeypatch.setattr(registry, "subprocessor_seed", lambda: second)
    newer = await sync()
    assert newer.action == "proposed" and newer.change_id != replaced.change_id
    assert (await legal.get(f"/subprocessor-changes/{replaced.change_id}")).json()["status"] == "withdrawn"
    withdrawn = await legal.get("/subprocessor-changes", status="withdrawn", limit=200)
    assert str(replaced.change_id) in withdrawn.text


async def test_published_lists_and_acceptances_cannot_be_rewritten_even_by_the_owner(
    web: tuple[httpx.AsyncClient, Api], owner_engine: Any
) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    change = await publish(legal)
    owner = await admin.new_tenant()
    await to_status(owner, legal, "executed")
    assert (await owner.post(f"/subprocessor-changes/{change['id']}/acceptance")).status_code == 201
    statements = [
        "UPDATE subprocessor_versions SET reason = 'rewritten' WHERE number = 1",
        "DELETE FROM subprocessor_versions WHERE number = 1",
        f"UPDATE subprocessor_changes SET effective_at = published_at WHERE version = {change['version']}",
        f"DELETE FROM subprocessor_changes WHERE version = {change['version']}",
        f"UPDATE subprocessor_acceptances SET kind = 'deemed' WHERE version = {change['version']}",
        f"DELETE FROM subprocessor_acceptances WHERE version = {change['version']}",
    ]
    for statement in statements:
        with pytest.raises((DBAPIError, IntegrityError)):
            async with owner_engine.begin() as conn:
                await conn.execute(text(statement))


async def test_objections_stay_with_their_tenant(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    mine, other = await admin.new_tenant(), await admin.new_tenant()
    await to_status(mine, legal, "executed")
    await to_status(other, legal, "executed")
    change = await publish(legal)
    objection = (
        await mine.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "Not for our data"})
    ).json()
    probes = [
        Probe(
            "objection",
            objection["id"],
            direct=[("GET", f"/objections/{objection['id']}", None)],
            lists=["/objections", "/tenant/subprocessors"],
        )
    ]
    await assert_isolated(mine, other, probes)
    resolve = await other.post(f"/objections/{objection['id']}/resolve", {"resolution": "I decide"})
    assert resolve.status_code == 403
    # The other tenant still answers for itself.
    assert (
        await other.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "Us too"})
    ).status_code == 201


async def test_two_changes_published_at_the_same_moment_get_consecutive_versions(
    web: tuple[httpx.AsyncClient, Api],
) -> None:
    _, admin = web
    first, second = await admin.new_staff("legal"), await admin.new_staff("legal")
    answers = await asyncio.gather(
        *(
            legal.post("/subprocessor-changes", {"add": [vendor()], "reason": "Two vendors at once"})
            for legal in (first, second)
        )
    )
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    versions = sorted(a.json()["version"] for a in answers)
    assert versions[1] == versions[0] + 1
    newest = (await first.get(f"/subprocessors/versions/{versions[1]}")).json()
    names = {item["name"] for item in newest["items"]}
    assert {a.json()["added"][0]["name"] for a in answers} <= names, "the later version builds on the earlier"


async def test_one_tenant_objecting_twice_at_once_gets_one_objection(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    await to_status(owner, legal, "executed")
    change = await publish(legal)
    answers = await asyncio.gather(
        *(owner.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": f"No {n}"}) for n in range(2))
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    assert len(await owner.all("/objections")) == 1
