"""App: one app's P&L over time, its costs, usage, availability, evidence, tickets, findings, decisions,
and its lifecycle (stage history, with the model version live at each event where MLflow says)."""

from datetime import date

import pandas as pd
import streamlit as st

from portfolio import genai, safe
from portfolio.dashboard import actions, cache, charts, filters, fmt, savings, sections, signin, views
from portfolio.errors import PortfolioError
from portfolio.records import UNALLOCATED

st.title("App")
src = cache.source_or_stop()
cur = cache.config(src).currency
f = filters.sidebar(src.today, cache.teams(src), team=False, months=cache.data_months(src))

inventory = cache.apps(src)
names = dict(zip(inventory["app_id"], inventory["name"], strict=True))
names[UNALLOCATED] = "Unallocated (shared) spend"
wanted = st.query_params.get("app")
if wanted is not None and wanted not in names:
    # a link naming no app says so (it used to show whichever app the picker held)
    st.warning(f"No app `{wanted}` in the inventory: choose one below.")
    st.session_state["app_pick"] = None
elif wanted in names and st.session_state.get("app_pick") != wanted:
    st.session_state["app_pick"] = wanted  # a link or st.switch_page(…, query_params={"app": …})


def _to_url() -> None:
    if st.session_state["app_pick"] is not None:
        st.query_params["app"] = st.session_state["app_pick"]


app_id = st.selectbox(
    "App", list(names), format_func=lambda a: f"{names[a]} ({a})", key="app_pick", on_change=_to_url,
    placeholder="Choose an app",
)
if app_id is None:
    st.info("No app selected.")
    st.stop()
flash = st.session_state.pop("app_flash", None)
if flash:
    st.success(flash)
st.query_params["app"] = app_id

view = cache.app_view(src, app_id, f.start, f.end)
info = view.info
if app_id != UNALLOCATED:  # the lifecycle's stage today (derived: "retiring" reads "retired" from its planned date)
    stage_now, planned_on = cache.stage(src, app_id)
    info = {**info, "stage": f"{stage_now} (planned {planned_on})" if planned_on is not None else stage_now}
st.header(safe.md(names[app_id]))  # names, owners, descriptions come from the data: shown as text
st.caption(
    f"{safe.md_code(app_id)} · "
    + " · ".join(
        f"{label}: {safe.md(info.get(key))}"
        for label, key in [("team", "team"), ("owner", "owner"), ("sponsor", "sponsor"), ("stage", "stage"),
                           ("value kind", "value_kind"), ("launched", "launched"), ("SLO", "slo_availability")]
        if info.get(key) not in (None, "")
    )
)


def lifecycle_section() -> None:
    """The app's lifecycle: every event, newest first, with the model version live then; and, for
    editors, a stage change (pause, resume, promote, record the day it stopped)."""
    if app_id == UNALLOCATED:
        return
    st.subheader("Lifecycle")
    history = cache.stage_history(src, app_id)
    newest = info.get("last_model_version_at")
    if newest not in (None, ""):
        st.caption(f"Newest model version registered: {safe.md(newest)} (MLflow)")
    if history.empty:
        st.info(f"No lifecycle event recorded: its stage ({safe.md(info.get('stage'))}) is the inventory's. "
                "Propose a change on the Retirement page.")  # fmt: skip
    else:
        shown = history[["at", "kind", "action", "stage", "effective", "planned", "actor", "self_approved", "rationale",
                         "evidence", "projected_annual_savings", "net_effect", "model_version_at"]]  # fmt: skip
        shown = shown.assign(**{c: shown[c].map(lambda v: None if pd.isna(v) else float(v))
                                for c in ("projected_annual_savings", "net_effect")})  # fmt: skip
        st.dataframe(
            shown, hide_index=True,
            column_config=fmt.columns(
                shown, cur, at=st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm"),
                actor=st.column_config.TextColumn("Who"), evidence=st.column_config.LinkColumn("Evidence"),
                self_approved=st.column_config.CheckboxColumn("Self-approved", help="The proposer approved their own proposal"),
                projected_annual_savings=fmt.money_column("Projected annual savings", cur),
                net_effect=fmt.money_column("Net effect", cur),
                model_version_at=st.column_config.DatetimeColumn("Model version live (MLflow)", format="YYYY-MM-DD",
                                                                 help="The app's newest model version when the event was recorded"),
            ),
        )  # fmt: skip
        st.download_button("Download lifecycle (CSV)", views.to_csv(history), f"{app_id}-lifecycle.csv", "text/csv", on_click="ignore")
    user = signin.current_user(cache.config(src))
    if not user.can("change_stage"):
        return
    stage_now = cache.stage(src, app_id)[0]
    with st.expander("Change its stage (pause, resume, promote, record the day it stopped)"):
        with st.form("stage_change"):
            choices = [s for s in ("pilot", "production", "paused", "retired") if s != stage_now]
            new_stage = st.selectbox("New stage", choices, key="stage_new")
            effective: date = st.date_input("Effective from (retired: the day it stopped)", value=src.today, key="stage_effective")
            why = st.text_input("Why", key="stage_why")
            link = st.text_input("Evidence link", key="stage_evidence", placeholder="https://…")
            by = None if user.signed_in else st.text_input("Changed by", key="stage_by", placeholder="name or e-mail")
            go = st.form_submit_button("Change stage")
        if go and new_stage is not None:
            try:
                row = actions.change_stage(src, user, by, app_id, new_stage, why, link, effective)
            except (PortfolioError, ValueError) as exc:
                st.error(f"Not recorded: {safe.md(exc)}")
                return
            st.session_state["app_flash"] = f"{safe.md(names[app_id])} is {row.stage} from {row.effective} (by {safe.md(row.actor)})."
            st.rerun()

