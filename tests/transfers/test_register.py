"""The transfer register through HTTP: recording, validation, isolation, assessment, invalidation, notices."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.tenants.models import Tenant
from dpa_service.transfers.models import Transfer
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated

PS = {
    "importer": "Example Analytics Inc.",
    "destination_country": "US",
    "data_categories": ["usage data"],
    "mechanism": "eu-us-privacy-shield",
    "start_date": "2018-03-01",
    "importer_certified": True,
}


async def test_a_subscriber_records_reads_and_end_dates_transfers(admin: Api) -> None:
    owner = await admin.new_tenant()
    created = await owner.post("/transfers", PS)
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert (await owner.get(f"/transfers/{tid}")).json()["mechanism"] == "eu-us-privacy-shield"
    ended = await owner.patch(f"/transfers/{tid}", {"end_date": "2020-07-15", "tia_reference": "TIA-7"})
    assert ended.status_code == 200 and ended.json()["end_date"] == "2020-07-15"
    events = [e for e in (await owner.get("/audit-events", limit=200)).json()["items"] if e["target_id"] == tid]
    assert [e["action"] for e in events] == ["transfer.created", "transfer.updated"]
    assert events[1]["data"]["changes"]["end_date"] == {"from": None, "to": "2020-07-15"}
    assert (
        await owner.client.delete(f"/api/v1/transfers/{tid}", headers={"Authorization": f"Bearer {owner.key}"})
    ).status_code == 405


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mechanism": "pinky-promise"}, "mechanism"),
        ({"destination_country": "XX"}, "destination_country"),
        ({"end_date": "2017-01-01"}, "end_date"),
        ({"data_categories": []}, "data_categories"),
    ],
)
async def test_bad_transfers_are_422_naming_the_field(admin: Api, change: dict, field: str) -> None:
    owner = await admin.new_tenant()
    response = await owner.post("/transfers", {**PS, **change})
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    assert (await owner.get("/transfers")).json()["items"] == []


async def test_end_before_start_on_update_is_refused(admin: Api) -> None:
    owner = await admin.new_tenant()
    tid = (await owner.post("/transfers", PS)).json()["id"]
    response = await owner.patch(f"/transfers/{tid}", {"end_date": "2010-01-01"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "end_date"


async def test_transfers_and_notices_are_isolated(admin: Api) -> None:
    tenant_a, tenant_b = await admin.new_tenant(), await admin.new_tenant()
    tid = (await tenant_a.post("/transfers", PS)).json()["id"]
    notice = await tenant_a.post(
        "/transfer-notices",
        {
            "destination_country": "IN",
            "recipient": "Support Ltd",
            "purpose": "support",
            "mechanism": "scc-2021",
            "planned_date": (utcnow().date() + timedelta(days=30)).isoformat(),
        },
    )
    assert notice.status_code == 201, notice.text
    await assert_isolated(
        tenant_a,
        tenant_b,
        [
            Probe(
                "tenant A's transfer",
                tid,
                lists=["/transfers", "/transfers/assessment"],
                direct=[("GET", f"/transfers/{tid}", None), ("PATCH", f"/transfers/{tid}", {"end_date": "2020-01-01"})],
            ),
            Probe("tenant A's notice", notice.json()["id"], lists=["/transfer-notices"]),
        ],
    )


async def test_assessment_over_http_lists_active_transfers_with_reasons(admin: Api) -> None:
    owner = await admin.new_tenant()
    ps = (await owner.post("/transfers", PS)).json()["id"]
    japan = (await owner.post("/transfers", {**PS, "destination_country": "JP", "mechanism": "adequacy"})).json()["id"]
    items = {
        i["transfer_id"]: i for i in (await owner.get("/transfers/assessment", as_of="2020-07-17")).json()["items"]
    }
    assert items[ps]["valid"] is False and "C-311/18" in items[ps]["reason"] and items[ps]["suggested_mechanisms"]
    assert items[japan]["valid"] is True
    before = {i["transfer_id"] for i in (await owner.get("/transfers/assessment", as_of="2017-01-01")).json()["items"]}
    assert before == set()
    assert (await owner.get("/transfers/assessment", as_of="not-a-date")).status_code in {400, 422}


async def test_notices_refuse_eea_destinations_and_past_dates(admin: Api) -> None:
    owner = await admin.new_tenant()
    body = {
        "destination_country": "FR",
        "recipient": "R",
        "purpose": "p",
        "mechanism": "scc-2021",
        "planned_date": (date.today() - timedelta(days=1)).isoformat(),
    }
    response = await owner.post("/transfer-notices", body)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"destination_country", "planned_date"}


async def test_schrems_ii_notifies_every_relying_tenant_once(admin: Api, db: Database) -> None:
    legal = await admin.new_staff("legal")
    relying, others = [], []
    async with db.transaction(Scope.system()) as session:
        for index in range(500 + 20):
            tenant = Tenant(name=f"PS {index}", legal_name=f"PS {index} GmbH", country="DE")
            session.add(tenant)
            (relying if index < 500 else others).append(tenant.id)
        await session.flush()
        for tenant_id in relying:
            for _ in range(2):  # two Privacy Shield transfers each: still one notification
                session.add(
                    Transfer(
                        tenant_id=tenant_id,
                        importer="US Cloud Inc.",
                        destination_country="US",
                        data_categories=["chats"],
                        mechanism="eu-us-privacy-shield",
                        importer_certified=True,
                        start_date=date(2018, 1, 1),
                    )
                )
        for tenant_id in others:
            session.add(
                Transfer(
                    tenant_id=tenant_id,
                    importer="US Cloud Inc.",
                    destination_country="US",
                    data_categories=["chats"],
                    mechanism="scc-2021",
                    start_date=date(2021, 10, 1),
                )
            )
    response = await legal.post(
        "/transfer-mechanisms/eu-us-privacy-shield/invalidation",
        {"invalid_from": "2020-07-16", "reason": "Schrems II", "legal_reference": "CJEU C-311/18"},
    )
    assert response.status_code == 201, response.text
    invalidation = response.json()
    assert invalidation["affected_tenants"] >= 500
    async with db.transaction(Scope.system(), write=False) as session:
        rows = (await session.execute(select(OutboxMessage.tenant_id, OutboxMessage.payload))).all()
    notified = [tenant for tenant, payload in rows if payload.get("invalidation_id") == invalidation["id"]]
    assert len(notified) == len(set(notified)), "a tenant was notified twice"
    assert set(relying) <= set(notified) and not set(others) & set(notified)

    seen, cursor = set(), None
    while True:
        report = (
            await legal.get(
                "/transfer-mechanisms/eu-us-privacy-shield/affected",
                limit=200,
                **({"cursor": cursor} if cursor else {}),
            )
        ).json()
        seen |= {uuid.UUID(item["tenant_id"]) for item in report["items"]}
        assert all(
            item["notified_at"] and item["remediation"] == "open"
            for item in report["items"]
            if uuid.UUID(item["tenant_id"]) in set(relying)
        )
        cursor = report["next_cursor"]
        if not cursor:
            break
    assert set(relying) <= seen and report["invalid_from"] == "2020-07-16"


async def test_only_legal_records_invalidations(admin: Api) -> None:
    owner = await admin.new_tenant()
    body = {"invalid_from": "2020-07-16", "reason": "x", "legal_reference": "y"}
    assert (await owner.post("/transfer-mechanisms/eu-us-dpf/invalidation", body)).status_code == 403
    legal = await admin.new_staff("legal")
    assert (await legal.post("/transfer-mechanisms/no-such-thing/invalidation", body)).status_code == 404
    catalogue = (await owner.get("/transfer-mechanisms")).json()["items"]
    codes = {m["code"] for m in catalogue}
    assert {
        "eu-us-privacy-shield",
        "swiss-us-privacy-shield",
        "scc-2010",
        "scc-2021",
        "eu-us-dpf",
        "uk-idta",
        "uk-addendum",
        "swiss-us-dpf",
        "adequacy",
        "bcr",
        "derogation-art49",
    } <= codes


async def test_an_executed_dpa_records_the_transfers_its_subprocessors_imply(admin: Api, db: Database) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    executed = await to_status(owner, legal, "executed")
    transfers = (await owner.get("/transfers")).json()["items"]
    assert transfers and all(t["source"] == "dpa" and t["agreement_id"] == executed["id"] for t in transfers)
    assert {t["destination_country"] for t in transfers} == {"US"}
    assessed = (await owner.get("/transfers/assessment")).json()["items"]
    assert len(assessed) == len(transfers) and all(item["valid"] for item in assessed), assessed
