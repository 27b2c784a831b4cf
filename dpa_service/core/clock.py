"""One place that says what time it is, always timezone-aware UTC.

The source is replaceable (`travel_to`), so deadlines, notice periods and scheduled jobs can be tested at any
moment without sleeping; every module asks `utcnow()` rather than the system clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


def _system() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _system


def utcnow() -> datetime:
    return _source()


@contextmanager
def travel_to(moment: datetime) -> Iterator[None]:
    """Make `utcnow()` start at `moment` and run on from there (tests, `--as-of` tooling)."""
    global _source
    offset: timedelta = as_utc(moment) - _system()
    previous = _source
    _source = lambda: _system() + offset  # noqa: E731 - a closure over the offset is the whole point
    try:
        yield
    finally:
        _source = previous


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")
