"""Sales keep a tenant's contracts and attach its DPAs (issue 13, Must show 1 and 4): create, attach, detach, the
DPA status each contract shows, who may do what, bad input, and isolation between tenants. Both databases."""

from __future__ import annotations

from typing import Any

import pytest

from dpa_service.core.db import Database
from tests.contracts.support import attach, new_contract, status_changes
from tests.helpers.agreements import approve_standard_dpa, new_agreement
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated


@pytest.fixture
async def owner(admin: Api, db: Database) -> Api:
    await approve_standard_dpa(db)
    return await admin.new_tenant()


@pytest.fixture
async def sales(admin: Api) -> Api:
    return await admin.new_staff("sales")


async def actions(owner: Api, action: str) -> list[dict[str, Any]]:
    return [e for e in await owner.all("/audit-events") if e["action"] == action]


async def test_sales_create_a_contract_attach_a_dpa_and_detach_it_and_the_dpa_status_follows(
    owner: Api, sales: Api, db: Database
) -> None:
    contract = await new_contract(sales, owner.tenant_id, value="12500.00", currency="eur", close_date="2026-12-31")
    assert (contract["status"], contract["dpa_status"], contract["agreements"]) == ("open", "missing", [])
    assert (contract["value"], contract["currency"], contract["close_date"]) == ("12500.00", "EUR", "2026-12-31")
    assert contract["owner_id"] == sales.user_id and contract["tenant_id"] == owner.tenant_id
    draft = await new_agreement(owner)

    attached = await attach(sales, contract["id"], draft["id"])
    assert (attached["dpa_status"], attached["agreements"]) == ("in_progress", [draft["id"]])
    assert "only in progress (draft)" in attached["dpa_detail"]
    again = await attach(sales, contract["id"], draft["id"])  # attaching twice changes nothing
    assert again["agreements"] == [draft["id"]]

    detached = await sales.delete(f"/contracts/{contract['id']}/agreements/{draft['id']}")
    assert detached.status_code == 204, detached.text
    shown = (await sales.get(f"/contracts/{contract['id']}")).json()
    assert (shown["dpa_status"], shown["agreements"]) == ("missing", [])
    assert (await sales.delete(f"/contracts/{contract['id']}/agreements/{draft['id']}")).status_code == 404

    assert len(await actions(owner, "contract.created")) == 1
    assert [e["data"]["agreement_id"] for e in await actions(owner, "contract.agreement_attached")] == [draft["id"]]
    assert len(await actions(owner, "contract.agreement_detached")) == 1
    changed = await actions(owner, "contract.dpa_status_changed")
    assert [(e["data"]["previous"], e["data"]["dpa_status"]) for e in changed] == [
        ("missing", "in_progress"),
        ("in_progress", "missing"),
    ]
    assert (await owner.get("/audit-events/verify")).json()["ok"] is True
    # The webhook fired on each change, and not for the attach that changed nothing.
    assert [m["dpa_status"] for m in await status_changes(db, contract["id"])] == ["in_progress", "missing"]


async def test_another_tenants_agreement_is_422_naming_agreement_id_and_nothing_is_attached(
    owner: Api, sales: Api, admin: Api
) -> None:
    other = await admin.new_tenant()
    theirs = await new_agreement(other)
    contract = await new_contract(sales, owner.tenant_id)
    for agreement_id in (theirs["id"], "00000000-0000-4000-8000-000000000000"):
        refused = await sales.post(f"/contracts/{contract['id']}/agreements", {"agreement_id": agreement_id})
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["agreement_id"]
        assert "not an agreement of this contract's tenant" in refused.text
    assert (await sales.get(f"/contracts/{contract['id']}")).json()["agreements"] == []


