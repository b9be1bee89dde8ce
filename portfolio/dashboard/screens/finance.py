"""Finance: revenue capture vs cost avoidance, measured vs estimated, the range of net, reconciliation."""

import pandas as pd
import streamlit as st

from portfolio import safe
from portfolio.dashboard import cache, charts, filters, fmt, savings, sections, views

st.title("Finance")
src = cache.source_or_stop()
cur = cache.config(src).currency
f = filters.sidebar(src.today, cache.teams(src), months=cache.data_months(src))
st.caption(f"{f.period.label}{' · team ' + safe.md(f.team) if f.team else ''} · amounts in {safe.md(cur)}")

apps = cache.app_pnl(src, f.start, f.end, f.team, f.vs)
if not cache.has_data(src, f.start, f.end, f.team):
    st.info(f"No app has value or cost in {f.period.label}{' for team ' + safe.md(f.team) if f.team else ''}.")
    st.stop()

st.subheader("Revenue capture vs cost avoidance")
rng = cache.net_range(src, f.start, f.end, f.team)
c = st.columns(5)
rc, ca = apps["revenue_capture"].sum(), apps["cost_avoidance"].sum()
c[0].metric("Revenue capture", fmt.money_short(rc, cur), help=fmt.money(rc, cur))
c[1].metric("Cost avoidance", fmt.money_short(ca, cur), help=fmt.money(ca, cur))
c[2].metric(
    "Net (low)", fmt.money_short(rng["net_low"], cur),
    help=f"{fmt.money(rng['net_low'], cur)}: portfolio net with every value at its low bound",
)
c[3].metric("Net", fmt.money_short(rng["net"], cur), help=fmt.money(rng["net"], cur))
c[4].metric(
    "Net (high)", fmt.money_short(rng["net_high"], cur),
    help=f"{fmt.money(rng['net_high'], cur)}: portfolio net with every value at its high bound",
)

by_kind = cache.rollup(src, f.start, f.end, f.team, "value_kind", f.vs)
by_team = cache.rollup(src, f.start, f.end, f.team, "team", f.vs)
left, right = st.columns(2)
with left:
    st.caption("By value kind")
    st.dataframe(by_kind, hide_index=True, column_config=fmt.columns(by_kind, cur))
    st.download_button("Download by value kind (CSV)", views.to_csv(by_kind), "pnl-by-value-kind.csv", "text/csv", on_click="ignore")
with right:
    st.caption("By team")
    st.dataframe(by_team, hide_index=True, column_config=fmt.columns(by_team, cur))
    st.download_button("Download by team (CSV)", views.to_csv(by_team), "pnl-by-team.csv", "text/csv", on_click="ignore")

st.subheader("Measured (experiment) vs estimated value, by team")
evidence = cache.value_by_evidence(src, f.start, f.end, f.team)
if evidence.empty:
    st.info("No outcome recorded in this period.")
else:
    st.altair_chart(charts.value_by_evidence(evidence, cur))
    sections.table(evidence, "finance_evidence", search_in=["team", "kind", "evidence"], column_config=fmt.columns(evidence, cur))
    st.download_button("Download value by evidence (CSV)", views.to_csv(evidence), "value-by-evidence.csv", "text/csv", on_click="ignore")

st.subheader("App P&L")
sections.table(
    apps.sort_values(["net", "app_id"], ascending=[False, True]), "finance_apps", noun="apps",
    search_in=["name", "app_id", "team", "stage", "value_kind"], column_config=fmt.columns(apps, cur),
)  # fmt: skip
st.download_button("Download app P&L (CSV)", views.csv_later(apps), f"app-pnl-{f.period.label}.csv", "text/csv", on_click="ignore")

savings.finance_sections(src, cur, f.start, f.end)  # issue 13: plan vs actual, assumptions, downtime

st.subheader("Infrastructure cost reconciliation")
st.caption("Per bill: cost allocated to apps + unallocated spend must equal what the bill itself totals, to the cent.")
rec = cache.reconciliation(src)
if rec.empty:
    st.info("No cost source with billing periods yet.")
else:
    billed = rec["billed"].notna() if "billed" in rec.columns else pd.Series(False, index=rec.index)
    bad = rec[billed & (rec["ok"] != True)]  # noqa: E712 - ok may hold None ("no bill total")
    if not bad.empty:
        lines = "\n".join(
            f"- {safe.md_code(r['source'])} {safe.md(r['billing_period'])} {safe.md(r['currency'])}: recorded {fmt.money(r['recorded'], str(r['currency']), 2)}"
            f" vs billed {fmt.money(r['billed'], str(r['currency']), 2)}"
            f" (difference {fmt.money(r['difference'], str(r['currency']), 2)})"
            for r in bad.to_dict("records")
        )
        st.error(f"**{len(bad)} bill(s) do not reconcile:**\n{lines}")
    else:
        st.success(f"All {int(billed.sum())} bill total(s) reconcile to the cent.")
    if (~billed).any():
        st.caption(f"{int((~billed).sum())} row(s) have no bill total to check against (billed is empty).")
    st.dataframe(
        rec,
        hide_index=True,
        column_config=fmt.columns(rec, cur, **{
            col: st.column_config.NumberColumn(fmt.label(col), format="%,.2f")
            for col in ["allocated", "unallocated", "unregistered", "recorded", "billed", "difference"]
        }),
    )
    st.download_button("Download reconciliation (CSV)", views.to_csv(rec), "reconciliation.csv", "text/csv", on_click="ignore")
sections.unregistered(src, cur, "finance")

issues = cache.currency_issues(src)
if not issues.empty:
    st.warning(f"Costs in a currency other than {cur} are left out of every number above:")
    st.dataframe(issues, hide_index=True, column_config=fmt.columns(issues, cur, amount="Amount (in its currency)"))
    st.download_button("Download currency issues (CSV)", views.to_csv(issues), "currency-issues.csv", "text/csv", on_click="ignore")
