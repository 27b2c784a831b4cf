"""Business Days as the standard DPA defines them (clause 1.1): a day other than a Saturday, a Sunday or a public
holiday in the processor's country or in the country of the Subscriber's establishment.

Public holidays come from the `holidays` package (national holidays of each ISO country; regional ones, such as a
German Land's, are not counted: the DPA names the country, not a region). A country the package does not know
counts weekends only, which can only make a due date earlier by the holidays it misses, never later than the
package would; no country the service accepts today is unknown to it (`test_business_days`).

Days are UTC calendar days, the same as every date the service shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

SATURDAY = 5
END_OF_DAY = time(23, 59, 59)


@cache
def _holidays(country: str, year: int) -> frozenset[date]:
    # Imported on first use: the package builds its country classes lazily and the app need not pay at start.
    import holidays

    try:
        found = holidays.country_holidays(country, years=year)
    except NotImplementedError:  # a country the package does not cover: weekends only (see the module docstring)
        return frozenset()
    return frozenset(found.keys())


def public_holiday(day: date, countries: Iterable[str]) -> bool:
    return any(day in _holidays(code.upper(), day.year) for code in countries)


def is_business_day(day: date, countries: Iterable[str]) -> bool:
    codes = tuple(countries)
    return day.weekday() < SATURDAY and not public_holiday(day, codes)


def add_business_days(start: date, count: int, countries: Iterable[str]) -> date:
    """The `count`-th Business Day after `start` (`start` itself is not counted, whatever day it is)."""
    if count < 0:
        raise ValueError("count must not be negative")
    codes = tuple(countries)
    day, left = start, count
    while left:
        day += timedelta(days=1)
        if is_business_day(day, codes):
            left -= 1
    return day


def end_of_day(day: date) -> datetime:
    """The last second of `day`, UTC: a due date is met by anything done that day."""
    return datetime.combine(day, END_OF_DAY, tzinfo=UTC)


def due_after(moment: datetime, count: int, countries: Iterable[str]) -> datetime:
    """The end of the `count`-th Business Day after `moment`'s (UTC) day."""
    return end_of_day(add_business_days(moment.astimezone(UTC).date(), count, countries))