BAD = [
    ({"reference": ""}, "reference"),
    ({"reference": "x" * 101}, "reference"),
    ({"reference": "CRM\x00-1"}, "reference"),
    ({"title": "   "}, "title"),
    ({"title": "Deal\u202eevil"}, "title"),
    ({"value": 12500}, "value"),
    ({"value": "-1", "currency": "EUR"}, "value"),
    ({"value": "12,500", "currency": "EUR"}, "value"),
    ({"value": "1.23456", "currency": "EUR"}, "value"),
    ({"value": "100"}, "currency"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "ZZZ"}, "currency"),
    ({"close_date": "31/12/2026"}, "close_date"),
    ({"tenant_id": "00000000-0000-4000-8000-000000000000"}, "tenant_id"),
    ({"tenant_id": "nope"}, "tenant_id"),
    ({"owner_id": "00000000-0000-4000-8000-000000000000"}, "owner_id"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
async def test_bad_contract_input_is_422_naming_the_field_and_creates_nothing(
    owner: Api, sales: Api, change: dict[str, Any], field: str
) -> None:
    body = {"tenant_id": owner.tenant_id, "reference": "CRM-1", "title": "Live chat", **change}
    refused = await sales.post("/contracts", body)
    assert refused.status_code == 422, refused.text
    assert field in [e["field"] for e in refused.json()["errors"]], refused.text
    assert (await sales.get("/contracts")).json()["items"] == []


async def test_a_reference_is_unique_per_tenant_and_bad_attach_and_close_bodies_name_their_field(
    owner: Api, sales: Api
) -> None:
    contract = await new_contract(sales, owner.tenant_id, reference="CRM-7")
    twice = await sales.post("/contracts", {"tenant_id": owner.tenant_id, "reference": "CRM-7", "title": "Again"})
    assert twice.status_code == 409 and twice.json()["errors"][0]["field"] == "reference", twice.text
    bad_attach = await sales.post(f"/contracts/{contract['id']}/agreements", {"agreement_id": "x"})
    assert bad_attach.status_code == 422 and bad_attach.json()["errors"][0]["field"] == "agreement_id"
    bad_close = await sales.post(f"/contracts/{contract['id']}/close", {"outcome": "maybe"})
    assert bad_close.status_code == 422 and bad_close.json()["errors"][0]["field"] == "outcome"
    assert len((await sales.get("/contracts")).json()["items"]) == 1


async def test_subscribers_read_their_own_contracts_and_are_403_on_every_write(owner: Api, sales: Api) -> None:
    member = await owner.new_user("member")
    draft = await new_agreement(owner)
    contract = await attach(sales, (await new_contract(sales, owner.tenant_id))["id"], draft["id"])
    cid = contract["id"]
    for reader in (owner, member):
        assert (await reader.get(f"/contracts/{cid}")).json()["agreements"] == [draft["id"]]
        assert [c["id"] for c in (await reader.get("/contracts")).json()["items"]] == [cid]
    writes = [
        ("POST", "/contracts", {"tenant_id": owner.tenant_id, "reference": "MINE", "title": "Mine"}),
        ("POST", f"/contracts/{cid}/agreements", {"agreement_id": draft["id"]}),
        ("DELETE", f"/contracts/{cid}/agreements/{draft['id']}", None),
        ("POST", f"/contracts/{cid}/close", {"outcome": "lost"}),
        ("GET", f"/contracts/{cid}/bundle", None),
    ]
    for method, path, body in writes:
        call = (
            owner.delete(path) if method == "DELETE" else owner.get(path) if method == "GET" else owner.post(path, body)
        )
        assert (await call).status_code == 403, (method, path)
    assert (await sales.get(f"/contracts/{cid}")).json() == contract


async def test_another_tenant_cannot_reach_a_contract_by_any_new_endpoint(owner: Api, sales: Api, admin: Api) -> None:
    draft = await new_agreement(owner)
    contract = await attach(sales, (await new_contract(sales, owner.tenant_id))["id"], draft["id"])
    cid = contract["id"]
    intruder = await admin.new_tenant()
    await assert_isolated(owner, intruder, [Probe("contract", cid, direct=[("GET", f"/contracts/{cid}", None)],
                                                  lists=["/contracts"])])  # fmt: skip
    # The writes and the bundle are staff-only: a Subscriber is 403 on another tenant's contract exactly as on its
    # own (the answer says nothing of whether it exists), and nothing moves.
    probes = [
        ("POST", f"/contracts/{cid}/agreements", {"agreement_id": draft["id"]}),
        ("DELETE", f"/contracts/{cid}/agreements/{draft['id']}", None),
        ("POST", f"/contracts/{cid}/close", {"outcome": "lost"}),
        ("GET", f"/contracts/{cid}/bundle", None),
    ]
    for method, path, body in probes:
        unknown = path.replace(cid, "00000000-0000-4000-8000-000000000000")
        for target in (path, unknown):
            call = (intruder.delete(target) if method == "DELETE" else intruder.get(target) if method == "GET"
                    else intruder.post(target, body))  # fmt: skip
            assert (await call).status_code == 403, (method, target)
    assert (await sales.get(f"/contracts/{cid}")).json() == contract
    # Staff narrowing to the other tenant do not see it either.
    assert (await sales.get("/contracts", tenant_id=intruder.tenant_id)).json()["items"] == []


async def test_platform_admins_do_not_handle_contracts(owner: Api, admin: Api) -> None:
    assert (await admin.get("/contracts")).status_code == 403
    created = await admin.post("/contracts", {"tenant_id": owner.tenant_id, "reference": "X", "title": "X"})
    assert created.status_code == 403
