"""Portfolio: which apps earn their keep, the portfolio's net return and its trend."""

import streamlit as st

from portfolio import review, safe
from portfolio.dashboard import cache, charts, filters, fmt, page, savings, sections, views
from portfolio.periods import last_complete_day
from portfolio.records import UNALLOCATED

st.title("Portfolio")
src = cache.source_or_stop()
cfg = cache.config(src)
cur = cfg.currency
f = filters.sidebar(src.today, cache.teams(src), months=cache.data_months(src))
where = f"{f.period.label}{' for team ' + safe.md(f.team) if f.team else ''}"
if not cache.has_data(src, f.start, f.end, f.team):
    months = cache.data_months(src)
    st.info(
        f"No app has value or cost in {where}."
        + (f" Data covers {months[0]} – {months[-1]}: choose another period." if months else "")
    )
    st.stop()

k = cache.kpis(src, f.start, f.end, f.team, f.vs)
inventory = cache.apps(src)
inventory = inventory[inventory["app_id"] != UNALLOCATED]
if f.team:
    inventory = inventory[inventory["team"] == f.team]
retired = int((inventory["stage"] == "retired").sum())
before = f.period.previous()
compared = cache.has_data(src, before.start, before.end, f.team)
covered = sum(1 for m in before.months if f"{m:%Y-%m}" in set(cache.data_months(src)))
st.caption(
    f"{f.period.label}{' · team ' + safe.md(f.team) if f.team else ''} · compared with {before.label}"
    + ("" if compared else " (no data then: no change shown)")
    + (f" (data in {covered} of its {len(before.months)} months)" if compared and covered < len(before.months) else "")
    + f" · {int(k['apps'])} active apps ({retired} retired)"
)


def _change(key: str) -> str | None:
    return fmt.money_short_delta(k[key] - k[f"prev_{key}"], cur) if compared else None


c = st.columns(6)
c[0].metric(
    "Value", fmt.money_short(k["value"], cur), _change("value"),
    help=f"{fmt.money(k['value'], cur)} ({before.label}: {fmt.money(k['prev_value'], cur)})",
)
c[1].metric(
    "Cost", fmt.money_short(k["cost"], cur), _change("cost"),
    delta_color="inverse", help=f"{fmt.money(k['cost'], cur)} ({before.label}: {fmt.money(k['prev_cost'], cur)})",
)
c[2].metric(
    "Net", fmt.money_short(k["net"], cur), _change("net"),
    help=f"{fmt.money(k['net'], cur)} ({before.label}: {fmt.money(k['prev_net'], cur)})",
)
c[3].metric("ROI", fmt.percent(k["roi"]), fmt.percent_delta(k["roi"] - k["prev_roi"]) if compared else None)
c[4].metric("Apps", f"{int(k['apps'])} active", help=f"{int(k['apps'])} active apps ({retired} retired)")
c[5].metric("Retirement candidates", f"{int(k['candidates'])}", help="Apps with active retirement findings")

savings.portfolio_sections(src, k, cur, f.start, f.end)  # issue 13: hard/soft value, downtime, savings realised

apps = cache.app_pnl(src, f.start, f.end, f.team, f.vs)
left, right = st.columns(2)
left.altair_chart(charts.value_cost_quadrant(apps[apps["app_id"] != UNALLOCATED], cur))
right.altair_chart(charts.monthly_series(cache.portfolio_monthly(src, f.start, f.end, f.team), cur))

mtd = f.month_to_date
if mtd is not None:
    st.subheader("Month to date")
    st.caption(
        f"{mtd.start.isoformat()} – {mtd.end.isoformat()} (the last complete day): shown apart, never in the "
        "trend or a comparison, because the month is not over"
    )
    now = cache.app_pnl(src, mtd.start, mtd.end, f.team)
    for col, key in zip(st.columns(3), ["value", "cost", "net"], strict=True):
        col.metric(f"{key.capitalize()}, month to date", fmt.money_short(now[key].sum(), cur),
                   help=fmt.money(now[key].sum(), cur))  # fmt: skip

st.subheader("Apps")
spark = cache.sparklines(src, f.start, f.end)
link = filters.link_params(f)
query = "&".join(f"{name}={value}" for name, value in link.items())
table = apps.assign(
    trend=apps["app_id"].map(lambda a: spark.get(a, [])),
    link=apps["app_id"].map(lambda a: f"app?app={a}&{query}"),
)[
    ["link", "name", "app_id", "team", "stage", "value_kind", "value", "cost", "net", "roi", "trend",
     "maintenance_hours", "run_rate_net", "payback_month"]
].sort_values("net", ascending=False)  # fmt: skip
sections.table(
    table, "portfolio_apps", search_in=["name", "app_id", "team", "stage", "value_kind"], noun="apps",
    column_config=fmt.columns(
        table, cur,
        link=st.column_config.LinkColumn("App page", display_text="Open", help="Open the App page"),
        trend=st.column_config.LineChartColumn("Monthly net", help="Net per month of the period"),
        payback_month=st.column_config.DateColumn("Payback month", format="YYYY-MM"),
    ),
)  # fmt: skip
st.download_button(
    "Download apps (CSV)", views.csv_later(apps), f"apps-{f.period.label}.csv", "text/csv", on_click="ignore"
)

# sorted by name (then id) and searchable by typing: one entry per app id, "name (id)" where names repeat
listed = apps.assign(label=views.app_labels(apps.assign(name=apps["name"].fillna(apps["app_id"])))).sort_values(["label", "app_id"])
names = dict(zip(listed["app_id"], listed["label"], strict=True))
pick, go = st.columns([3, 1], vertical_alignment="bottom")
chosen = pick.selectbox(
    "Open one app", list(names), format_func=lambda a: names[a], key="portfolio_open_app",
    placeholder="Type to search apps by name", help=f"{len(names):,} apps, sorted by name: type to search",
)  # fmt: skip
if go.button("Open app page", type="primary") and chosen is not None:
    st.switch_page(page("app"), query_params={"app": chosen, **link})

st.subheader("Quarterly review")
st.caption("The document for the portfolio review meeting: P&L by app vs the previous quarter, candidates, decisions.")
quarters = views.quarters(src.today)
complete = review.last_complete_quarter(src.today)
q_col, md_col, html_col = st.columns([2, 1, 1], vertical_alignment="bottom")
quarter = q_col.selectbox(
    "Quarter", quarters, index=quarters.index(complete) if complete in quarters else 0, key="review_quarter",
    format_func=lambda q: q if q <= complete else f"{q} (in progress)",
)
if quarter > complete:
    st.warning(
        f"{quarter} is in progress: the review runs to {last_complete_day(src.today).isoformat()} and says so at "
        f"its top. The last complete quarter is {complete}."
    )
# rendered when a button is pressed (on its own thread), not on every load of the page: at 1,000
# apps the review takes seconds and most visits never download it
md_col.download_button(
    "Download (Markdown)", lambda: cache.review(src, quarter, "md"), f"ml-portfolio-review-{quarter}.md",
    "text/markdown", on_click="ignore",
)
html_col.download_button(
    "Download (HTML)", lambda: cache.review(src, quarter, "html"), f"ml-portfolio-review-{quarter}.html",
    "text/html", on_click="ignore",
)
