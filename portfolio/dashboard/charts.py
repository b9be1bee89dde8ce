"""Charts: pure ``DataFrame -> alt.Chart`` functions (Altair only), unit-tested through ``.to_dict()``.

Every function takes the frame a domain function returns (or a slice of it), never touches
Streamlit or the database, and works on an empty frame (an empty chart, not an error).

Money axes and tooltips use d3's currency format (``$,.0f``), whose symbol comes from the chart's
locale: :func:`_in_currency` sets it from the reporting currency (:func:`portfolio.money.vega_locale`),
so a EUR portfolio's charts read ``€1,234``, not ``$1,234``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from portfolio import money
from portfolio.dashboard import views

MONEY_FORMAT = "$,.0f"  # "$" = the locale's currency affixes, not the dollar
MONEY_AXIS = alt.Axis(format=MONEY_FORMAT)

SERIES_COLORS = {"value": "#2e7d32", "cost": "#c62828", "net": "#1565c0"}


def _frame(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The columns a chart needs, with a copy that is safe to change (missing columns -> empty)."""
    out = pd.DataFrame({c: df[c] if c in df.columns else pd.Series(dtype="float64") for c in columns})
    return out.reset_index(drop=True)


def _as_month(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.strftime("%Y-%m")


def _in_currency(chart: Any, currency: str) -> Any:
    """The top-level chart with the number locale of ``currency`` (what ``$`` formats write)."""
    return chart.configure(locale={"number": money.vega_locale(currency)})


TEAM_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]
OTHER_TEAMS = "Other teams"
OTHER_COLOR = "#9e9e9e"


def top_teams(frame: pd.DataFrame, weight: pd.Series, n: int = len(TEAM_COLORS)) -> list[str]:
    """The ``n`` teams with the largest total ``weight``: the ones a legend names (each its own colour)."""
    if frame.empty:
        return []
    totals = weight.groupby(frame["team"].fillna("").astype(str)).sum().sort_values(ascending=False, kind="stable")
    return [t for t in totals.index[:n]]


def _team_color(teams: list[str], others: bool) -> alt.Scale:
    domain = [*teams, OTHER_TEAMS] if others else list(teams)
    return alt.Scale(domain=domain, range=[*TEAM_COLORS[: len(teams)], OTHER_COLOR][: len(domain)])


#: apps the value-vs-cost chart names (more labels overlap on a chart that size)
QUADRANT_LABELS = 10


def value_cost_quadrant(
    apps: pd.DataFrame, currency: str = "USD", top: int = QUADRANT_LABELS
) -> alt.LayerChart | alt.FacetChart:
    """Value (y) against cost (x) per app; bubble size = maintenance hours; the diagonal is break-even.

    Apps above the line earn more than they cost. ``apps`` is :func:`portfolio.pnl.app_pnl`. At
    scale it stays readable: the ``top`` apps by value + cost are drawn solid and labelled, every
    other app is a faded dot (still there, with its tooltip); colour is the team for the teams that
    weigh most (at most 8, each its own colour) and grey for the rest, so the legend is whole and
    no colour repeats.
    """
    df = _frame(apps, ["app_id", "name", "team", "value", "cost", "net", "roi", "maintenance_hours"])
    df["name"] = df["name"].fillna(df["app_id"])
    df["label"] = views.app_labels(df)
    weight = df["value"].abs().fillna(0.0) + df["cost"].abs().fillna(0.0)
    order = weight.sort_values(ascending=False, kind="stable").index
    df["top"] = df.index.isin(order[:top])
    teams = top_teams(df, weight)
    df["team_group"] = df["team"].where(df["team"].isin(teams), OTHER_TEAMS)
    biggest = float(pd.concat([df["value"], df["cost"]]).max()) if len(df) else 0.0
    biggest = biggest if biggest > 0 else 1.0
    diagonal = pd.DataFrame({"cost": [0.0, biggest], "value": [0.0, biggest]})
    points = (
        alt.Chart(df)
        .mark_circle(stroke="white", strokeWidth=1)
        .encode(
            x=alt.X("cost:Q", title="Cost", axis=MONEY_AXIS),
            y=alt.Y("value:Q", title="Value", axis=MONEY_AXIS),
            size=alt.Size("maintenance_hours:Q", scale=alt.Scale(range=[30, 1200]), legend=None),
            color=alt.Color("team_group:N", title="Team", scale=_team_color(teams, bool((df["team_group"] == OTHER_TEAMS).any()))),
            opacity=alt.condition(alt.datum.top, alt.value(0.85), alt.value(0.2)),
            tooltip=[
                alt.Tooltip("label:N", title="App"),
                alt.Tooltip("app_id:N", title="App id"),
                alt.Tooltip("team:N", title="Team"),
                alt.Tooltip("value:Q", title="Value", format=MONEY_FORMAT),
                alt.Tooltip("cost:Q", title="Cost", format=MONEY_FORMAT),
                alt.Tooltip("net:Q", title="Net", format=MONEY_FORMAT),
                alt.Tooltip("roi:Q", title="ROI", format=".1%"),
                alt.Tooltip("maintenance_hours:Q", title="Maintenance h", format=",.0f"),
            ],
        )
    )
    labels = (
        alt.Chart(df[df["top"]])
        .mark_text(align="left", dx=7, dy=-7, fontSize=11, color="#333")
        .encode(x="cost:Q", y="value:Q", text="label:N")
    )
    line = alt.Chart(diagonal).mark_line(strokeDash=[4, 4], color="#888").encode(x="cost:Q", y="value:Q")
    shown = f"{min(top, len(df))} largest named" + (f", {len(df) - top:,} others faded" if len(df) > top else "")
    chart = alt.layer(line, points, labels).properties(
        title=alt.TitleParams(
            "Value vs cost",
            subtitle=f"above the line = earns its keep · size = maintenance hours · {shown}",
        )
    )
    return _in_currency(chart, currency)


