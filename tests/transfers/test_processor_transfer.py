"""Which mechanism carries the Subscriber's own transfer to a processor outside the EEA, and a mechanism legal
records as invalid is offered by no new DPA.

Clause 12.2 of the standard DPA: the first mechanism the Subscriber selected that is available for the transfer
applies, else the SCCs of Clause 12.3. A framework (Privacy Shield, DPF) is available only while the processor is
certified under it (registry/processor.yaml `certifications`); the SCCs in force are the 2010 ones before the
2021 ones (Decision (EU) 2021/914, in force 2021-06-27; the 2010 SCCs closed to new contracts from 2021-09-27).
"""

from __future__ import annotations

from datetime import date

import pytest

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.transfers.reactions import processor_mechanism
from tests.helpers.agreements import approve_standard_dpa, new_agreement, request_variables
from tests.helpers.api import Api

PS, DPF, SCC_2010, SCC_2021 = "eu-us-privacy-shield", "eu-us-dpf", "scc-2010", "scc-2021"

CASES = [
    # id (its source), selected mechanisms, origin, day, expected
    ("ps-while-certified-decision-2016-1250", [PS], "eea", date(2019, 3, 6), PS),
    ("ps-after-c-311-18-falls-back-to-2010-sccs", [PS], "eea", date(2021, 1, 4), SCC_2010),
    ("ps-after-2021-914-falls-back-to-2021-sccs", [PS], "eea", date(2021, 10, 13), SCC_2021),
    ("dpf-before-decision-2023-1795-is-not-available", [DPF, SCC_2021], "eea", date(2023, 7, 1), SCC_2021),
    ("dpf-once-the-processor-certified", [DPF, SCC_2021], "eea", date(2023, 8, 2), DPF),
    ("sccs-first-stay-first", [SCC_2021, DPF], "eea", date(2026, 12, 1), SCC_2021),
    ("adequacy-is-no-mechanism-for-the-us-decision-2023-1795-is-the-dpf", ["adequacy"], "eea", date(2026, 12, 1),
     SCC_2021),
    ("art-49-never-carries-systematic-transfers-edpb-2-2018", ["derogation-art49"], "eea", date(2026, 12, 1),
     SCC_2021),
    ("uk-export-uses-the-uk-addendum-from-2022-03-21", [DPF], "uk", date(2026, 12, 1), "uk-addendum"),
]  # fmt: skip


@pytest.mark.parametrize(("selected", "origin", "day", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_processor_transfer_takes_the_first_selected_mechanism_available_that_day(
    selected: list[str], origin: str, day: date, expected: str
) -> None:
    assert processor_mechanism(selected, origin, "US", day) == expected


async def test_a_mechanism_legal_recorded_as_invalid_is_refused_in_new_dpas_and_at_submit(
    admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    relying = {**request_variables(), "transfers": {"mechanisms": [SCC_2021, DPF]}}
    drafted = await new_agreement(owner, variables=relying)  # made while the DPF stands

    # Hypothetical, for the test: legal records the DPF invalid from today (as it would after a judgment).
    recorded = await legal.post(
        f"/transfer-mechanisms/{DPF}/invalidation",
        {"invalid_from": utcnow().date().isoformat(), "reason": "Test: a hypothetical annulment",
         "legal_reference": "Test only"},
    )  # fmt: skip
    assert recorded.status_code == 201, recorded.text

    before = len((await owner.get("/agreements")).json()["items"])
    refused = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": relying})
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["variables.transfers.mechanisms.1"]
    assert len((await owner.get("/agreements")).json()["items"]) == before, "nothing was created"
    submitted = await owner.post(f"/agreements/{drafted['id']}/submit")
    assert submitted.status_code == 422 and submitted.json()["errors"][0]["field"] == "variables.transfers.mechanisms.1"
    assert (await owner.get(f"/agreements/{drafted['id']}")).json()["status"] == "draft"
    fixed = await owner.patch(f"/agreements/{drafted['id']}", {"variables": {"transfers": {"mechanisms": [SCC_2021]}}})
    assert fixed.status_code == 200, fixed.text
