from datetime import date

import pytest

from portfolio.periods import (
    Period,
    as_of,
    default_period,
    full_months,
    last_complete_day,
    month_start,
    period_between,
)


@pytest.mark.parametrize(
    "today, months, start, end",
    [
        pytest.param(date(2026, 11, 23), 12, date(2025, 12, 1), date(2026, 11, 22), id="mid-month"),
        pytest.param(date(2026, 12, 1), 12, date(2025, 12, 1), date(2026, 11, 30), id="first-of-month"),
        pytest.param(date(2026, 1, 1), 3, date(2025, 10, 1), date(2025, 12, 31), id="new-year"),
        pytest.param(date(2026, 3, 15), 1, date(2026, 3, 1), date(2026, 3, 14), id="one-month"),
    ],
)
def test_default_period(today, months, start, end):
    p = default_period(today, months)
    assert (p.start, p.end) == (start, end)
    assert len(p.months) == months
    assert last_complete_day(today) == end


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
        pytest.param(None, None, date(2025, 12, 1), date(2026, 11, 22), id="defaults"),
        pytest.param("2026-06", None, date(2026, 6, 1), date(2026, 11, 22), id="from-only"),
        pytest.param(None, "2026-03", date(2025, 4, 1), date(2026, 3, 31), id="to-only-twelve-months"),
        pytest.param("2026-10", "2027-02", date(2026, 10, 1), date(2026, 11, 22), id="end-capped-at-last-complete-day"),
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
