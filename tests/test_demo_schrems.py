"""`dpa demo --scenario schrems-ii` from an empty database: the Privacy Shield DPAs of 2019, the invalidation of
2020, the affected report, a half-finished re-papering campaign to the 2021 SCCs, and a DPA of 2023 under the Data
Privacy Framework, as legal and the Subscribers see them afterwards through the API and the pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import app_for, running, settings_for
from tests.helpers.api import Api

PS, SCC_2010, SCC_2021, DPF = "eu-us-privacy-shield", "scc-2010", "scc-2021", "eu-us-dpf"
PROCESSOR = "Parley Chat, Inc."


def dpa(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DPA_VAR_DIR": str(var_dir)}
    for unset in ("DATABASE_URL", "REDIS_URL", "DPA_PROCESSOR_HOSTING"):
        env.pop(unset, None)
    return subprocess.run(
        [sys.executable, "-m", "dpa_service", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    var_dir = tmp_path_factory.mktemp("schrems")
    result = dpa(var_dir, "demo", "--scenario", "schrems-ii")
    assert result.returncode == 0, result.stderr
    return var_dir, json.loads(result.stdout)


@pytest.fixture
async def http(replayed: tuple[Path, dict[str, Any]]) -> AsyncIterator[httpx.AsyncClient]:
    var_dir, _ = replayed
    app = app_for(settings_for(f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}", var_dir))
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield client


def _as(http: httpx.AsyncClient, persona: dict[str, Any]) -> Api:
    return Api(http, persona["api_key"])


async def test_the_affected_report_lists_every_2019_subscriber_and_the_campaign_is_half_way(
    replayed: tuple[Path, dict[str, Any]], http: httpx.AsyncClient
) -> None:
    _, out = replayed
    legal = _as(http, out["staff"]["legal"])
    assert set(out["tenants"]) == {"Acme Retail", "Globex Travel", "Initech Analytics", "Hooli Software"}

    report = (await legal.get(f"/transfer-mechanisms/{PS}/affected")).json()
    assert report["invalid_from"] == "2020-07-16"
    assert {item["tenant_name"] for item in report["items"]} == set(out["tenants"])

    [campaign] = (await legal.get("/campaigns")).json()["items"]
    counts = {k: campaign[k] for k in ("total", "notified", "signed", "executed", "declined")}
    # Acme signed and was countersigned; Globex signed and waits for legal; Initech declined; Hooli never answered.
    assert counts == {"total": 4, "notified": 4, "signed": 2, "executed": 1, "declined": 1}
    assert campaign["due_on"] == "2021-12-31" and campaign["overdue"] == 2  # Globex and Hooli, after the due date
    rows = {r["tenant_name"]: r for r in await legal.all(f"/campaigns/{campaign['id']}/agreements")}
    assert rows["Initech Analytics"]["decline_reason"].startswith("We are waiting for the new EU-US framework")
    assert out["look_at"]["campaign"] == f"/staff/campaigns/{campaign['id']}"


async def test_each_register_tells_the_transfers_story_by_date(
    replayed: tuple[Path, dict[str, Any]], http: httpx.AsyncClient
) -> None:
    _, out = replayed

    async def processor_transfers(name: str) -> list[tuple[str, str, str | None]]:
        items = await _as(http, out["tenants"][name]).all("/transfers")
        found = [(t["mechanism"], t["start_date"], t["end_date"]) for t in items if t["importer"] == PROCESSOR]
        return sorted(found, key=lambda transfer: transfer[1])

    # Acme: the 2019 DPA's transfer to the processor rested on the Privacy Shield (Clause 12.2: the first selected
    # mechanism the processor was certified under); the campaign's DPA, executed 2021-10-13, moved it to the SCCs.
    assert await processor_transfers("Acme Retail") == [
        (PS, "2019-03-06", "2021-10-12"),
        (SCC_2021, "2021-10-13", None),
    ]
    # Hooli never answered: still on the Privacy Shield, which the assessment flags.
    assert await processor_transfers("Hooli Software") == [(PS, "2019-06-12", None)]
    hooli = _as(http, out["tenants"]["Hooli Software"])
    [shielded] = [t["id"] for t in await hooli.all("/transfers") if t["importer"] == PROCESSOR]
    assessment = (await hooli.get("/transfers/assessment", as_of="2026-12-01")).json()["items"]
    [flagged] = [a for a in assessment if a["transfer_id"] == shielded]
    assert not flagged["valid"] and "2020-07-16" in flagged["reason"], flagged
    assert SCC_2021 in flagged["suggested_mechanisms"]
    # Initech declined in 2021 and, once the processor certified under the DPF (2023), chose it in a new DPA.
    assert await processor_transfers("Initech Analytics") == [
        (PS, "2019-05-15", "2023-08-01"),
        (DPF, "2023-08-02", None),
    ]
    # The sub-processors' US transfers: the 2010 SCCs in 2019, the 2021 SCCs from the list of August 2021.
    acme = await _as(http, out["tenants"]["Acme Retail"]).all("/transfers")
    vendors = {(t["mechanism"], t["start_date"][:4]) for t in acme if t["importer"] != PROCESSOR}
    assert vendors == {(SCC_2010, "2019"), (SCC_2021, "2021")}


def test_the_scenario_refuses_a_database_that_is_not_empty(replayed: tuple[Path, dict[str, Any]]) -> None:
    var_dir, _ = replayed
    again = dpa(var_dir, "demo", "--scenario", "schrems-ii")
    assert again.returncode == 1 and again.stdout == ""
    assert "needs an empty database" in again.stderr
