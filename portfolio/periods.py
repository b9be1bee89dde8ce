"""Reporting periods: whole calendar months, compared like with like.

Every view is "a period and the period it is compared with". The periods people choose from
(:data:`PRESETS`) are made of **full** months only: the month in progress is never mixed into a
trend or a comparison (on 2026-12-02 a December of one day against a whole December is not a
comparison). It is reported apart as "month to date" (:func:`month_to_date`), ending at the last
complete day (today - 1), so a number never includes a day whose data may still be arriving.

The comparison is a choice (:data:`COMPARISONS`): the same months a year earlier (the default: it
takes seasonality out) or the same number of months just before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a frame is filtered: the CLI starts without it
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
    import pandas as pd

    days = pd.to_datetime(frame[column]).dt.date
    return frame[(days >= start) & (days <= end)]


#: preset key -> label, in the order a picker offers them (the first is the default)
PRESETS: dict[str, str] = {
    "last-12": "Last 12 full months",
    "last-month": "Last full month",
    "last-quarter": "Last full quarter",
    "ytd": "Year to date (full months)",
    "custom": "Custom",
}
DEFAULT_PRESET = "last-12"
#: comparison key -> label (the first is the default)
COMPARISONS: dict[str, str] = {
    "year": "Same months a year earlier",
    "previous": "The period just before",
}
DEFAULT_COMPARISON = "year"


@dataclass(frozen=True)
class Period:
    """Whole months from ``start`` (a 1st of a month) to ``end`` (inclusive).

    ``against`` is the period it is compared with (:meth:`previous` returns it); None means the
    same number of months immediately before.
    """

    start: date
    end: date
    against: Period | None = None

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
        """The period this one is compared with: ``against`` when set, else :meth:`just_before`."""
        return self.against if self.against is not None else self.just_before()

    def just_before(self) -> Period:
        """The same number of whole months immediately before ``start`` (ending the day before it)."""
        n = len(self.months)
        return Period(add_months(self.start, -n), self.start - timedelta(days=1))

    def year_earlier(self) -> Period:
        """The same months one year earlier (a partial last month: to the same day, or its month's end)."""
        start = add_months(self.start, -12)
        last = add_months(self.end, -12)
        end = month_end(last) if self.is_full else last.replace(day=min(self.end.day, month_end(last).day))
        return Period(start, end)

    def compared(self, how: str) -> Period:
        """This period compared with ``how`` (a :data:`COMPARISONS` key)."""
        if how == "year":
            return replace(self, against=self.year_earlier())
        if how == "previous":
            return replace(self, against=self.just_before())
        raise ValueError(f"comparison {how!r}: expected one of {', '.join(COMPARISONS)}")

    @property
    def is_full(self) -> bool:
        """True when the period ends on the last day of a month (no month in progress)."""
        return self.end == month_end(self.end)

    def contains(self, d: date) -> bool:
        return self.start <= d <= self.end


def last_full_month(today: date) -> date:
    """The 1st of the latest month that is complete by the last complete day (today - 1)."""
    return full_months(last_complete_day(today), 1)[0]


def default_period(today: date, months: int = 12) -> Period:
    """The last ``months`` **full** months (the month in progress is left out: see :func:`month_to_date`)."""
    if months < 1:
        raise ValueError(f"a period has at least one month, got months={months}")
    last = last_full_month(today)
    return Period(add_months(last, -(months - 1)), month_end(last))


def month_to_date(today: date) -> Period | None:
    """The month in progress, from its 1st to the last complete day; None when no month is in progress
    (today is the 1st: yesterday closed a month). Never compared, never part of a trend."""
    end = last_complete_day(today)
    if end == month_end(end):
        return None
    return Period(month_start(end), end)


def preset_period(preset: str, today: date, comparison: str = DEFAULT_COMPARISON) -> Period:
    """The period a :data:`PRESETS` key names (not ``custom``), compared as ``comparison`` says.

    All presets end at the last full month: last-12 = its 12 months; last-month = it alone;
    last-quarter = the latest calendar quarter that has ended; ytd = January to it, of its year
    (in January that is the whole previous year: the new year has no full month yet).
    """
    last = last_full_month(today)
    if preset == "last-12":
        period = default_period(today)
    elif preset == "last-month":
        period = Period(last, month_end(last))
    elif preset == "last-quarter":
        q_end = add_months(date(last.year, (last.month - 1) // 3 * 3 + 1, 1), 2)  # last month of last's quarter
        if q_end != last:
            q_end = add_months(q_end, -3)
        period = Period(add_months(q_end, -2), month_end(q_end))
    elif preset == "ytd":
        period = Period(date(last.year, 1, 1), month_end(last))
    elif preset == "custom":
        raise ValueError("preset 'custom' needs its months: use period_between")
    else:
        raise ValueError(f"period {preset!r}: expected one of {', '.join(PRESETS)}")
    return period.compared(comparison)


def parse_month(text: str, what: str = "month") -> date:
    """``"YYYY-MM"`` -> the 1st of that month; ValueError naming ``what`` otherwise."""
    m = _MONTH.match(str(text))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{what} {text!r}: expected a month as YYYY-MM, e.g. 2026-01")
    return date(int(m.group(1)), int(m.group(2)), 1)


def period_between(
    from_month: str | None, to_month: str | None, today: date, comparison: str = DEFAULT_COMPARISON
) -> Period:
    """The full months from ``from_month`` to ``to_month`` (``"YYYY-MM"``, inclusive), compared as
    ``comparison`` says.

    ``None`` takes the default period's end (the last full month) or its start (12 months back).
    The month in progress is never part of it: a later ``to_month`` is cut at the last full month,
    and a ``from_month`` after it is an error that says which month is the last full one.
    """
    default = default_period(today)
    end = default.end if to_month is None else min(month_end(parse_month(to_month, "to month")), default.end)
    if from_month is None:
        start = add_months(end, -11) if to_month is not None else default.start
    else:
        start = parse_month(from_month, "from month")
    if start > end:
        raise ValueError(
            f"from month {from_month!r} is after the period end {end.isoformat()} "
            f"(the last full month is {default.end:%Y-%m}; the month in progress is reported as month to date)"
        )
    return Period(start, end).compared(comparison)
