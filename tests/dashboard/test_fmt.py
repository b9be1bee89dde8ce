"""How the dashboard writes numbers (the KPI tiles and the page tests both use these)."""

from __future__ import annotations

import math

import pytest

from portfolio.dashboard import fmt


@pytest.mark.parametrize(
    ("value", "currency", "decimals", "expected"),
    [
        pytest.param(1234567.4, "USD", 0, "$1,234,567", id="thousands"),
        pytest.param(-1234.5, "USD", 0, "-$1,234", id="negative-rounds-half-even"),
        pytest.param(-0.4, "USD", 0, "$0", id="no-negative-zero"),
        pytest.param(0.42, "USD", 2, "$0.42", id="cents"),
        pytest.param(99.5, "EUR", 0, "€100", id="euro"),
        pytest.param(10.0, "CHF", 0, "10 CHF", id="no-symbol"),
        pytest.param(math.nan, "USD", 0, "–", id="nan"),
        pytest.param(None, "USD", 0, "–", id="none"),
    ],
)
def test_money(value: float | None, currency: str, decimals: int, expected: str) -> None:
    assert fmt.money(value, currency, decimals) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(12_686_964.2, "$12.69M", id="millions"),
        pytest.param(-950_300.0, "-$950.3K", id="hundreds-of-thousands"),
        pytest.param(2_500_000_000.0, "$2.50B", id="billions"),
        pytest.param(812.4, "$812", id="small"),
    ],
)
def test_money_short(value: float, expected: str) -> None:
    assert fmt.money_short(value) == expected


@pytest.mark.parametrize(
    ("func", "value", "expected"),
    [
        pytest.param(fmt.money_delta, 1500.0, "+$1,500", id="money-up"),
        pytest.param(fmt.money_delta, -1500.0, "-$1,500", id="money-down"),
        pytest.param(fmt.money_short_delta, 2_353_030.0, "+$2.35M", id="short-up"),
        pytest.param(fmt.percent_delta, 0.378, "+37.8 pp", id="points"),
        pytest.param(fmt.money_delta, math.nan, None, id="missing"),
    ],
)
def test_deltas(func: object, value: float, expected: str | None) -> None:
    assert func(value) == expected  # type: ignore[operator]


@pytest.mark.parametrize(
    ("func", "value", "expected"),
    [
        pytest.param(fmt.percent, 3.611, "361.1%", id="roi"),
        pytest.param(fmt.percent, math.nan, "–", id="roi-of-no-cost"),
        pytest.param(fmt.hours, -0.2, "0 h", id="hours-no-negative-zero"),
        pytest.param(fmt.hours, 2835.4, "2,835 h", id="hours"),
        pytest.param(fmt.month, "2025-09-01", "2025-09", id="month"),
        pytest.param(fmt.month, None, "–", id="month-missing"),
    ],
)
def test_other_formats(func: object, value: object, expected: str) -> None:
    assert func(value) == expected  # type: ignore[operator]
