"""Each obligation's status, derived from its deadline rule and what the tenant did: pure functions, no database.

The status is never stored (it changes with the clock and with events of other tables), so the ledger computes it
on each read from a `TenantFacts` gathered with one query per table (`ledger_facts`). The rules, by
`deadline.rule` of the template version's `obligations.yaml`:

    within_hours_of_awareness   overdue if a breach notice reported since the obligation came into force was late,
                                met if there is one and none was late, otherwise open
    by_inquiry_due_date         overdue if an unanswered inquiry is past its due date, open (due = the earliest
                                unanswered one's) while some are unanswered, met when all are answered, open if none
    continuous                  kept by attestation; with `every_months`, due that many months after the last
                                attestation (or coming into force): met before that if attested, open before that if
                                not, overdue after; without it, met once attested and never overdue
    before_transfer             every transfer outside the EU/EEA the Subscriber recorded itself, starting since
                                the obligation came into force, needs a notice (same destination) given on or before
                                its start date: overdue if one started without, open (due = its start date) while
                                one is still ahead without, met if all had notice, open if there are none
    within_days_of_termination  not applicable until the main agreement's end is recorded; then due at the end of
                                `deletion_due_on`: met once attested after the termination was recorded, overdue
                                after the due date, otherwise open

"Came into force" is the first executed DPA of the tenant that imposed the obligation (its code): a superseding DPA
carries the obligation on, so a new signature neither resets an annual attestation's clock nor wipes a late breach
notice off the ledger. A row of a superseded DPA is history: `not_applicable`, with when it ended.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dpa_service.core import registry
from dpa_service.obligations.models import ObligationStatus
from dpa_service.template_versions.services import DeadlineRule

PERSONNEL = "personnel_awareness"

# What attesting means for the codes of the standard DPA, in the next step the ledger suggests.
_ATTEST_WHAT = {
    "records_of_processing": "that you keep your records of processing (Art. 30(1) GDPR)",
    PERSONNEL: "that your personnel are aware of these obligations, with the number briefed",
    "delete_end_user_data": "that you deleted the end-user data",
}


@dataclass(frozen=True)
class BreachFacts:
    last_reported: datetime | None = None
    last_late: datetime | None = None  # the latest breach notice reported after its deadline


@dataclass(frozen=True)
class InquiryFacts:
    unanswered: int = 0
    earliest_due: datetime | None = None  # of the unanswered ones
    answered: int = 0


@dataclass(frozen=True)
class TerminationFacts:
    ends_on: date
    deletion_due_on: date
    recorded_at: datetime


@dataclass(frozen=True)
class TransferFacts:
    """One transfer outside the EU/EEA the Subscriber recorded, and its first notice for that destination."""

    transfer_id: uuid.UUID
    importer: str
    destination_country: str
    start_date: date
    first_notice_on: date | None

    @property
    def noticed(self) -> bool:
        return self.first_notice_on is not None and self.first_notice_on <= self.start_date


@dataclass(frozen=True)
class TenantFacts:
    """What one tenant did that the rules look at."""

    attested: Mapping[str, datetime] = field(default_factory=dict)  # code -> latest attestation
    in_force_since: Mapping[str, datetime] = field(default_factory=dict)  # code -> first DPA imposing it
    breaches: BreachFacts = BreachFacts()
    inquiries: InquiryFacts = InquiryFacts()
    termination: TerminationFacts | None = None
    transfers: tuple[TransferFacts, ...] = ()


@dataclass(frozen=True)
class Derived:
    status: ObligationStatus
    detail: str  # what the status rests on
    next_step: str | None = None  # what the Subscriber should do now
    due_at: datetime | None = None
    transfers_without_notice: tuple[uuid.UUID, ...] = ()


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (the month's last day if it is shorter: 31 Jan + 1 = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def end_of(day: date) -> datetime:
    """The last second of `day`, UTC: a deadline "by" a date includes the whole of that day."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(seconds=1)


def _day(moment: datetime | date) -> str:
    return (moment.date() if isinstance(moment, datetime) else moment).isoformat()


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def ended(ended_at: datetime) -> Derived:
    return Derived(
        ObligationStatus.NOT_APPLICABLE,
        f"Ended on {_day(ended_at)}: a newer DPA replaced this agreement and carries its obligations on.",
    )


def derive(
    code: str, deadline: Mapping[str, Any], in_force_from: datetime, facts: TenantFacts, now: datetime
) -> Derived:
    """The status of one obligation in force (not ended) at `now`."""
    since = min(in_force_from, facts.in_force_since.get(code, in_force_from))
    rule = deadline.get("rule")
    if rule == DeadlineRule.WITHIN_HOURS_OF_AWARENESS:
        return _breaches(int(deadline.get("hours", 72)), facts.breaches, since)
    if rule == DeadlineRule.BY_INQUIRY_DUE_DATE:
        return _inquiries(facts.inquiries, now)
    if rule == DeadlineRule.BEFORE_TRANSFER:
        return _transfers(facts.transfers, since, now)
    if rule == DeadlineRule.WITHIN_DAYS_OF_TERMINATION:
        return _deletion(code, facts.termination, facts.attested.get(code), now)
    # continuous, and any rule a newer version may add that this code does not know yet: kept by attestation.
    return _attested(code, deadline.get("every_months"), facts.attested.get(code), since, now)