def monthly_series(monthly: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Monthly value, cost and net as lines (net bold). ``monthly``: month, value, cost, net (summed)."""
    df = _frame(monthly, ["month", "value", "cost", "net"])
    df["month"] = _as_month(df["month"])
    long = df.melt(id_vars="month", value_vars=["value", "cost", "net"], var_name="series", value_name="amount")
    chart = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title="Month"),
            y=alt.Y("amount:Q", title="Amount", axis=MONEY_AXIS),
            color=alt.Color(
                "series:N",
                title="",
                scale=alt.Scale(domain=list(SERIES_COLORS), range=list(SERIES_COLORS.values())),
            ),
            strokeWidth=alt.condition(alt.datum.series == "net", alt.value(3), alt.value(1.5)),
            tooltip=["month:O", "series:N", alt.Tooltip("amount:Q", format=MONEY_FORMAT)],
        )
        .properties(title="Monthly value, cost and net")
    )
    return _in_currency(chart, currency)


def cost_by_category(costs: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Stacked monthly cost by category. ``costs``: month, category, amount."""
    df = _frame(costs, ["month", "category", "amount"])
    df["month"] = _as_month(df["month"])
    chart = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("month:O", title="Month"),
            y=alt.Y("sum(amount):Q", title="Cost", axis=MONEY_AXIS, stack="zero"),
            color=alt.Color("category:N", title="Category"),
            tooltip=["month:O", "category:N", alt.Tooltip("sum(amount):Q", title="Cost", format=MONEY_FORMAT)],
        )
        .properties(title="Cost by category")
    )
    return _in_currency(chart, currency)


def daily_usage(usage: pd.DataFrame) -> alt.Chart:
    """Daily usage per metric. ``usage``: day, metric, value."""
    df = _frame(usage, ["day", "metric", "value"])
    df["day"] = pd.to_datetime(df["day"])
    return (
        alt.Chart(df)
        .mark_line()
        .encode(
            x=alt.X("day:T", title="Day"),
            y=alt.Y("value:Q", title="Per day"),
            color=alt.Color("metric:N", title="Metric"),
            tooltip=[alt.Tooltip("day:T"), "metric:N", alt.Tooltip("value:Q", format=",.0f")],
        )
        .properties(title="Usage")
    )


def availability_vs_slo(uptime: pd.DataFrame, slo: float | None) -> alt.LayerChart | alt.FacetChart:
    """Monthly mean availability with the SLO as a dashed rule. ``uptime``: month, availability."""
    df = _frame(uptime, ["month", "availability"])
    df["month"] = _as_month(df["month"])
    df["met"] = df["availability"] >= (slo if slo is not None else 0.0)
    bars = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title="Month"),
            y=alt.Y("availability:Q", title="Availability", axis=alt.Axis(format=".2%"), scale=alt.Scale(zero=False)),
            tooltip=["month:O", alt.Tooltip("availability:Q", format=".3%"), "met:N"],
        )
    )
    rule = alt.Chart(pd.DataFrame({"slo": [slo] if slo is not None else []})).mark_rule(
        color="#c62828", strokeDash=[6, 3]
    ).encode(y="slo:Q")
    return alt.layer(bars, rule).properties(title="Availability vs SLO")


