"""Chart functions: pure DataFrame -> alt.Chart, checked through the Vega-Lite spec (``.to_dict()``)."""

from __future__ import annotations

from datetime import date
from typing import Any

import altair as alt
import pandas as pd
import pytest

from portfolio.dashboard import charts


def spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    return chart.to_dict()


def data_of(s: dict[str, Any], layer: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows a (layer of a) chart plots, from the spec's named datasets."""
    name = (layer or s).get("data", s.get("data", {})).get("name")
    return list(s["datasets"][name])


APPS = pd.DataFrame(
    {
        "app_id": ["a", "b"],
        "name": ["Alpha", None],
        "team": ["search", "risk"],
        "value": [1000.0, 50.0],
        "cost": [400.0, 300.0],
        "net": [600.0, -250.0],
        "roi": [1.5, -0.8333],
        "maintenance_hours": [10.0, 40.0],
        "extra": [1, 2],
    }
)


def test_quadrant_plots_value_against_cost_sized_by_hours_with_a_break_even_line() -> None:
    s = spec(charts.value_cost_quadrant(APPS))
    line, points, labels = s["layer"]
    enc = points["encoding"]
    assert points["mark"]["type"] == "circle"
    # issue 15: colour is the team group (the teams that weigh most, then "Other teams")
    assert (enc["x"]["field"], enc["y"]["field"], enc["size"]["field"], enc["color"]["field"]) == (
        "cost",
        "value",
        "maintenance_hours",
        "team_group",
    )
    rows = data_of(s, points)
    assert [r["name"] for r in rows] == ["Alpha", "b"]  # a missing name falls back to the id
    assert "extra" not in rows[0]
    assert labels["mark"]["type"] == "text" and [r["label"] for r in data_of(s, labels)] == ["Alpha", "b"]
    # break-even diagonal from 0 to the largest of value and cost
    assert line["mark"]["type"] == "line"
    assert data_of(s, line) == [{"cost": 0.0, "value": 0.0}, {"cost": 1000.0, "value": 1000.0}]


MONTHLY = pd.DataFrame(
    {
        "month": [date(2026, 1, 1), date(2026, 2, 1)],
        "value": [100.0, 120.0],
        "cost": [80.0, 90.0],
        "net": [20.0, 30.0],
    }
)


def test_monthly_series_is_long_format_one_line_per_series() -> None:
    s = spec(charts.monthly_series(MONTHLY))
    rows = data_of(s)
    assert len(rows) == 6
    assert {(r["month"], r["series"], r["amount"]) for r in rows} >= {
        ("2026-01", "value", 100.0),
        ("2026-02", "cost", 90.0),
        ("2026-02", "net", 30.0),
    }
    assert s["mark"]["type"] == "line"
    assert s["encoding"]["color"]["scale"]["domain"] == ["value", "cost", "net"]


def test_cost_by_category_stacks_monthly_sums() -> None:
    costs = pd.DataFrame(
        {
            "month": [date(2026, 1, 1), date(2026, 1, 1), date(2026, 2, 1)],
            "category": ["infra", "vendor", "infra"],
            "service": ["gpu", "api", "gpu"],
            "amount": [10.0, 5.0, 12.5],
        }
    )
    s = spec(charts.cost_by_category(costs))
    assert s["mark"]["type"] == "bar"
    assert s["encoding"]["y"]["aggregate"] == "sum" and s["encoding"]["y"]["field"] == "amount"
    assert s["encoding"]["color"]["field"] == "category"
    assert [r["month"] for r in data_of(s)] == ["2026-01", "2026-01", "2026-02"]


def test_availability_chart_draws_the_slo_rule() -> None:
    uptime = pd.DataFrame({"month": [date(2026, 1, 1), date(2026, 2, 1)], "availability": [0.999, 0.98]})
    s = spec(charts.availability_vs_slo(uptime, 0.995))
    line, rule = s["layer"]
    assert rule["mark"]["type"] == "rule" and data_of(s, rule) == [{"slo": 0.995}]
    assert [r["met"] for r in data_of(s, line)] == [True, False]


def test_value_by_evidence_splits_kinds_into_columns_and_grades_into_colours() -> None:
    frame = pd.DataFrame(
        {
            "team": ["search", "search", "risk"],
            "kind": ["revenue_capture", "revenue_capture", "cost_avoidance"],
            "evidence": ["experiment", "estimate", "observational"],
            "value": [100.0, 40.0, 70.0],
            "value_low": [90.0, 20.0, 60.0],
            "value_high": [110.0, 60.0, 80.0],
        }
    )
    s = spec(charts.value_by_evidence(frame))
    enc = s["encoding"]
    assert enc["column"]["field"] == "kind"
    assert enc["color"]["field"] == "evidence"
    assert enc["color"]["scale"]["domain"] == ["experiment", "observational", "estimate"]
    assert len(data_of(s)) == 3


def test_klo_by_app_orders_apps_by_klo_hours() -> None:
    load = pd.DataFrame(
        {
            "app_id": ["a", "b", "c"],
            "name": ["A", "B", "C"],
            "klo_hours": [5.0, 50.0, 20.0],
            "improvement_hours": [1.0, 0.0, 3.0],
        }
    )
    s = spec(charts.klo_by_app(load))
    assert s["encoding"]["y"]["sort"] == ["B", "C", "A"]
    rows = data_of(s)
    assert len(rows) == 6
    assert {r["kind"] for r in rows} == {"KLO (incl. incidents)", "Improvement"}


def test_incidents_and_mttr_have_independent_axes() -> None:
    monthly = pd.DataFrame({"month": [date(2026, 3, 1)], "incidents": [4], "mttr_hours": [2.5]})
    s = spec(charts.incidents_and_mttr(monthly))
    bars, line = s["layer"]
    assert s["resolve"]["scale"]["y"] == "independent"
    assert bars["encoding"]["y"]["field"] == "incidents" and line["encoding"]["y"]["field"] == "mttr_hours"


def test_what_if_compares_before_and_after_per_measure() -> None:
    frame = pd.DataFrame(
        {"measure": ["net", "net"], "scenario": ["before", "after"], "amount": [100.0, 140.0]}
    )
    s = spec(charts.what_if(frame))
    assert s["encoding"]["column"]["field"] == "measure"
    assert s["encoding"]["x"]["sort"] == ["before", "after"]


@pytest.mark.parametrize(
    ("build", "rows"),
    [
        pytest.param(lambda df: charts.value_cost_quadrant(df), 2, id="quadrant"),  # only the diagonal
        pytest.param(lambda df: charts.monthly_series(df), 0, id="monthly"),
        pytest.param(lambda df: charts.cost_by_category(df), 0, id="cost"),
        pytest.param(lambda df: charts.daily_usage(df), 0, id="usage"),
        pytest.param(lambda df: charts.availability_vs_slo(df, None), 0, id="availability"),
        pytest.param(lambda df: charts.value_by_evidence(df), 0, id="evidence"),
        pytest.param(lambda df: charts.klo_by_app(df), 0, id="klo"),
        pytest.param(lambda df: charts.incidents_and_mttr(df), 0, id="incidents"),
        pytest.param(lambda df: charts.what_if(df), 0, id="what-if"),
    ],
)
def test_an_empty_frame_gives_an_empty_chart_not_an_error(build: Any, rows: int) -> None:
    s = build(pd.DataFrame()).to_dict()
    assert sum(len(r) for r in s.get("datasets", {}).values()) == rows
