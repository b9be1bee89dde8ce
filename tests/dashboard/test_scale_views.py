"""Issue 15, usable at 1,000 apps: charts keyed by app id with the top N and "all others", search and paging.

Pure functions (frames in, Vega-Lite spec or frames out), checked on hand-built frames: two apps
that share a name, and portfolios of hundreds of apps in tens of teams.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import pytest

from portfolio.dashboard import charts, views


def data_of(s: dict[str, Any], layer: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    name = (layer or s).get("data", s.get("data", {})).get("name")
    return list(s["datasets"][name])


def many_apps(n: int, teams: int = 20) -> pd.DataFrame:
    """``n`` apps in ``teams`` teams; every fourth app shares its name with the one before it."""
    rows = []
    for i in range(n):
        rows.append({
            "app_id": f"app-{i:04d}",
            "name": f"Model {i - 1 if i % 4 == 3 else i}",
            "team": f"team-{i % teams:02d}",
            "value": float(1000 + 37 * i % 5000),
            "cost": float(500 + 53 * i % 4000),
            "klo_hours": float(i % 97) + 0.5,
            "improvement_hours": float(i % 13),
            "maintenance_hours": float(i % 50),
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["net"] = frame["value"] - frame["cost"]
    frame["roi"] = frame["net"] / frame["cost"]
    return frame


TWINS = pd.DataFrame(
    {
        "app_id": ["churn-eu", "churn-us", "fraud"],
        "name": ["Churn model", "Churn model", "Fraud"],
        "klo_hours": [30.0, 20.0, 5.0],
        "improvement_hours": [1.0, 2.0, 3.0],
    }
)


def test_klo_chart_keeps_two_apps_that_share_a_name_apart() -> None:
    """The bug of issue 15: bars keyed by name merged "Churn model" (30 h) and "Churn model" (20 h) into one 50 h bar."""
    s = charts.klo_by_app(TWINS).to_dict()
    y = s["encoding"]["y"]["field"]
    rows = data_of(s)
    klo = {r[y]: r["hours"] for r in rows if r["kind"].startswith("KLO")}
    assert len(klo) == 3, klo  # three apps, three bars
    assert klo == {"Churn model (churn-eu)": 30.0, "Churn model (churn-us)": 20.0, "Fraud": 5.0}
    assert s["encoding"]["y"]["sort"] == ["Churn model (churn-eu)", "Churn model (churn-us)", "Fraud"]


def test_klo_chart_at_1000_apps_shows_the_top_15_and_all_others_with_the_same_total() -> None:
    load = many_apps(1000)
    s = charts.klo_by_app(load).to_dict()
    top, others = s["vconcat"]  # the others' bar on its own scale below: it would flatten the 15 above
    rows = [r for name in s["datasets"] for r in s["datasets"][name]]
    assert len(top["encoding"]["y"]["sort"]) == 15
    assert others["encoding"]["y"]["sort"] == ["All others (985 apps)"]
    assert s["resolve"]["scale"]["x"] == "independent"
    for kind, col in [("KLO (incl. incidents)", "klo_hours"), ("Improvement", "improvement_hours")]:
        assert sum(r["hours"] for r in rows if r["kind"] == kind) == pytest.approx(load[col].sum())
    top15 = load.sort_values(["klo_hours", "app_id"], ascending=[False, True]).head(15)
    shown = {r["app_id"] for r in rows} - {views.OTHERS_ID}
    assert shown == set(top15["app_id"])


def test_quadrant_at_1000_apps_labels_the_top_10_and_names_at_most_8_teams_without_repeating_a_colour() -> None:
    apps = many_apps(1000, teams=20)
    s = charts.value_cost_quadrant(apps).to_dict()
    _, points, labels = s["layer"]
    rows = data_of(s, points)
    assert len(rows) == 1000  # every app is still there (faded), none lost
    assert sum(r["top"] for r in rows) == 10 and len(data_of(s, labels)) == 10
    assert len({r["label"] for r in data_of(s, labels)}) == 10  # labels unique even where names repeat
    scale = points["encoding"]["color"]["scale"]
    assert len(scale["domain"]) == 9 and scale["domain"][-1] == charts.OTHER_TEAMS
    assert len(set(scale["range"])) == len(scale["range"]) == 9  # one colour per legend entry
    assert {r["team_group"] for r in rows} == set(scale["domain"])
    assert points["encoding"]["opacity"]["condition"]["test"] == "datum.top"


def test_value_by_evidence_with_30_teams_shows_15_and_other_teams_with_the_same_total() -> None:
    frame = pd.DataFrame(
        [{"team": f"t{i:02d}", "kind": k, "evidence": e, "value": float(i * 10 + j)}
         for i in range(30) for j, (k, e) in enumerate([("revenue_capture", "experiment"), ("cost_avoidance", "estimate")])]
    )  # fmt: skip
    s = charts.value_by_evidence(frame).to_dict()
    rows = data_of(s)
    assert len({r["team"] for r in rows}) == 16 and charts.OTHER_TEAMS in {r["team"] for r in rows}
    assert sum(r["value"] for r in rows) == pytest.approx(frame["value"].sum())


@pytest.mark.parametrize("n", [pytest.param(5, id="few"), pytest.param(16, id="one-over"), pytest.param(1000, id="many")])
def test_top_and_others_keeps_every_total(n: int) -> None:
    apps = many_apps(n)
    out = views.top_and_others(apps, "net", ["value", "cost", "net"], n=15, absolute=True)
    for col in ("value", "cost", "net"):
        assert out[col].sum() == pytest.approx(apps[col].sum())
    assert out["others"].sum() == n
    assert len(out) == min(n, 16)
    assert (out["app_id"] == views.OTHERS_ID).sum() == (1 if n > 16 else 0)


def test_app_labels_are_unique_per_id() -> None:
    frame = pd.DataFrame({"app_id": ["a", "b", "c", "d"], "name": ["X", "X", "X (b)", None]})
    labels = views.app_labels(frame)
    assert list(labels) == ["X (a)", "X (b)", "X (b) (c)", "d"]  # the app named "X (b)" does not merge with b
    assert labels.is_unique


def test_search_finds_every_word_case_insensitively_and_literally() -> None:
    apps = pd.DataFrame({"app_id": ["c++-ranker", "churn", "fraud"], "name": ["C++ ranker", "Churn", "Fraud"],
                         "team": ["search", "growth", "risk"]})  # fmt: skip
    assert list(views.search(apps, "C++", ["app_id", "name"])["app_id"]) == ["c++-ranker"]
    assert list(views.search(apps, "  ", None)["app_id"]) == list(apps["app_id"])
    assert list(views.search(apps, "growth CHURN")["app_id"]) == ["churn"]
    assert views.search(apps, "nothing-like-this").empty


@pytest.mark.parametrize(
    ("page", "first", "rows", "pages"),
    [pytest.param(1, 0, 50, 21, id="first"), pytest.param(21, 1000, 1, 21, id="last"), pytest.param(99, 1000, 1, 21, id="clamped")],
)
def test_page_of(page: int, first: int, rows: int, pages: int) -> None:
    frame = pd.DataFrame({"i": range(1001)})
    shown, count = views.page_of(frame, page, 50)
    assert (int(shown["i"].iloc[0]), len(shown), count) == (first, rows, pages)


def test_charts_stay_altair() -> None:
    assert isinstance(charts.klo_by_app(TWINS), alt.Chart)
