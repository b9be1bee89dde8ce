"""Maintenance: where the hours go (KLO vs new work), what breaks most, what to harden or drop."""

import streamlit as st

from portfolio import safe
from portfolio.dashboard import cache, charts, filters, fmt, sections, views

st.title("Maintenance")
src = cache.source_or_stop()
cur = cache.config(src).currency
f = filters.sidebar(src.today, cache.teams(src), months=cache.data_months(src))
st.caption(
    f"{f.period.label}{' · team ' + safe.md(f.team) if f.team else ''} · KLO (keep the lights on) = routine upkeep + incident "
    "firefighting; improvement is new work."
)

load = cache.maintenance_load(src, f.start, f.end, f.team)
teams = cache.team_load(src, f.start, f.end)
if f.team:
    teams = teams[teams["team"] == f.team]
if load.empty or load["hours"].sum() == 0:
    st.info(f"No maintenance hours recorded in {f.period.label}.")
    st.stop()

klo = float(load["klo_hours"].sum())
capacity = float(teams["capacity_hours"].sum()) if not teams.empty else 0.0
share = float(teams["klo_hours"].sum()) / capacity if capacity else float("nan")
incidents = int(load["incidents"].sum())
by_month = cache.incidents_by_month(src, f.start, f.end, f.team)
mttr = views.overall_mttr(by_month)
c = st.columns(5)
c[0].metric("KLO hours", fmt.hours(klo))
c[1].metric("Improvement hours", fmt.hours(load["improvement_hours"].sum()))
c[2].metric("KLO share of capacity", fmt.percent(share))
c[3].metric("Incidents", f"{incidents}")
c[4].metric("MTTR", fmt.hours(mttr, 1), help="Mean time to restore, weighted by incidents")

left, right = st.columns(2)
left.altair_chart(charts.klo_by_app(load))
right.altair_chart(charts.incidents_and_mttr(by_month))

st.subheader("KLO share of each team's capacity")
st.dataframe(
    teams,
    hide_index=True,
    column_config=fmt.columns(
        teams, cur,
        klo_share=st.column_config.ProgressColumn("KLO share", format="percent", min_value=0.0, max_value=1.0),
    ),
)
st.download_button("Download team load (CSV)", views.to_csv(teams), "team-load.csv", "text/csv", on_click="ignore")

st.subheader("Apps ranked by KLO hours, with a recommendation")
ranked = load.sort_values(["klo_hours", "app_id"], ascending=[False, True])
st.caption(f"Recommendation: the app's one answer as of {src.today.isoformat()} (the same on the Retirement and App pages).")
shown = sections.table(
    ranked[["name", "app_id", "klo_hours", "incidents", "mttr_hours", "people_cost", "value", "klo_share_of_team",
            "recommendation"]],
    "maintenance_ranked", search_in=["name", "app_id", "team", "recommendation"], noun="apps",
    column_config={
        **sections.recommendation_columns(cur),
        "app_id": st.column_config.TextColumn("App id"),
        "klo_hours": fmt.hours_column("KLO hours"),
        "mttr_hours": fmt.hours_column("MTTR"),
        "people_cost": fmt.money_column("People cost", cur),
        "value": fmt.money_column("Value", cur),
        "klo_share_of_team": fmt.percent_column("Share of team capacity"),
    },
)  # fmt: skip
why = ranked[ranked["app_id"].isin(shown["app_id"])].rename(columns={"recommendation": "action"}).dropna(subset=["action"])
sections.reasons(why)
st.download_button("Download maintenance load (CSV)", views.csv_later(ranked), "maintenance-load.csv", "text/csv", on_click="ignore")
