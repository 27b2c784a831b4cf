"""Business Days (clause 1.1 of the standard DPA) and the figure clause 9.3 sets for an inquiry's due date."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import holidays
import pytest
import yaml

from dpa_service.core import registry
from dpa_service.obligations import inquiries_recipients
from dpa_service.obligations.business_days import add_business_days, due_after, is_business_day
from dpa_service.obligations.inquiries_recipients import (
    DEFAULT_BUSINESS_DAYS,
    Recipients,
    business_days_of,
    minimum_due_at,
)

TEMPLATE = Path(__file__).parents[2] / "templates" / "dpa" / "standard-dpa"


@pytest.mark.parametrize(
    ("start", "days", "countries", "expected"),
    [
        (date(2026, 2, 6), 10, ("IE", "DE"), date(2026, 2, 20)),  # Friday + 10: the Friday two weeks on
        (date(2026, 2, 7), 10, ("IE", "DE"), date(2026, 2, 20)),  # sent on a Saturday: counting starts Monday
        (date(2026, 2, 8), 1, ("IE",), date(2026, 2, 9)),  # Sunday + 1: Monday
        (date(2026, 2, 9), 0, ("IE",), date(2026, 2, 9)),  # nothing to add
        (date(2026, 3, 6), 10, ("IE", "DE"), date(2026, 3, 23)),  # St Patrick's Day (IE, Tue 17 March) skipped
        (date(2025, 9, 26), 10, ("IE",), date(2025, 10, 10)),  # the processor's country alone
        (date(2025, 9, 26), 10, ("IE", "DE"), date(2025, 10, 13)),  # a German tenant: 3 October is a holiday too
        (date(2026, 12, 18), 10, ("IE", "DE"), date(2027, 1, 5)),  # Christmas and New Year's Day skipped
        (date(2026, 11, 20), 5, ("IE", "US"), date(2026, 11, 30)),  # Thanksgiving (US, Thu 26 November)
    ],
)
def test_adding_business_days_skips_weekends_and_either_countrys_public_holidays(
    start: date, days: int, countries: tuple[str, ...], expected: date
) -> None:
    assert add_business_days(start, days, countries) == expected


def test_a_weekday_holiday_is_no_business_day_and_a_plain_weekday_is() -> None:
    assert not is_business_day(date(2026, 3, 17), ("DE", "IE"))
    assert is_business_day(date(2026, 3, 17), ("DE",))
    assert not is_business_day(date(2026, 3, 14), ("DE",))  # a Saturday


def test_a_due_date_is_the_end_of_its_day_in_utc() -> None:
    sent = datetime(2026, 2, 6, 23, 30, tzinfo=UTC)
    assert due_after(sent, 10, ("IE",)) == datetime(2026, 2, 20, 23, 59, 59, tzinfo=UTC)


def test_every_country_the_service_accepts_has_a_holiday_calendar() -> None:
    assert set(registry.countries()) <= set(holidays.list_supported_countries())


def test_the_figure_comes_from_the_template_version_and_defaults_to_ten() -> None:
    obligations = yaml.safe_load((TEMPLATE / "obligations.yaml").read_text())
    assert business_days_of(obligations) == 10
    longer = [{"code": "answer_inquiries", "deadline": {"rule": "by_inquiry_due_date", "business_days": 15}}]
    assert business_days_of(longer) == 15
    assert business_days_of([{"code": "answer_inquiries", "deadline": {"rule": "by_inquiry_due_date"}}]) == 10
    assert business_days_of([]) == DEFAULT_BUSINESS_DAYS == 10


def test_the_shipped_figure_is_the_one_clause_9_3_states() -> None:
    text = " ".join((TEMPLATE / "dpa.html.j2").read_text().split())
    assert "no earlier than ten (10) Business Days after the inquiry is sent" in text
    assert "“Business Day”</strong> means a day other than a Saturday, Sunday or public holiday" in text


@pytest.mark.usefixtures("irish_processor")  # the dates below are an Irish processor's (no Columbus Day)
async def test_a_batch_is_due_no_earlier_than_the_latest_minimum_of_its_tenants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fifteen, irish, german = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def version_by_id(_db: Any, _scope: Any, template_id: uuid.UUID) -> Any:
        assert template_id == fifteen
        deadline = {"rule": "by_inquiry_due_date", "business_days": 15}
        return SimpleNamespace(obligations=[{"code": "answer_inquiries", "deadline": deadline}])

    monkeypatch.setattr(inquiries_recipients.templates, "version_by_id", version_by_id)
    sent = datetime(2025, 9, 26, 9, 0, tzinfo=UTC)  # a Friday; Friday 3 October is a German holiday
    no_dpa = Recipients([irish, german], {irish: "IE", german: "DE"}, {})
    assert await minimum_due_at(None, None, no_dpa, sent) == datetime(2025, 10, 13, 23, 59, 59, tzinfo=UTC)  # type: ignore[arg-type]
    longer = Recipients([irish, german], {irish: "IE", german: "DE"}, {irish: fifteen})
    assert await minimum_due_at(None, None, longer, sent) == datetime(2025, 10, 17, 23, 59, 59, tzinfo=UTC)  # type: ignore[arg-type]
