"""The status rules on their own (no database): each rule's statuses and due dates at chosen moments."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from dpa_service.obligations.ledger_rules import (
    BreachFacts,
    InquiryFacts,
    TenantFacts,
    TerminationFacts,
    TransferFacts,
    add_months,
    derive,
    end_of,
)

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)  # the DPA's execution
HOUR = timedelta(hours=1)
BREACH = {"rule": "within_hours_of_awareness", "hours": 72}
INQUIRIES = {"rule": "by_inquiry_due_date"}
ANNUAL = {"rule": "continuous", "every_months": 12}
DELETION = {"rule": "within_days_of_termination", "days": 30}


def _status(code: str, deadline: dict, facts: TenantFacts, now: datetime) -> tuple[str, datetime | None]:
    derived = derive(code, deadline, T0, facts, now)
    return derived.status.value, derived.due_at


@pytest.mark.parametrize(
    ("breaches", "expected"),
    [
        (BreachFacts(), "open"),
        (BreachFacts(last_on_time=T0 + HOUR), "met"),
        (BreachFacts(last_on_time=T0 + 2 * HOUR, last_late=T0 + HOUR), "overdue"),
        # A late notice from before the obligation came into force does not count against it.
        (BreachFacts(last_on_time=T0 - HOUR, last_late=T0 - HOUR), "open"),
    ],
)
def test_breach_notice_rule(breaches: BreachFacts, expected: str) -> None:
    assert _status("breach_notice_72h", BREACH, TenantFacts(breaches=breaches), T0 + 10 * HOUR)[0] == expected


def test_a_late_breach_notice_is_overdue_for_twelve_months_then_the_usual_rule_applies() -> None:
    late = T0 + 24 * HOUR
    year = add_months(late, 12)

    def check(breaches: BreachFacts, now: datetime) -> tuple[str, str]:
        derived = derive("breach_notice_72h", BREACH, T0, TenantFacts(breaches=breaches), now)
        return derived.status.value, derived.detail

    only_late, also_on_time = BreachFacts(last_late=late), BreachFacts(last_on_time=T0 + 2 * HOUR, last_late=late)
    status, detail = check(only_late, year - HOUR)
    assert status == "overdue" and "reported late on 2026-03-02" in detail and f"until {year.date()}" in detail
    assert check(also_on_time, year - HOUR)[0] == "overdue"
    status, detail = check(only_late, year)
    assert status == "open" and "reported late on 2026-03-02" in detail
    status, detail = check(also_on_time, year + HOUR)
    assert status == "met" and "reported late on 2026-03-02" in detail
    # Another late notice starts the twelve months again.
    assert check(BreachFacts(last_late=year - 24 * HOUR), year + HOUR)[0] == "overdue"


def test_a_superseding_dpa_carries_the_clock_on() -> None:
    """A late notice under the first DPA still shows after a newer DPA took over (in force since the first)."""
    facts = TenantFacts(breaches=BreachFacts(last_late=T0 + HOUR), in_force_since={"breach_notice_72h": T0})
    later = derive("breach_notice_72h", BREACH, T0 + 30 * 24 * HOUR, facts, T0 + 31 * 24 * HOUR)
    assert later.status.value == "overdue"


@pytest.mark.parametrize(
    ("inquiries", "now", "expected"),
    [
        (InquiryFacts(), T0, ("open", None)),
        (InquiryFacts(unanswered=2, earliest_due=T0 + 5 * HOUR), T0, ("open", T0 + 5 * HOUR)),
        (InquiryFacts(unanswered=1, earliest_due=T0 + 5 * HOUR, answered=3), T0 + 6 * HOUR, ("overdue", T0 + 5 * HOUR)),
        (InquiryFacts(answered=1), T0, ("met", None)),
    ],
)
def test_inquiry_rule(inquiries: InquiryFacts, now: datetime, expected: tuple) -> None:
    assert _status("answer_inquiries", INQUIRIES, TenantFacts(inquiries=inquiries), now) == expected


def test_annual_attestation_rule_and_the_older_rule_without_a_period() -> None:
    year = add_months(T0, 12)
    none, attested = TenantFacts(), TenantFacts(attested={"records_of_processing": T0 + 24 * HOUR})
    assert _status("records_of_processing", ANNUAL, none, T0) == ("open", year)
    assert _status("records_of_processing", ANNUAL, none, year) == ("overdue", year)
    assert _status("records_of_processing", ANNUAL, attested, year) == ("met", year + 24 * HOUR)
    assert _status("records_of_processing", ANNUAL, attested, year + 25 * HOUR)[0] == "overdue"
    # Versions without `every_months`: met once attested, never overdue.
    decade, older = add_months(T0, 120), {"rule": "continuous"}
    assert _status("records_of_processing", older, none, decade) == ("open", None)
    assert _status("records_of_processing", older, attested, decade) == ("met", None)


def test_months_end_on_the_shorter_months_last_day() -> None:
    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2028, 2, 29, 8, tzinfo=UTC), 12) == datetime(2029, 2, 28, 8, tzinfo=UTC)


def _transfer(start: date, notice: date | None, importer: str = "Acme Inc.") -> TransferFacts:
    return TransferFacts(uuid.uuid4(), importer, "US", start, notice)


def test_prior_notice_rule_per_transfer() -> None:
    today = (T0 + 40 * 24 * HOUR).date()
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + 12 * HOUR
    rule = {"rule": "before_transfer"}

    def check(*transfers: TransferFacts) -> tuple[str, datetime | None]:
        return _status("transfer_prior_notice", rule, TenantFacts(transfers=transfers), now)

    assert check() == ("open", None)
    assert check(_transfer(today, today)) == ("met", None)  # a same-day notice is given before the transfer
    assert check(_transfer(T0.date() - timedelta(days=9), None)) == ("open", None)  # before the DPA: not its duty
    ahead = _transfer(today + timedelta(days=3), None)
    assert check(ahead) == ("open", end_of(today + timedelta(days=3)))
    late = _transfer(today - timedelta(days=1), today, importer="Late Ltd")
    derived = derive("transfer_prior_notice", rule, T0, TenantFacts(transfers=(late, ahead)), now)
    assert derived.status.value == "overdue"
    assert f"Not met for the transfer to Late Ltd (United States) from {late.start_date}" in derived.detail
    assert f"Still ahead without notice: Acme Inc. (United States) from {ahead.start_date}." in derived.detail
    assert derived.transfers_without_notice == (late.transfer_id, ahead.transfer_id)


def test_deletion_rule_after_termination() -> None:
    recorded = T0 + 24 * HOUR
    ends = TerminationFacts(ends_on=date(2026, 4, 1), deletion_due_on=date(2026, 5, 1), recorded_at=recorded)
    due = datetime(2026, 5, 1, 23, 59, 59, tzinfo=UTC)
    assert _status("delete_end_user_data", DELETION, TenantFacts(), T0) == ("not_applicable", None)
    assert _status("delete_end_user_data", DELETION, TenantFacts(termination=ends), recorded) == ("open", due)
    assert _status("delete_end_user_data", DELETION, TenantFacts(termination=ends), due + HOUR) == ("overdue", due)
    attested = TenantFacts(termination=ends, attested={"delete_end_user_data": due + HOUR})
    assert _status("delete_end_user_data", DELETION, attested, due + 2 * HOUR) == ("met", due)
    before = TenantFacts(termination=ends, attested={"delete_end_user_data": recorded - HOUR})
    assert _status("delete_end_user_data", DELETION, before, recorded)[0] == "open"


def test_after_the_main_agreement_ends_the_continuous_obligations_no_longer_apply_and_the_deletion_runs_on() -> None:
    recorded = T0 + 24 * HOUR
    ends = TerminationFacts(ends_on=date(2026, 4, 1), deletion_due_on=date(2026, 5, 1), recorded_at=recorded)
    facts = TenantFacts(termination=ends, attested={"records_of_processing": recorded})
    last_day, after = datetime(2026, 4, 1, 23, 0, tzinfo=UTC), datetime(2026, 4, 2, 0, 0, 1, tzinfo=UTC)
    assert _status("records_of_processing", ANNUAL, facts, last_day)[0] == "met"
    for code in ("records_of_processing", "personnel_awareness"):
        derived = derive(code, ANNUAL, T0, facts, after)
        assert derived.status.value == "not_applicable" and derived.due_at is None
        assert "the main agreement ended on 2026-04-01" in derived.detail
    assert _status("delete_end_user_data", DELETION, facts, after) == ("open", end_of(date(2026, 5, 1)))
    # Clause 14.1: the DPA stays in force while the processor still processes the data.
    assert _status("breach_notice_72h", BREACH, TenantFacts(termination=ends), after)[0] == "open"
