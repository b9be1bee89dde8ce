"""Portfolio: which apps earn their keep, the portfolio's net return and its trend."""

from datetime import timedelta

import streamlit as st

from portfolio import safe
from portfolio.dashboard import cache, charts, filters, fmt, page, views
from portfolio.records import UNALLOCATED

st.title("Portfolio")
src = cache.source_or_stop()
cfg = cache.config(src)
cur = cfg.currency
f = filters.sidebar(src.today, cache.teams(src))

k = cache.kpis(src, f.start, f.end, f.team)
st.caption(f"{f.period.label}{' · team ' + safe.md(f.team) if f.team else ''} · compared with {f.period.previous().label}")
c = st.columns(6)
c[0].metric(
    "Value", fmt.money_short(k["value"], cur), fmt.money_short_delta(k["value"] - k["prev_value"], cur),
    help=f"{fmt.money(k['value'], cur)} (previous period {fmt.money(k['prev_value'], cur)})",
)
c[1].metric(
    "Cost", fmt.money_short(k["cost"], cur), fmt.money_short_delta(k["cost"] - k["prev_cost"], cur),
    delta_color="inverse", help=f"{fmt.money(k['cost'], cur)} (previous period {fmt.money(k['prev_cost'], cur)})",
)
c[2].metric(
    "Net", fmt.money_short(k["net"], cur), fmt.money_short_delta(k["net"] - k["prev_net"], cur),
    help=f"{fmt.money(k['net'], cur)} (previous period {fmt.money(k['prev_net'], cur)})",
)
c[3].metric("ROI", fmt.percent(k["roi"]), fmt.percent_delta(k["roi"] - k["prev_roi"]))
c[4].metric("Apps", f"{int(k['apps'])}")
c[5].metric("Retirement candidates", f"{int(k['candidates'])}", help="Apps with active retirement findings")

apps = cache.app_pnl(src, f.start, f.end, f.team)
if apps.empty:
    st.info(f"No app has value or cost in {f.period.label}{' for team ' + safe.md(f.team) if f.team else ''}.")
    st.stop()

left, right = st.columns(2)
left.altair_chart(charts.value_cost_quadrant(apps[apps["app_id"] != UNALLOCATED]))
right.altair_chart(charts.monthly_series(cache.portfolio_monthly(src, f.start, f.end, f.team)))
if f.end.day != 1 and (f.end + timedelta(days=1)).day != 1:
    st.caption(f"{f.end:%Y-%m} is partial: it runs to {f.end.isoformat()}, the last complete day.")

st.subheader("Apps")
spark = cache.sparklines(src, f.start, f.end)
link = filters.link_params(f)
query = "&".join(f"{k}={v}" for k, v in link.items())
table = apps.assign(
    trend=apps["app_id"].map(lambda a: spark.get(a, [])),
    link=apps["app_id"].map(lambda a: f"app?app={a}&{query}"),
)[
    ["link", "name", "team", "stage", "value_kind", "value", "cost", "net", "roi", "trend", "maintenance_hours",
     "run_rate_net", "payback_month"]
].sort_values("net", ascending=False)
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "link": st.column_config.LinkColumn("App page", display_text="Open", help="Open the App page"),
        "name": "App",
        "team": "Team",
        "stage": "Stage",
        "value_kind": "Value kind",
        "value": fmt.money_column("Value", cur),
        "cost": fmt.money_column("Cost", cur),
        "net": fmt.money_column("Net", cur),
        "roi": fmt.percent_column("ROI"),
        "trend": st.column_config.LineChartColumn("Monthly net", help="Net per month of the period"),
        "maintenance_hours": fmt.hours_column("Maint. hours"),
        "run_rate_net": fmt.money_column("Run-rate net / yr", cur),
        "payback_month": st.column_config.DateColumn("Payback month", format="YYYY-MM"),
    },
)
st.download_button(
    "Download apps (CSV)", views.to_csv(apps), f"apps-{f.period.label}.csv", "text/csv", on_click="ignore"
)

names = dict(zip(apps["app_id"], apps["name"].fillna(apps["app_id"]), strict=True))
pick, go = st.columns([3, 1], vertical_alignment="bottom")
chosen = pick.selectbox("Open one app", list(names), format_func=lambda a: names[a], key="portfolio_open_app")
if go.button("Open app page", type="primary"):
    st.switch_page(page("app"), query_params={"app": chosen, **link})

st.subheader("Quarterly review")
st.caption("The document for the portfolio review meeting: P&L by app vs the previous quarter, candidates, decisions.")
quarters = views.quarters(src.today)
q_col, md_col, html_col = st.columns([2, 1, 1], vertical_alignment="bottom")
quarter = q_col.selectbox("Quarter", quarters, key="review_quarter")
md_col.download_button(
    "Download (Markdown)", cache.review(src, quarter, "md"), f"ml-portfolio-review-{quarter}.md", "text/markdown",
    on_click="ignore",
)
html_col.download_button(
    "Download (HTML)", cache.review(src, quarter, "html"), f"ml-portfolio-review-{quarter}.html", "text/html",
    on_click="ignore",
)