if info.get("description"):
    st.markdown(safe.md(info["description"]))

row = cache.app_pnl(src, f.start, f.end, None, f.vs)
row = row[row["app_id"] == app_id]
if row.empty or (row["value"].abs().sum() == 0 and row["cost"].abs().sum() == 0):
    st.info(f"{safe.md(names[app_id])} has no value or cost in {f.period.label}.")
    lifecycle_section()  # a retired app often has none: its history still shows
    st.stop()
r = row.iloc[0]
c = st.columns(6)
c[0].metric("Value", fmt.money(r["value"], cur), fmt.money_delta(r["value"] - r["prev_value"], cur))
c[1].metric("Cost", fmt.money(r["cost"], cur), fmt.money_delta(r["cost"] - r["prev_cost"], cur), delta_color="inverse")
c[2].metric("Net", fmt.money(r["net"], cur), fmt.money_delta(r["net_change"], cur))
c[3].metric("ROI", fmt.percent(r["roi"]))
since = sections.since_label(r)
c[4].metric(f"Cumulative net {since}", fmt.money(r["cumulative_net"], cur),
            help=f"NPV at the configured discount rate: {fmt.money(r['npv'], cur)}; lifetime ROI {fmt.percent(r['lifetime_roi'])}")
c[5].metric("Payback month", fmt.month(r["payback_month"], missing="not yet" if since == "since launch" else "not claimed"),
            help=None if since == "since launch" else "No build cost or opening net in the config: counted from the first month with data, so no payback month is claimed.")
sections.app_recommendation(src, app_id, cur)
st.caption(
    f"Run-rate (trailing 3 full months × 4): value {fmt.money(r['run_rate_value'], cur)}, "
    f"cost {fmt.money(r['run_rate_cost'], cur)}, net {fmt.money(r['run_rate_net'], cur)} · "
    f"cost per 1,000 requests {fmt.money(r['cost_per_1k_requests'], cur, decimals=2)}"
)

savings.app_sections(src, app_id, cur, f.start, min(f.end, src.today))  # issue 13: plan, downtime, retirement on the bill

st.subheader("P&L over time")
monthly = cache.monthly_pnl(src)
mine = monthly[monthly["app_id"] == app_id]
mine = mine[(mine["month"] >= f.start) & (mine["month"] <= f.end)]
st.altair_chart(charts.monthly_series(mine, cur))
with st.expander("Monthly P&L table"):
    st.dataframe(mine, hide_index=True, column_config=fmt.columns(
        mine, cur, month=st.column_config.DateColumn("Month", format="YYYY-MM")))  # fmt: skip
    st.download_button("Download monthly P&L (CSV)", views.to_csv(mine), f"{app_id}-pnl.csv", "text/csv", on_click="ignore")

st.subheader("Cost by category and service")
if view.costs.empty:
    st.info("No cost recorded in this period.")
else:
    left, right = st.columns(2)
    left.altair_chart(charts.cost_by_category(view.costs, cur))
    by_service = view.costs.groupby(["category", "service"], as_index=False).agg(amount=("amount", "sum"))
    by_service = by_service.sort_values("amount", ascending=False)
    right.dataframe(by_service, hide_index=True, column_config=fmt.columns(by_service, cur, amount=fmt.money_column("Cost", cur)))
    right.download_button("Download costs (CSV)", views.to_csv(view.costs), f"{app_id}-costs.csv", "text/csv", on_click="ignore")

left, right = st.columns(2)
with left:
    st.subheader("Usage")
    if view.usage.empty:
        st.info("No usage recorded in this period.")
    else:
        st.altair_chart(charts.daily_usage(view.usage))
with right:
    st.subheader("Availability vs SLO")
    if view.uptime.empty:
        st.info("No availability recorded in this period.")
    else:
        slo = info.get("slo_availability")
        st.altair_chart(charts.availability_vs_slo(view.uptime, float(slo) if isinstance(slo, int | float) else None))

