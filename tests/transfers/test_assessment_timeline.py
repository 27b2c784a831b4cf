"""The as-of assessment across the timeline of real events (table-driven, then through HTTP)."""

from __future__ import annotations

from datetime import date

import pytest

from dpa_service.transfers.assessment import TransferFacts, assess

D = date
# (destination, mechanism, start, importer certified, as of, valid?, words the reason must contain)
TIMELINE = [
    ("US", "eu-us-privacy-shield", D(2018, 1, 1), True, D(2019, 9, 9), True, "Privacy Shield"),
    (
        "US",
        "eu-us-privacy-shield",
        D(2018, 1, 1),
        True,
        D(2020, 7, 17),
        False,
        "invalidated on 2020-07-16 (CJEU C-311/18",
    ),
    ("US", "eu-us-privacy-shield", D(2018, 1, 1), True, D(2020, 7, 16), False, "C-311/18"),
    ("US", "scc-2010", D(2019, 1, 1), None, D(2021, 3, 1), True, "2010"),
    ("US", "scc-2010", D(2019, 1, 1), None, D(2022, 12, 27), True, "2010"),
    ("US", "scc-2010", D(2019, 1, 1), None, D(2022, 12, 28), False, "replaced by 2022-12-27"),
    ("US", "scc-2010", D(2021, 10, 1), None, D(2021, 10, 1), False, "starting on or after 2021-09-28"),
    ("US", "eu-us-dpf", D(2023, 1, 1), True, D(2023, 7, 9), False, "from 2023-07-10"),
    ("US", "eu-us-dpf", D(2023, 1, 1), True, D(2023, 7, 10), True, "Data Privacy Framework"),
    ("US", "eu-us-dpf", D(2023, 1, 1), False, D(2023, 7, 10), False, "certified"),
    ("US", "uk-idta", D(2022, 1, 1), None, D(2022, 3, 20), False, "from 2022-03-21"),
    ("US", "uk-idta", D(2022, 1, 1), None, D(2022, 3, 21), True, "IDTA"),
    ("US", "swiss-us-dpf", D(2024, 1, 1), True, D(2024, 9, 14), False, "from 2024-09-15"),
    ("US", "swiss-us-dpf", D(2024, 1, 1), True, D(2024, 9, 15), True, "Swiss-U.S."),
    ("JP", "adequacy", D(2020, 1, 1), None, D(2021, 1, 1), True, "Japan has an EU adequacy decision"),
    ("IN", "adequacy", D(2020, 1, 1), None, D(2021, 1, 1), False, "no EU adequacy decision"),
    ("DE", "eu-us-privacy-shield", D(2018, 1, 1), None, D(2021, 1, 1), True, "in the EU/EEA"),
    ("JP", "eu-us-dpf", D(2023, 8, 1), False, D(2023, 8, 1), True, "adequacy"),
]


@pytest.mark.parametrize(("country", "mechanism", "start", "certified", "day", "valid", "words"), TIMELINE)
def test_assessment_timeline(
    country: str, mechanism: str, start: date, certified: bool | None, day: date, valid: bool, words: str
) -> None:
    verdict = assess(TransferFacts(country, mechanism, start, None, certified), day)
    assert verdict.valid is valid, verdict.reason
    assert words in verdict.reason
    if not valid:
        assert verdict.suggested, "an invalid transfer must come with replacements valid that day"


def test_suggestions_are_valid_on_the_day() -> None:
    july_2020 = assess(TransferFacts("US", "eu-us-privacy-shield", D(2018, 1, 1), None, True), D(2020, 7, 17))
    assert july_2020.suggested == ("scc-2010",)  # the 2021 SCCs and the DPF did not exist yet
    after_dpf = assess(TransferFacts("US", "eu-us-privacy-shield", D(2018, 1, 1), None, True), D(2023, 8, 1))
    assert after_dpf.suggested[:2] == ("eu-us-dpf", "scc-2021")
    uncertified = assess(TransferFacts("US", "eu-us-privacy-shield", D(2018, 1, 1), None, False), D(2023, 8, 1))
    assert "eu-us-dpf" not in uncertified.suggested and "scc-2021" in uncertified.suggested


def test_an_invalidation_recorded_by_legal_ends_a_mechanism() -> None:
    facts = TransferFacts("US", "eu-us-dpf", D(2023, 8, 1), None, True)
    assert assess(facts, D(2026, 1, 1)).valid
    verdict = assess(facts, D(2026, 1, 1), {"eu-us-dpf": D(2025, 12, 1)})
    assert not verdict.valid and "2025-12-01" in verdict.reason and "scc-2021" in verdict.suggested
