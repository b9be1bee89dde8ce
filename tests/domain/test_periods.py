from datetime import date

import pytest

from portfolio.periods import (
    Period,
    as_of,
    default_period,
    full_months,
    last_complete_day,
    month_start,
    month_to_date,
    period_between,
    preset_period,
)


@pytest.mark.parametrize(
    "today, months, start, end",
    [
        # issue 10: the default is the last 12 FULL months (the month in progress is month to date)
        pytest.param(date(2026, 11, 23), 12, date(2025, 11, 1), date(2026, 10, 31), id="mid-month"),
        pytest.param(date(2026, 12, 1), 12, date(2025, 12, 1), date(2026, 11, 30), id="first-of-month"),
        pytest.param(date(2026, 12, 2), 12, date(2025, 12, 1), date(2026, 11, 30), id="second-of-month"),
        pytest.param(date(2026, 1, 1), 3, date(2025, 10, 1), date(2025, 12, 31), id="new-year"),
        pytest.param(date(2026, 3, 15), 1, date(2026, 2, 1), date(2026, 2, 28), id="one-month"),
    ],
)
def test_default_period(today, months, start, end):
    p = default_period(today, months)
    assert (p.start, p.end) == (start, end)
    assert len(p.months) == months
    assert p.is_full
    assert end <= last_complete_day(today)


@pytest.mark.parametrize(
    "today, mtd",
    [
        pytest.param(date(2026, 12, 2), (date(2026, 12, 1), date(2026, 12, 1)), id="second-one-day"),
        pytest.param(date(2026, 11, 23), (date(2026, 11, 1), date(2026, 11, 22)), id="mid-month"),
        pytest.param(date(2026, 12, 1), None, id="first-no-month-in-progress"),
    ],
)
def test_month_to_date(today, mtd):
    p = month_to_date(today)
    assert (None if p is None else (p.start, p.end)) == mtd


# today, preset, comparison -> (start, end), (compared start, compared end)
@pytest.mark.parametrize(
    "today, preset, comparison, period, against",
    [
        pytest.param(date(2026, 12, 2), "last-12", "year", ("2025-12-01", "2026-11-30"), ("2024-12-01", "2025-11-30"), id="2nd-last12"),
        pytest.param(date(2026, 12, 2), "last-12", "previous", ("2025-12-01", "2026-11-30"), ("2024-12-01", "2025-11-30"), id="2nd-last12-prev"),
        pytest.param(date(2026, 12, 2), "last-month", "year", ("2026-11-01", "2026-11-30"), ("2025-11-01", "2025-11-30"), id="2nd-month-yoy"),
        pytest.param(date(2026, 12, 2), "last-month", "previous", ("2026-11-01", "2026-11-30"), ("2026-10-01", "2026-10-31"), id="2nd-month-prev"),
        pytest.param(date(2026, 12, 2), "last-quarter", "year", ("2026-07-01", "2026-09-30"), ("2025-07-01", "2025-09-30"), id="2nd-quarter-yoy"),
        pytest.param(date(2026, 12, 2), "last-quarter", "previous", ("2026-07-01", "2026-09-30"), ("2026-04-01", "2026-06-30"), id="2nd-quarter-prev"),
        pytest.param(date(2026, 12, 2), "ytd", "year", ("2026-01-01", "2026-11-30"), ("2025-01-01", "2025-11-30"), id="2nd-ytd-yoy"),
        pytest.param(date(2026, 12, 2), "ytd", "previous", ("2026-01-01", "2026-11-30"), ("2025-02-01", "2025-12-31"), id="2nd-ytd-prev"),
        pytest.param(date(2026, 10, 1), "last-quarter", "year", ("2026-07-01", "2026-09-30"), ("2025-07-01", "2025-09-30"), id="quarter-just-ended"),
        pytest.param(date(2026, 1, 2), "ytd", "year", ("2025-01-01", "2025-12-31"), ("2024-01-01", "2024-12-31"), id="january-ytd-is-last-year"),
        pytest.param(date(2026, 1, 2), "last-quarter", "previous", ("2025-10-01", "2025-12-31"), ("2025-07-01", "2025-09-30"), id="january-quarter"),
        pytest.param(date(2024, 3, 2), "last-month", "year", ("2024-02-01", "2024-02-29"), ("2023-02-01", "2023-02-28"), id="leap-february"),
    ],
)  # fmt: skip
def test_presets(today, preset, comparison, period, against):
    p = preset_period(preset, today, comparison)
    assert (p.start.isoformat(), p.end.isoformat()) == period
    assert (p.previous().start.isoformat(), p.previous().end.isoformat()) == against
    assert p.is_full and p.end < today


