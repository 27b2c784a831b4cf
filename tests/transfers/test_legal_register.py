"""The register true as of 2026-12-01, what a DPA may offer on the day it is made, and a processor anywhere.

Stories: legal's data files cite a source for every date; a Subscriber making a DPA in 2026 cannot pick a withdrawn
or closed mechanism (nor Article 49), while one made "in 2019" could pick Privacy Shield; the DPA reads right for a
processor in the EEA and for one in the United States, and in the US case the Subscriber's own transfer to the
processor is in its register from the DPA's execution.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest

from dpa_service.core import registry
from dpa_service.core.clock import travel_to
from dpa_service.core.db import Database
from dpa_service.core.exceptions import InvalidInput
from dpa_service.documents.rendering import render_html
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.template_versions.variables import validate_variables
from tests.helpers.agreements import approve_standard_dpa, request_variables, to_status
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated
from tests.templates.conftest import job_for
from tests.transfers.test_transfer_pages import signed_in

TODAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


# --- the register's sources -------------------------------------------------------------------------------------


def test_every_mechanism_and_adequacy_date_cites_a_source() -> None:
    entries: list[Any] = [*registry.mechanisms().values(), *registry.adequacy_decisions().values()]
    entries += registry.organisation_decisions()
    assert len(entries) >= 12 + 16
    for entry in entries:
        assert registry.source_problems(entry) == [], entry
    assert registry.check() == []
    for regime in registry.regimes().values():  # the UK and Swiss facts cite an address too
        assert regime.code == "eea" or all("http" in str(v) for v in regime.sources.values()), regime.code


def test_an_entry_without_a_source_for_a_date_fails_the_check() -> None:
    dpf = registry.mechanisms()["eu-us-dpf"]
    terms = dpf.regimes["eea"]
    ended = dataclasses.replace(terms, valid_until=date(2027, 1, 1))  # a new date with no source for it
    bare = dataclasses.replace(dpf, regimes={"eea": ended})
    assert registry.source_problems(bare) == ["eu-us-dpf (eea): valid_until 2027-01-01 has no source"]
    brazil = registry.adequacy_decisions()["BR"]
    assert registry.source_problems(dataclasses.replace(brazil, sources={})) == [
        "adequacy BR: valid_from 2026-01-26 has no source"
    ]
    canada = registry.adequacy_decisions()["CA"]
    assert (
        "scope has no source" in registry.source_problems(dataclasses.replace(canada, sources={"valid_from": "x"}))[0]
    )


def test_the_register_knows_the_2025_and_2026_decisions_and_the_parts_of_the_eea() -> None:
    decisions = registry.adequacy_decisions()
    assert decisions["BR"].decision.startswith("Commission Implementing Decision (EU) 2026/179")
    assert decisions["GB"].renewed_on == date(2025, 12, 19) and decisions["GB"].valid_until == date(2031, 12, 28)
    assert "PIPEDA" in decisions["CA"].scope and "Credit Information Act" in decisions["KR"].scope
    assert "APPI" in decisions["JP"].scope and "automated" in decisions["IL"].scope
    (epo,) = registry.organisation_decisions()
    assert epo.organisation == "European Patent Organisation" and epo.valid_from == date(2025, 7, 15)
    for code in ("AX", "GF", "GP", "MQ", "RE", "YT", "MF"):  # Aland and the outermost regions (Art. 349, 355 TFEU)
        assert registry.country(code).eea, code  # type: ignore[union-attr]
    for code in ("NC", "BL", "GL", "FO", "AW"):  # overseas countries and territories, Faroe, Greenland
        assert not registry.country(code).eea, code  # type: ignore[union-attr]
    assert registry.country_name("GB") == "United Kingdom" and registry.country_name("KR") == "Republic of Korea"
    scc_2010 = registry.mechanisms()["scc-2010"]
    assert scc_2010.regimes["eea"].instruments_until == date(2021, 9, 27)
    assert scc_2010.regimes["uk"].instruments_until == date(2022, 9, 22)
    assert scc_2010.regimes["uk"].valid_until == date(2024, 3, 21)
    assert (
        registry.mechanisms()["bcr"].valid_from
        < date(2018, 5, 25)
        > registry.mechanisms()["derogation-art49"].valid_from
    )


# --- what a DPA may offer on the day it is made -------------------------------------------------------------------

WITHDRAWN = ["eu-us-privacy-shield", "swiss-us-privacy-shield", "scc-2010"]


@pytest.mark.parametrize("code", [*WITHDRAWN, "derogation-art49"])
async def test_a_dpa_made_in_2026_refuses_a_withdrawn_mechanism_naming_it(admin: Api, db: Database, code: str) -> None:
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    variables = request_variables()
    variables["transfers"]["mechanisms"] = ["scc-2021", code]
    with travel_to(TODAY):
        response = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": variables})
    assert response.status_code == 422, response.text
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert list(errors) == ["variables.transfers.mechanisms.1"], errors
    expected = "never a DPA mechanism" if code == "derogation-art49" else "not in force for a DPA made on 2026-12-01"
    assert expected in errors["variables.transfers.mechanisms.1"]
    assert (await owner.get("/agreements")).json()["items"] == []


async def test_a_dpa_made_in_2026_offers_the_2021_sccs_and_one_made_in_2019_privacy_shield(
    admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    variables = request_variables()
    variables["transfers"]["mechanisms"] = ["scc-2021"]
    with travel_to(TODAY):
        made = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": variables})
    assert made.status_code == 201, made.text
    variables["transfers"]["mechanisms"] = ["eu-us-privacy-shield", "scc-2010"]
    with travel_to(datetime(2019, 6, 3, 9, 0, tzinfo=UTC)):  # the injected clock's today decides
        in_2019 = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": variables})
    assert in_2019.status_code == 201, in_2019.text


def test_the_schema_promises_what_the_code_checks() -> None:
    (bundle,) = [b for b in shipped_bundles() if b.key == "standard-dpa"]
    described = bundle.variables_schema["properties"]["transfers"]["properties"]["mechanisms"]["description"]
    assert "in force on the day the DPA is made" in described and "Article 49" in described
    variables = {**bundle.sample_variables, "transfers": {"mechanisms": ["uk-idta", "derogation-art49"]}}
    with travel_to(TODAY), pytest.raises(InvalidInput) as refused:
        validate_variables(bundle.variables_schema, variables)
    assert [e.field for e in refused.value.errors] == ["variables.transfers.mechanisms.1"]  # a UK tool is in force


@pytest.mark.parametrize(
    ("country", "accepted"), [("DE", True), ("GB", True), ("CH", True), ("US", False), ("BR", False)]
)
def test_the_controller_exports_from_the_eea_the_uk_or_switzerland(country: str, accepted: bool) -> None:
    (bundle,) = [b for b in shipped_bundles() if b.key == "standard-dpa"]
    variables = {**bundle.sample_variables, "controller": {**bundle.sample_variables["controller"], "country": country}}
    if accepted:
        validate_variables(bundle.variables_schema, variables)
        return
    with pytest.raises(InvalidInput) as refused:
        validate_variables(bundle.variables_schema, variables)
    (error,) = refused.value.errors
    assert (
        error.field == "variables.controller.country" and "needs an agreement drafted for its own law" in error.message
    )


# --- a processor anywhere -----------------------------------------------------------------------------------------

IRISH = {
    "legal_name": "Parley Chat Ltd", "trading_name": "Parley", "address": "14 Haddington Road\nDublin 4",
    "country": "IE", "hosting_locations": ["IE", "DE"], "registration_number": "CRO 701284",
    "contact_email": "privacy@parley.example", "dpo": {"name": "N", "email": "dpo@parley.example"},
    "signatory": {"name": "Cian Murphy", "title": "General Counsel", "email": "legal@parley.example"},
}  # fmt: skip


def _clause_12_1(html: str) -> str:
    start = html.index('<span class="num">12.1</span>')
    return " ".join(html[start : html.index("</p>", start)].split())


def test_clause_12_reads_right_for_an_eea_and_for_a_us_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    (bundle,) = [b for b in shipped_bundles() if b.key == "standard-dpa"]
    version = bundle.as_version(3)
    us = _clause_12_1(render_html(job_for(version, bundle.sample_variables)))
    assert "established in United States and hosts Customer Personal Data in data centres in United States" in us
    assert "is itself a Restricted Transfer to United States" in us and "Module Two" in us
    assert "not a Restricted Transfer" not in us
    monkeypatch.setattr(registry, "_processor_file", lambda: IRISH)
    eea = _clause_12_1(render_html(job_for(version, bundle.sample_variables)))
    assert (
        "established in Ireland and hosts Customer Personal Data in data centres in Ireland, Germany, in the EEA" in eea
    )
    assert "is not a Restricted Transfer" in eea and "Module Two" not in eea
    assert registry.processor_transfer_destination() is None


def test_the_hosting_location_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from dpa_service.core.settings import clear_settings_cache

    monkeypatch.setattr(registry, "_processor_file", lambda: IRISH)
    monkeypatch.setenv("DPA_PROCESSOR_HOSTING", "ie, us")
    clear_settings_cache()
    try:
        assert registry.processor()["hosting_locations"] == ["IE", "US"]
        assert registry.processor_transfer_destination() == "US"  # an Irish company hosting in the US: a transfer
    finally:
        monkeypatch.delenv("DPA_PROCESSOR_HOSTING")
        clear_settings_cache()


async def test_a_us_processors_dpa_puts_the_subscribers_own_transfer_in_its_register(admin: Api, db: Database) -> None:
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    legal = await admin.new_staff("legal")
    executed = await to_status(owner, legal, "executed")
    pdf = await owner.get(f"/agreements/{executed['id']}/document")
    assert pdf.status_code == 200
    items = (await owner.get("/transfers")).json()["items"]
    ours = [t for t in items if t["importer_kind"] == "processor"]
    assert len(ours) == 1, items
    (transfer,) = ours
    assert transfer["importer"] == "Parley Chat, Inc." and transfer["destination_country"] == "US"
    assert transfer["mechanism"] == "scc-2021" and transfer["origin"] == "eea" and transfer["source"] == "dpa"
    assert transfer["start_date"] == executed["effective_date"] == transfer["instrument_date"]
    assessed = (await owner.get("/transfers/assessment", as_of=executed["effective_date"])).json()["items"]
    (verdict,) = [a for a in assessed if a["transfer_id"] == transfer["id"]]
    assert verdict["valid"] and "2021/914" in verdict["reason"] and verdict["risks"] == []


# --- the register through HTTP: origin, instrument date, certification record -------------------------------------


async def test_a_uk_subscriber_records_a_transfer_judged_by_uk_law_with_a_certification_record(admin: Api) -> None:
    owner = await admin.new_tenant()
    body = {
        "importer": "Acme Inc.", "destination_country": "US", "data_categories": ["chat transcripts"],
        "mechanism": "eu-us-dpf", "start_date": "2024-01-01", "importer_certified": True, "origin": "uk",
    }  # fmt: skip
    wrong_regime = (await owner.post("/transfers", body)).json()
    record = {"checked_by": "Lee Legal", "checked_on": "2024-01-01", "entry": "Acme Inc., UK Extension: active"}
    bridge = await owner.post(
        "/transfers", {**body, "mechanism": "uk-us-data-bridge", "importer_certification": record}
    )
    assert bridge.status_code == 201, bridge.text
    assert bridge.json()["importer_certification"]["checked_on"] == "2024-01-01"
    assert bridge.json()["instrument_date"] == "2024-01-01"  # defaults to the start date
    assessed = {
        a["transfer_id"]: a for a in (await owner.get("/transfers/assessment", as_of="2026-12-01")).json()["items"]
    }
    assert not assessed[wrong_regime["id"]]["valid"] and assessed[wrong_regime["id"]]["origin"] == "uk"
    assert "law of the United Kingdom" in assessed[wrong_regime["id"]]["reason"]
    assert "uk-us-data-bridge" in assessed[wrong_regime["id"]]["suggested_mechanisms"]
    assert assessed[bridge.json()["id"]]["valid"] and assessed[bridge.json()["id"]]["risks"] == []
    bad = await owner.post("/transfers", {**body, "origin": "mars", "importer_certification": {"checked_by": "x"}})
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert "origin" in fields and any(f.startswith("importer_certification") for f in fields), fields
    patched = await owner.patch(f"/transfers/{wrong_regime['id']}", {"instrument_date": "2023-12-01"})
    assert patched.status_code == 200 and patched.json()["instrument_date"] == "2023-12-01"
    assert (await owner.patch(f"/transfers/{wrong_regime['id']}", {"origin": None})).status_code == 422
    tid = bridge.json()["id"]
    direct = [("GET", f"/transfers/{tid}", None), ("PATCH", f"/transfers/{tid}", {"origin": "eea"})]
    probe = Probe("a UK transfer", tid, lists=["/transfers", "/transfers/assessment"], direct=direct)
    await assert_isolated(owner, await admin.new_tenant(), [probe])


@pytest.mark.html_face  # see tests/conftest.py: SQLite only
async def test_the_register_page_shows_where_data_comes_from_and_the_risks(admin: Api, client: Any) -> None:
    owner = await admin.new_tenant()
    await owner.post("/transfers", {"importer": "Lingua Ltd", "destination_country": "IN", "data_categories": ["x"],
                                    "mechanism": "scc-2021", "start_date": "2025-01-01", "origin": "ch"})  # fmt: skip
    browser = await signed_in(client, owner)
    page = await browser.get("/app/transfers", as_of="2026-12-01")
    assert page.status_code == 200
    assert "Switzerland" in page.text and "no transfer impact assessment" in page.text
    form = await browser.get("/app/transfers/new")
    assert "Where the data comes from" in form.text and "importer_certification.checked_by" in form.text


@pytest.mark.html_face  # see tests/conftest.py: SQLite only
async def test_the_form_records_origin_instrument_date_and_the_certification_check(admin: Api, client: Any) -> None:
    owner = await admin.new_tenant()
    browser = await signed_in(client, owner)
    fields = {
        "importer": "Acme Inc.", "importer_kind": "other", "destination_country": "US", "data_categories": "chats",
        "mechanism": "swiss-us-dpf", "start_date": "2025-02-01", "origin": "ch", "instrument_date": "2025-01-15",
        "importer_certified": "true", "importer_certification.checked_by": "Lee Legal",
        "importer_certification.checked_on": "", "importer_certification.entry": "Acme Inc., Swiss-U.S. DPF: active",
    }  # fmt: skip
    half = await browser.post("/app/transfers", fields)
    assert half.status_code == 422 and 'id="importer_certification-checked_on-error"' in half.text
    assert 'value="Lee Legal"' in half.text
    saved = await browser.post("/app/transfers", {**fields, "importer_certification.checked_on": "2025-01-30"})
    assert saved.status_code == 303, saved.text
    [transfer] = (await owner.get("/transfers")).json()["items"]
    assert (transfer["origin"], transfer["instrument_date"]) == ("ch", "2025-01-15")
    record = transfer["importer_certification"]
    assert (record["checked_by"], record["checked_on"]) == ("Lee Legal", "2025-01-30")
    assert record["entry"] == "Acme Inc., Swiss-U.S. DPF: active"
    [verdict] = (await owner.get("/transfers/assessment", as_of="2026-12-01")).json()["items"]
    assert verdict["valid"] and verdict["risks"] == [], verdict
