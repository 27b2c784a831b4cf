"""Time field types for the obligations package's request schemas: an instant always arrives as aware UTC.

An instant with an offset may be a valid `datetime` and still have no UTC reading: `0001-01-01T00:00:00+14:00` is
before year 1 in UTC and `9999-12-31T23:59:59-01:00` after year 9999, so converting either raises OverflowError
(a 500 before this type). Converting here, in validation, turns that into a 422 naming the field, and every service
behind it computes on a UTC value. A naive time is refused (which 09:30?), as pydantic's `AwareDatetime` does.

How early or late a value may be is the service's rule (a breach notice's awareness no earlier than the GDPR, an
inquiry's due date within a year): each service checks its bounds before any arithmetic, so nothing overflows.
The obligations package's calendar dates (`ends_on`, `deleted_on`) are bounded that way too (within ten years of
today, or of the termination), so a plain `date` serves them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "is out of range: in UTC it falls outside the years 1 to 9999; give a date-time such as "
            "2026-01-31T12:00:00Z"
        ) from None


UTCInstant = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware date-time, converted to UTC; naive, or with no UTC reading, is a 422 naming the field."""


def one_year_after(day: date) -> date:
    """The same day a year later (29 February gives 28 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)