def value_by_evidence(frame: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Value by team, stacked by evidence grade, one column per kind (revenue capture / cost avoidance).

    ``frame`` is :func:`portfolio.pnl.value_by_evidence`.
    """
    df = _frame(frame, ["team", "kind", "evidence", "value"])
    df["team"] = df["team"].fillna("").astype(str)
    named = top_teams(df, df["value"].abs().fillna(0.0), n=views.TOP_N)
    if df["team"].nunique() > len(named) + 1:  # many teams: the largest by value, then "Other teams" summed
        df["team"] = df["team"].where(df["team"].isin(named), OTHER_TEAMS)
        df = df.groupby(["team", "kind", "evidence"], as_index=False, sort=False).agg(value=("value", "sum"))
    order = ["experiment", "observational", "estimate"]
    chart = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("team:N", title="Team", sort=[*named, OTHER_TEAMS]),
            y=alt.Y("sum(value):Q", title="Value", axis=MONEY_AXIS),
            color=alt.Color(
                "evidence:N",
                title="Evidence",
                scale=alt.Scale(domain=order, range=["#1b5e20", "#81c784", "#ffb74d"]),
            ),
            column=alt.Column("kind:N", title=None),
            tooltip=["team:N", "kind:N", "evidence:N", alt.Tooltip("sum(value):Q", title="Value", format=MONEY_FORMAT)],
        )
        .properties(title="Measured vs estimated value")
    )
    return _in_currency(chart, currency)


def klo_by_app(load: pd.DataFrame, top: int = views.TOP_N) -> alt.Chart | alt.VConcatChart:
    """Horizontal stacked bars of KLO vs improvement hours per app, most KLO first.

    ``load`` is :func:`portfolio.maintenance.maintenance_load`. One bar per app **id** (two apps
    that share a name stay two bars, labelled ``name (id)``); the ``top`` apps by KLO hours, then
    one bar for all the others, so the hours on the chart add up to the page's totals and the
    chart keeps its height at any number of apps. The others' bar sits below on its own scale:
    985 apps together would otherwise flatten the 15 bars above it to nothing.
    """
    df = _frame(load, ["app_id", "name", "klo_hours", "improvement_hours"])
    df["name"] = df["name"].fillna(df["app_id"])
    df = views.top_and_others(df, "klo_hours", ["klo_hours", "improvement_hours"], n=top)
    df["label"] = views.app_labels(df)
    long = df.melt(
        id_vars=["app_id", "label"], value_vars=["klo_hours", "improvement_hours"], var_name="kind", value_name="hours"
    )
    long["kind"] = long["kind"].map({"klo_hours": "KLO (incl. incidents)", "improvement_hours": "Improvement"})
    color = alt.Color(
        "kind:N", title="", scale=alt.Scale(domain=["KLO (incl. incidents)", "Improvement"], range=["#ef6c00", "#42a5f5"])
    )
    tooltip = [alt.Tooltip("label:N", title="App"), alt.Tooltip("app_id:N", title="App id"), "kind:N",
               alt.Tooltip("hours:Q", format=",.1f")]  # fmt: skip

    def bars(rows: pd.DataFrame, x_title: str) -> alt.Chart:
        order = list(dict.fromkeys(rows["label"]))  # top_and_others: most KLO first
        return (
            alt.Chart(rows)
            .mark_bar()
            .encode(
                y=alt.Y("label:N", title="App", sort=order, axis=alt.Axis(labelLimit=260)),
                x=alt.X("hours:Q", title=x_title, stack="zero"),
                color=color,
                tooltip=tooltip,
            )
        )

    title = "Where the hours go: KLO vs new work"
    others = long["app_id"] == views.OTHERS_ID
    if not others.any():
        return bars(long, "Hours").properties(title=title)
    return (
        alt.vconcat(bars(long[~others], "Hours"), bars(long[others], "Hours, all others together").properties(height=24))
        .resolve_scale(x="independent")
        .properties(title=title)
    )


def incidents_and_mttr(monthly: pd.DataFrame) -> alt.LayerChart:
    """Incidents per month (bars) and mean time to restore (line, right axis).

    ``monthly``: month, incidents, mttr_hours (already summed over apps).
    """
    df = _frame(monthly, ["month", "incidents", "mttr_hours"])
    df["month"] = _as_month(df["month"])
    base = alt.Chart(df).encode(x=alt.X("month:O", title="Month"))
    bars = base.mark_bar(color="#ef9a9a").encode(
        y=alt.Y("incidents:Q", title="Incidents"), tooltip=["month:O", "incidents:Q"]
    )
    line = base.mark_line(point=True, color="#b71c1c").encode(
        y=alt.Y("mttr_hours:Q", title="MTTR (hours)"),
        tooltip=["month:O", alt.Tooltip("mttr_hours:Q", format=".1f")],
    )
    return alt.layer(bars, line).resolve_scale(y="independent").properties(title="Incidents and MTTR")


def what_if(before_after: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Before / after bars per measure. ``before_after``: measure, scenario, amount."""
    df = _frame(before_after, ["measure", "scenario", "amount"])
    chart = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("scenario:N", title=None, sort=["before", "after"]),
            y=alt.Y("amount:Q", title=None, axis=MONEY_AXIS),
            color=alt.Color("scenario:N", title="", scale=alt.Scale(domain=["before", "after"], range=["#90a4ae", "#1565c0"])),
            column=alt.Column("measure:N", title=None),
            tooltip=["measure:N", "scenario:N", alt.Tooltip("amount:Q", format=MONEY_FORMAT)],
        )
        .properties(title="What if we retire them (annual run-rate)")
    )
    return _in_currency(chart, currency)
