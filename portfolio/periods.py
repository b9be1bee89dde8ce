"""Reporting periods: whole calendar months that end at the last complete day.

Every view of the dashboard is "a period and the period before it". A period starts on the 1st of
a month and ends (inclusive) at the end of a month or at the last complete day (today - 1), so a
number never includes a day whose data may still be arriving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd

_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


def as_of(text: str | None, where: str = "PORTFOLIO_TODAY") -> date:
    """The as-of date ``text`` (YYYY-MM-DD), or today's UTC date when it is empty.

    One parser for every entry point (``--today``, ``PORTFOLIO_TODAY`` in the CLI and the
    dashboard); a bad value raises ValueError naming ``where`` it came from.
    """
    if not text or not text.strip():
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a date (expected YYYY-MM-DD)") from None


def month_start(d: date) -> date:
    """The 1st of ``d``'s month."""
    return date(d.year, d.month, 1)


def add_months(d: date, n: int) -> date:
    """The 1st of the month ``n`` months after (``n`` < 0: before) ``d``'s month."""
    index = d.year * 12 + (d.month - 1) + n
    return date(index // 12, index % 12 + 1, 1)


def month_end(d: date) -> date:
    """The last day of ``d``'s month."""
    return add_months(d, 1) - timedelta(days=1)


def last_complete_day(today: date) -> date:
    """The last day whose data is complete: ``today - 1``."""
    return today - timedelta(days=1)


def full_months(end: date, n: int) -> list[date]:
    """The ``n`` most recent whole months that end on or before ``end`` (first days, oldest first).

    ``end``'s own month counts only when ``end`` is its last day.
    """
    last = month_start(end) if end == month_end(end) else add_months(end, -1)
    return [add_months(last, -i) for i in range(n - 1, -1, -1)]


def within(frame: pd.DataFrame, column: str, start: date, end: date) -> pd.DataFrame:
    """Rows whose ``column`` (dates, timestamps or month firsts) falls in ``start .. end`` inclusive."""
    if frame.empty:
        return frame
    days = pd.to_datetime(frame[column]).dt.date
    return frame[(days >= start) & (days <= end)]


@dataclass(frozen=True)
class Period:
    """Whole months from ``start`` (a 1st of a month) to ``end`` (inclusive)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise ValueError(f"a period starts on the 1st of a month, got {self.start.isoformat()}")
        if self.end < self.start:
            raise ValueError(f"period end {self.end.isoformat()} is before its start {self.start.isoformat()}")

    @property
    def months(self) -> list[date]:
        """First days of the months the period touches, oldest first."""
        count = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1
        return [add_months(self.start, i) for i in range(count)]

    @property
    def label(self) -> str:
        """``"2025-12 – 2026-11"`` (one month: ``"2026-11"``)."""
        first, last = self.start.strftime("%Y-%m"), self.end.strftime("%Y-%m")
        return first if first == last else f"{first} – {last}"

    def previous(self) -> Period:
        """The same number of whole months immediately before ``start`` (ending the day before it)."""
        n = len(self.months)
        return Period(add_months(self.start, -n), self.start - timedelta(days=1))

    def contains(self, d: date) -> bool:
        return self.start <= d <= self.end


def default_period(today: date, months: int = 12) -> Period:
    """The ``months`` calendar months ending at the last complete day (the current month partially)."""
    if months < 1:
        raise ValueError(f"a period has at least one month, got months={months}")
    end = last_complete_day(today)
    return Period(add_months(end, -(months - 1)), end)


def parse_month(text: str, what: str = "month") -> date:
    """``"YYYY-MM"`` -> the 1st of that month; ValueError naming ``what`` otherwise."""
    m = _MONTH.match(str(text))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{what} {text!r}: expected a month as YYYY-MM, e.g. 2026-01")
    return date(int(m.group(1)), int(m.group(2)), 1)


def period_between(from_month: str | None, to_month: str | None, today: date) -> Period:
    """The period from ``from_month`` to ``to_month`` (``"YYYY-MM"``, inclusive).

    ``None`` takes the default period's end: 12 months ending at the last complete day. The end
    is never later than the last complete day (a later ``to_month`` is cut there).
    """
    last = last_complete_day(today)
    default = default_period(today)
    end = default.end if to_month is None else min(month_end(parse_month(to_month, "to month")), last)
    if from_month is None:
        start = add_months(end, -11) if to_month is not None else default.start
    else:
        start = parse_month(from_month, "from month")
    if start > end:
        raise ValueError(f"from month {from_month!r} is after the period end {end.isoformat()}")
    return Period(start, end)