def _breaches(hours: int, breaches: BreachFacts, since: datetime) -> Derived:
    report = f"Report any personal data breach within {hours} hours of becoming aware of it."
    if breaches.last_late is not None and breaches.last_late >= since:
        return Derived(
            ObligationStatus.OVERDUE,
            f"A breach notice reported on {_day(breaches.last_late)} came more than {hours} hours after becoming "
            "aware of the breach.",
            report + " Add what you learn later as updates to the notice.",
        )
    if breaches.last_reported is not None and breaches.last_reported >= since:
        return Derived(
            ObligationStatus.MET,
            f"Every breach notice since {_day(since)} was reported within {hours} hours (the latest on "
            f"{_day(breaches.last_reported)}).",
            report,
        )
    return Derived(ObligationStatus.OPEN, f"No breach notice reported since {_day(since)}.", report)


def _inquiries(inquiries: InquiryFacts, now: datetime) -> Derived:
    due = inquiries.earliest_due
    if inquiries.unanswered and due is not None:
        waiting = _count(inquiries.unanswered, "inquiry", "inquiries") + " from the processor unanswered"
        if due < now:
            return Derived(ObligationStatus.OVERDUE, f"{waiting}; one was due on {_when(due)}.",
                           "Answer the overdue inquiry now.", due)  # fmt: skip
        return Derived(ObligationStatus.OPEN, f"{waiting}; the earliest is due on {_when(due)}.",
                       f"Answer it by {_when(due)}.", due)  # fmt: skip
    if inquiries.answered:
        answered = _count(inquiries.answered, "inquiry", "inquiries")
        return Derived(ObligationStatus.MET, f"Every inquiry from the processor answered ({answered}).",
                       "Answer any new inquiry by its due date.")  # fmt: skip
    return Derived(ObligationStatus.OPEN, "No inquiry from the processor so far.",
                   "Answer any inquiry by its due date.")  # fmt: skip


def _attest_step(code: str) -> str:
    return f"Attest {_ATTEST_WHAT.get(code, 'that you keep this obligation')}"


def _attested(code: str, every: Any, last: datetime | None, since: datetime, now: datetime) -> Derived:
    if not every:
        if last is not None:
            return Derived(ObligationStatus.MET, f"Attested on {_day(last)}.")
        return Derived(ObligationStatus.OPEN, "Not attested yet.", _attest_step(code) + ".")
    due = add_months(last or since, int(every))
    period = "once a year" if int(every) == 12 else f"every {int(every)} months"
    if now >= due:
        basis = f"Last attested on {_day(last)}" if last else f"Not attested since it came into force on {_day(since)}"
        return Derived(ObligationStatus.OVERDUE, f"{basis}; it is attested {period}, and was due by {_day(due)}.",
                       _attest_step(code) + " now.", due)  # fmt: skip
    if last is not None:
        return Derived(ObligationStatus.MET, f"Attested on {_day(last)}; attested {period}.",
                       _attest_step(code) + f" again by {_day(due)}.", due)  # fmt: skip
    return Derived(ObligationStatus.OPEN, f"Not attested yet; it is attested {period}.",
                   _attest_step(code) + f" by {_day(due)}.", due)  # fmt: skip


def _named(transfers: list[TransferFacts]) -> str:
    return "; ".join(
        f"{t.importer} ({registry.country_name(t.destination_country)}) from {t.start_date}" for t in transfers
    )


def _transfers(transfers: tuple[TransferFacts, ...], since: datetime, now: datetime) -> Derived:
    relevant = [t for t in transfers if t.start_date >= since.date()]
    missing = [t for t in relevant if not t.noticed]
    started = [t for t in missing if t.start_date < now.date()]
    ahead = sorted((t for t in missing if t.start_date >= now.date()), key=lambda t: t.start_date)
    ids = tuple(t.transfer_id for t in started + ahead)
    notice = "Give the processor written notice before each transfer outside the EU/EEA (Transfers, Transfer notices)."
    if started:
        return Derived(ObligationStatus.OVERDUE,
                       f"Not met for the transfer{'s' if len(started) > 1 else ''} to {_named(started)}: no notice "
                       "for that destination was given before it started.", notice,
                       transfers_without_notice=ids)  # fmt: skip
    if ahead:
        due = end_of(ahead[0].start_date)
        return Derived(ObligationStatus.OPEN, f"No notice yet for the transfer to {_named(ahead[:1])}.",
                       f"Give notice of it by {ahead[0].start_date}.", due, ids)  # fmt: skip
    if relevant:
        return Derived(ObligationStatus.MET,
                       f"Every transfer outside the EU/EEA recorded since {_day(since)} had prior notice "
                       f"({_count(len(relevant), 'transfer', 'transfers')}).", notice)  # fmt: skip
    return Derived(ObligationStatus.OPEN, f"No transfer outside the EU/EEA recorded since {_day(since)}.", notice)


def _deletion(code: str, termination: TerminationFacts | None, last: datetime | None, now: datetime) -> Derived:
    if termination is None:
        return Derived(ObligationStatus.NOT_APPLICABLE, "Applies once the main agreement ends.")
    due = end_of(termination.deletion_due_on)
    if last is not None and last > termination.recorded_at:
        return Derived(ObligationStatus.MET, f"Deletion attested on {_day(last)}.", None, due)
    ends = f"The main agreement ends on {termination.ends_on}"
    if now > due:
        return Derived(ObligationStatus.OVERDUE, f"{ends}; deletion was due by {termination.deletion_due_on}.",
                       _attest_step(code) + " as soon as it is done.", due)  # fmt: skip
    return Derived(ObligationStatus.OPEN, f"{ends}; delete the end-user data by {termination.deletion_due_on}.",
                   _attest_step(code) + " once it is done.", due)  # fmt: skip
