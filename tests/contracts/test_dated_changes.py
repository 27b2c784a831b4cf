"""A DPA status that a date changes, with no event to announce it: an invalidation legal recorded ahead of time
takes effect, and the daily housekeeping round announces it once (`contract.dpa_status_changed`). Both databases."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from dpa_service.contracts.services import announce_dated_changes
from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database
from tests.contracts.support import attach, new_contract, status_changes
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api


async def test_an_invalidation_that_arrives_is_announced_once_by_the_daily_round(admin: Api, db: Database) -> None:
    await approve_standard_dpa(db)
    owner, legal, sales = await admin.new_tenant(), await admin.new_staff("legal"), await admin.new_staff("sales")
    executed = await to_status(owner, legal, "executed", mechanisms=["eu-us-dpf"])
    assert executed["variables"]["transfers"]["mechanisms"] == ["eu-us-dpf"]
    contract = await new_contract(sales, owner.tenant_id or "")
    assert (await attach(sales, contract["id"], executed["id"]))["dpa_status"] == "executed"

    # Hypothetical, for the test: legal records today that the DPF is invalid from tomorrow.
    tomorrow = utcnow().date() + timedelta(days=1)
    recorded = await legal.post(
        "/transfer-mechanisms/eu-us-dpf/invalidation",
        {"invalid_from": tomorrow.isoformat(), "reason": "Test: a hypothetical annulment", "legal_reference": "Test"},
    )
    assert recorded.status_code == 201, recorded.text
    assert await announce_dated_changes(db) == 0, "still executed today"
    assert [m["dpa_status"] for m in await status_changes(db, contract["id"])] == ["executed"]

    with travel_to(datetime.combine(tomorrow, time(0, 5), tzinfo=utcnow().tzinfo)):
        assert (await sales.get(f"/contracts/{contract['id']}")).json()["dpa_status"] == "outdated"  # reads derive
        assert await announce_dated_changes(db) == 1
        assert await announce_dated_changes(db) == 0, "announced once"
    changes = await status_changes(db, contract["id"])
    assert [(m["previous"], m["dpa_status"], m["cause"]) for m in changes][-1] == (
        "executed",
        "outdated",
        "date_passed",
    )