def test_preset_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected one of last-12, last-month"):
        preset_period("last-week", date(2026, 12, 2))
    with pytest.raises(ValueError, match="comparison 'month'"):
        preset_period("ytd", date(2026, 12, 2), "month")


@pytest.mark.parametrize(
    "period, prev_start, prev_end, label",
    [
        pytest.param(Period(date(2025, 12, 1), date(2026, 11, 22)), date(2024, 12, 1), date(2025, 11, 30),
                     "2025-12 – 2026-11", id="twelve-months"),
        pytest.param(Period(date(2026, 3, 1), date(2026, 3, 31)), date(2026, 2, 1), date(2026, 2, 28),
                     "2026-03", id="one-month"),
        pytest.param(Period(date(2026, 1, 1), date(2026, 2, 10)), date(2025, 11, 1), date(2025, 12, 31),
                     "2026-01 – 2026-02", id="across-new-year"),
    ],
)  # fmt: skip
def test_previous_period_and_label(period, prev_start, prev_end, label):
    prev = period.previous()
    assert (prev.start, prev.end) == (prev_start, prev_end)
    assert len(prev.months) == len(period.months)
    assert period.label == label
    assert period.months[0] == period.start


@pytest.mark.parametrize(
    "from_month, to_month, start, end",
    [
        pytest.param("2026-01", "2026-03", date(2026, 1, 1), date(2026, 3, 31), id="explicit"),
        # issue 10: periods end at the last full month (2026-10 on 2026-11-23)
        pytest.param(None, None, date(2025, 11, 1), date(2026, 10, 31), id="defaults"),
        pytest.param("2026-06", None, date(2026, 6, 1), date(2026, 10, 31), id="from-only"),
        pytest.param(None, "2026-03", date(2025, 4, 1), date(2026, 3, 31), id="to-only-twelve-months"),
        pytest.param("2026-10", "2027-02", date(2026, 10, 1), date(2026, 10, 31), id="end-capped-at-last-full-month"),
    ],
)
def test_period_between(from_month, to_month, start, end):
    p = period_between(from_month, to_month, date(2026, 11, 23))
    assert (p.start, p.end) == (start, end)


@pytest.mark.parametrize(
    "from_month, to_month, message",
    [
        pytest.param("2026-13", None, "from month '2026-13'", id="bad-month"),
        pytest.param("january", None, "expected a month as YYYY-MM", id="not-a-month"),
        pytest.param("2026-05", "2026-04", "is after the period end", id="reversed"),
        pytest.param("2026-12", None, "is after the period end", id="future-start"),
        pytest.param("2026-11", None, "the last full month is 2026-10", id="month-in-progress"),
    ],
)
def test_period_between_rejects_bad_input(from_month, to_month, message):
    with pytest.raises(ValueError, match=message):
        period_between(from_month, to_month, date(2026, 11, 23))


def test_period_must_start_on_the_first():
    with pytest.raises(ValueError, match="starts on the 1st"):
        Period(date(2026, 1, 2), date(2026, 2, 1))


@pytest.mark.parametrize(
    "end, n, expected",
    [
        pytest.param(date(2026, 7, 14), 3, [date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)], id="mid-month"),
        pytest.param(date(2026, 6, 30), 2, [date(2026, 5, 1), date(2026, 6, 1)], id="month-end-counts"),
        pytest.param(date(2026, 2, 1), 2, [date(2025, 12, 1), date(2026, 1, 1)], id="across-year"),
    ],
)
def test_full_months(end, n, expected):
    assert full_months(end, n) == expected
    assert month_start(end) == date(end.year, end.month, 1)


@pytest.mark.parametrize(("text", "expected"), [("2026-06-15", date(2026, 6, 15)), (" 2026-06-15 ", date(2026, 6, 15))])
def test_as_of_parses_a_date(text: str, expected: date) -> None:
    assert as_of(text) == expected


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_as_of_defaults_to_todays_utc_date(empty: str | None) -> None:
    from datetime import UTC, datetime

    assert as_of(empty) == datetime.now(UTC).date()


def test_as_of_names_where_a_bad_date_came_from() -> None:
    with pytest.raises(ValueError, match=r"--today: 'yesterday' is not a date \(expected YYYY-MM-DD\)"):
        as_of("yesterday", "--today")
