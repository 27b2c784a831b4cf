"""Each obligation's status, derived from its deadline rule and what the tenant did: pure functions, no database.

The status is never stored (it changes with the clock and with events of other tables), so the ledger computes it
on each read from a `TenantFacts` gathered with one query per table (`ledger_facts`). The rules, by
`deadline.rule` of the template version's `obligations.yaml`:

    within_hours_of_awareness   overdue for LATE_NOTICE_MONTHS (12) after a breach notice reported late (since the
                                obligation came into force); otherwise met if a notice was reported on time since
                                then, open if none was
    by_inquiry_due_date         overdue if an unanswered inquiry is past its due date, open (due = the earliest
                                unanswered one's) while some are unanswered, met when all are answered, open if none
    continuous                  kept by attestation; with `every_months`, due that many months after the last
                                attestation (or coming into force): met before that if attested, open before that if
                                not, overdue after; without it, met once attested and never overdue. Not applicable
                                once a recorded end of the main agreement (`ends_on`) has passed: they are about the
                                processing carried out through the service (records of it, the personnel using it)
    before_transfer             every transfer outside the EU/EEA the Subscriber recorded itself, starting since
                                the obligation came into force, needs a notice naming the same destination and the
                                same recipient (clause 9.5: the notice identifies the destination, the recipient and
                                the mechanism; `transfers.services.same_recipient`) filed on or before its start
                                date: overdue if one started without, open (due = its start date) while one is
                                still ahead without, met if all had notice, open if there are none; the detail
                                names each transfer without notice
    within_days_of_termination  not applicable until the main agreement's end is recorded; then due at the end of
                                `deletion_due_on`: met once attested after the termination was recorded, overdue
                                after the due date, otherwise open

A late breach notice is a breach of clause 9.2 that no later act undoes, but a ledger that shows it overdue for
ever stops telling the Subscriber anything: it stays overdue for a year after the late report (long enough for legal
to follow it up and for the annual review to see it), then the usual rule applies again and the detail still says
when a notice was reported late. Every notice stays on record in the breach notices themselves.

After the main agreement ends only some obligations run on. Clause 14.2 of the standard DPA keeps clause 9.7 (the
deletion) in force after the end, so `within_days_of_termination` keeps its rule; clause 14.1 keeps the DPA in force
while the processor still processes the data, so breaches, inquiries and transfers keep theirs; the continuous ones
end with the service they are about.

An attestation keeps only the continuous and the deletion obligations; `attestation_refusal` says why one would
change nothing otherwise (the API refuses it with 409, the page offers the way it is kept instead).

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
LATE_NOTICE_MONTHS = 12  # how long a late breach notice keeps `within_hours_of_awareness` overdue (see above)

# What attesting means for the codes of the standard DPA, in the next step the ledger suggests.
_ATTEST_WHAT = {
    "records_of_processing": "that you keep your records of processing (Art. 30(1) GDPR)",
    PERSONNEL: "that your personnel are aware of these obligations, with the number briefed",
    "delete_end_user_data": "that you deleted the end-user data",
}


@dataclass(frozen=True)
class BreachFacts:
    last_on_time: datetime | None = None  # the latest breach notice reported by its deadline
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
    """One transfer outside the EU/EEA the Subscriber recorded, and its first notice naming its destination and its
    recipient."""

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


@dataclass(frozen=True)
class KeptBy:
    """Where an obligation that no attestation keeps is kept instead: the page and what to do there."""

    href: str
    label: str
    how: str


# By rule: the obligations kept by what the Subscriber does, not by what it states.
KEPT_BY = {
    DeadlineRule.WITHIN_HOURS_OF_AWARENESS: KeptBy(
        "/app/breach-notices", "Breach notices",
        "it is kept by notifying the processor of each personal data breach in a breach notice, within the hours "
        "the DPA gives",
    ),
    DeadlineRule.BY_INQUIRY_DUE_DATE: KeptBy(
        "/app/inquiries", "Inquiries", "it is kept by answering each of the processor's inquiries by its due date"
    ),
    DeadlineRule.BEFORE_TRANSFER: KeptBy(
        "/app/transfers/notices", "Transfer notices",
        "it is kept by giving a transfer notice naming the destination, the recipient and the mechanism before each "
        "transfer outside the EU/EEA",
    ),
}  # fmt: skip
RECORD_THE_END = KeptBy(
    "/app/exit", "Exit",
    "it applies once the main agreement ends, so record the end first and attest the deletion once it is done",
)  # fmt: skip


def _ended_on(termination: TerminationFacts | None, now: datetime) -> date | None:
    """The day the main agreement ended, once that day is over; None while it runs (or no end is recorded)."""
    return termination.ends_on if termination is not None and now > end_of(termination.ends_on) else None


def attestation_refusal(rule: Any, termination: TerminationFacts | None, now: datetime) -> KeptBy | None:
    """Why an attestation of an obligation with `rule` would change nothing at `now`, and where to go instead
    (None: the attestation counts)."""
    if rule in KEPT_BY:
        return KEPT_BY[rule]
    if rule == DeadlineRule.WITHIN_DAYS_OF_TERMINATION and termination is None:
        return RECORD_THE_END
    if rule == DeadlineRule.CONTINUOUS and (ended_on := _ended_on(termination, now)) is not None:
        return KeptBy("/app/exit", "Exit", f"it no longer applies since the main agreement ended on {ended_on}")
    return None


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
        return _breaches(int(deadline.get("hours", 72)), facts.breaches, since, now)
    if rule == DeadlineRule.BY_INQUIRY_DUE_DATE:
        return _inquiries(facts.inquiries, now)
    if rule == DeadlineRule.BEFORE_TRANSFER:
        return _transfers(facts.transfers, since, now)
    if rule == DeadlineRule.WITHIN_DAYS_OF_TERMINATION:
        return _deletion(code, facts.termination, facts.attested.get(code), now)
    if rule == DeadlineRule.CONTINUOUS and (ended_on := _ended_on(facts.termination, now)) is not None:
        return Derived(ObligationStatus.NOT_APPLICABLE,
                       f"No longer applies: the main agreement ended on {ended_on}, and with it the processing "
                       "through the service that this obligation is about.")  # fmt: skip
    # continuous, and any rule a newer version may add that this code does not know yet: kept by attestation.
    return _attested(code, deadline.get("every_months"), facts.attested.get(code), since, now)


def _breaches(hours: int, breaches: BreachFacts, since: datetime, now: datetime) -> Derived:
    report = f"Report any personal data breach within {hours} hours of becoming aware of it."
    late = breaches.last_late if breaches.last_late is not None and breaches.last_late >= since else None
    on_time = breaches.last_on_time if breaches.last_on_time is not None and breaches.last_on_time >= since else None
    if late is not None and now < (until := add_months(late, LATE_NOTICE_MONTHS)):
        return Derived(
            ObligationStatus.OVERDUE,
            f"A breach notice was reported late on {_day(late)}: more than {hours} hours after becoming aware of the "
            f"breach. The obligation shows overdue for {LATE_NOTICE_MONTHS} months after a late report, until "
            f"{_day(until)}.",
            report + " Add what you learn later as updates to the notice.",
        )
    if late is None:
        if on_time is None:
            return Derived(ObligationStatus.OPEN, f"No breach notice reported since {_day(since)}.", report)
        return Derived(ObligationStatus.MET, f"Every breach notice since {_day(since)} was reported within {hours} "
                       f"hours (the latest on {_day(on_time)}).", report)  # fmt: skip
    earlier = f"A breach notice was reported late on {_day(late)}, more than {LATE_NOTICE_MONTHS} months ago"
    if on_time is not None:
        return Derived(ObligationStatus.MET, f"{earlier}. The latest notice reported within {hours} hours was on "
                       f"{_day(on_time)}.", report)  # fmt: skip
    return Derived(ObligationStatus.OPEN, f"{earlier}. None was reported on time since {_day(since)}.", report)


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


_NAMED = 5  # transfers named in a detail; the rest are counted (all are in `transfers_without_notice`)


def _named(transfers: list[TransferFacts]) -> str:
    named = "; ".join(
        f"{t.importer} ({registry.country_name(t.destination_country)}) from {t.start_date}" for t in transfers[:_NAMED]
    )
    return named + (f"; and {len(transfers) - _NAMED} more" if len(transfers) > _NAMED else "")


def _transfers(transfers: tuple[TransferFacts, ...], since: datetime, now: datetime) -> Derived:
    relevant = [t for t in transfers if t.start_date >= since.date()]
    missing = [t for t in relevant if not t.noticed]
    started = [t for t in missing if t.start_date < now.date()]
    ahead = sorted((t for t in missing if t.start_date >= now.date()), key=lambda t: t.start_date)
    ids = tuple(t.transfer_id for t in started + ahead)
    notice = ("Give the processor written notice naming the destination, the recipient and the mechanism before "
              "each transfer outside the EU/EEA (Transfers, Transfer notices).")  # fmt: skip
    if started:
        still = f" Still ahead without notice: {_named(ahead)}." if ahead else ""
        return Derived(ObligationStatus.OVERDUE,
                       f"Not met for the transfer{'s' if len(started) > 1 else ''} to {_named(started)}: no notice "
                       f"naming that recipient and destination was filed on or before the start date.{still}",
                       notice, transfers_without_notice=ids)  # fmt: skip
    if ahead:
        due = end_of(ahead[0].start_date)
        return Derived(ObligationStatus.OPEN,
                       f"No notice yet naming the recipient and destination of the transfer"
                       f"{'s' if len(ahead) > 1 else ''} to {_named(ahead)}.",
                       f"Give notice of it by {ahead[0].start_date}.", due, ids)  # fmt: skip
    if relevant:
        return Derived(ObligationStatus.MET,
                       f"Every transfer outside the EU/EEA recorded since {_day(since)} had prior notice naming its "
                       f"recipient and destination ({_count(len(relevant), 'transfer', 'transfers')}).",
                       notice)  # fmt: skip
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