everything = cache.facts(src)
tokens = genai.economics(everything.usage, everything.costs, f.start, min(f.end, everything.last_complete_day), cur)
tokens = tokens[tokens["app_id"] == app_id]
if not tokens.empty:  # a GenAI app: tokens and unit cost per model (portfolio/genai.py)
    st.subheader("Tokens")
    st.dataframe(
        tokens.drop(columns=["app_id"]), hide_index=True,
        column_config={"billed_cost": fmt.money_column("Billed", cur), "estimated_cost": fmt.money_column("Estimated", cur),
                       "cost": fmt.money_column("Cost", cur), "cost_per_1m_tokens": fmt.money_column("Cost per 1M tokens", cur),
                       "cost_per_request": fmt.money_column("Cost per request", cur)},
    )
    hosting = genai.hosting(everything.usage, everything.costs, f.start, min(f.end, everything.last_complete_day), cur)
    hosting = hosting[(hosting["scope"] == "app") & (hosting["key"] == app_id)]
    if not hosting.empty:  # the app runs models on its own GPUs and buys others through an API
        h = hosting.iloc[0]
        line = (
            f"self-hosted models {fmt.money(h['self_hosted_per_1m'], cur, decimals=4)} per 1M tokens "
            f"({h['self_hosted_tokens']:,.0f} tokens), API models {fmt.money(h['api_per_1m'], cur, decimals=4)} "
            f"per 1M tokens ({h['api_tokens']:,.0f} tokens)"
        )
        st.markdown(f"**Self-hosted against API**: {safe.md(line)}")  # safe.md: "$" would start math
    in_period = everything.costs[everything.costs["app_id"] == app_id] if not everything.costs.empty else everything.costs
    if not in_period.empty:
        days = in_period["day"].map(lambda d: f.start <= d <= f.end)
        drift = genai.drift(in_period[days], cache.config(src).genai.drift_threshold, cur)
        flagged = drift[drift["flagged"]]
        if not drift.empty:
            st.caption(
                f"Billed against estimated: {len(drift)} day(s) with both a vendor bill and a gateway estimate; "
                f"the bill counts in the P&L, the estimate does not."
            )
        if not flagged.empty:
            worst = flagged.iloc[int(flagged["drift"].abs().to_numpy().argmax())]
            st.warning(
                f"The gateway's estimate differs from the vendor's bill by more than "
                f"{fmt.percent(cache.config(src).genai.drift_threshold)} on {len(flagged)} day(s); "
                f"worst {worst['day']}: estimated {fmt.money(worst['estimated'], cur, decimals=2)} against billed "
                f"{fmt.money(worst['billed'], cur, decimals=2)} ({worst['drift']:+.1%})."
            )

st.subheader("Outcomes and their evidence")
if view.outcomes.empty:
    st.info("No outcome recorded in this period.")
else:
    st.dataframe(
        view.outcomes,
        hide_index=True,
        column_config=fmt.columns(
            view.outcomes, cur,
            month=st.column_config.DateColumn("Month", format="YYYY-MM"),
            value=fmt.money_column("Attributed value", cur),
            counts=st.column_config.CheckboxColumn("Counts", help="Unticked: another source ranks higher in [value] precedence"),
        ),
    )
    st.download_button("Download outcomes (CSV)", views.to_csv(view.outcomes), f"{app_id}-outcomes.csv", "text/csv", on_click="ignore")

st.subheader("Maintenance tickets")
if view.tickets.empty:
    st.info("No maintenance recorded in this period.")
else:
    st.dataframe(
        view.tickets,
        hide_index=True,
        column_config=fmt.columns(view.tickets, cur, url=st.column_config.LinkColumn("Link")),
    )
    st.download_button("Download tickets (CSV)", views.to_csv(view.tickets), f"{app_id}-tickets.csv", "text/csv", on_click="ignore")

st.subheader("Retirement findings")
found = cache.findings(src, include_snoozed=True)
found = found[found["app_id"] == app_id]
if found.empty:
    st.success("No retirement rule fires for this app.")
else:
    shown = views.clean_for_display(found[["rule", "reason", "numbers", "annual_savings", "value_at_risk", "snoozed_until"]])
    st.dataframe(shown, hide_index=True, column_config=fmt.columns(shown, cur))
    st.download_button("Download findings (CSV)", views.to_csv(shown), f"{app_id}-findings.csv", "text/csv", on_click="ignore")

st.subheader("Decisions")
log = cache.decision_log(src, app_id)
if log.empty:
    st.info("No decision recorded yet — record one on the Retirement page.")
else:
    st.dataframe(log, hide_index=True, column_config=fmt.columns(log, cur))
    st.download_button("Download decisions (CSV)", views.to_csv(log), f"{app_id}-decisions.csv", "text/csv", on_click="ignore")

lifecycle_section()
