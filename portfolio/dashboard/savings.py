"""Dashboard sections of issue 13: value lost to downtime, plan versus actual, hard and soft value,
leftover spend and the retirement ledger (:mod:`portfolio.verify`, :mod:`portfolio.plan`).

The pages call one function each (``app_sections``, ``portfolio_sections``, ``finance_sections``,
``retirement_sections``), so the pages themselves change by a line. Reads are cached here, keyed
like :mod:`portfolio.dashboard.cache` (by the source and plain values). Text from the data (app
names, who approved, assumption names) is shown through dataframes or :mod:`portfolio.safe`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from portfolio import plan, safe, verify
from portfolio.dashboard import cache, fmt, views
from portfolio.dashboard.cache import ENTRIES, TTL, Source

_MONEY = {
    "value_lost", "value", "expected_annual_value", "actual_annual_value", "value_variance", "expected_annual_run_cost",
    "actual_annual_run_cost", "run_cost_variance", "expected_annual_net", "actual_annual_net", "net_variance",
    "build_cost", "leftover_spend", "daily_rate", "projected_annual_savings", "before_annual_cost", "after_annual_cost",
    "realised_annual_savings", "savings_variance", "value_at_risk", "value_before_annual", "value_after_annual",
    "value_gone_annual",
}  # fmt: skip
_PERCENT = {"value_pct_of_plan", "run_cost_pct_of_plan", "realised_pct", "availability", "slo", "shortfall"}
_HOURS = {"freed_hours_per_month", "projected_freed_hours_per_month"}


def _numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Decimals as floats for Streamlit's number columns (the CSV download keeps the exact values)."""
    out = frame.copy()
    for col in out.columns:
        if col in _MONEY or col in _PERCENT or col in _HOURS:
            out[col] = pd.to_numeric(out[col].map(lambda v: float(v) if isinstance(v, Decimal) else v), errors="coerce")
    return out


def _config(frame: pd.DataFrame, cur: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in map(str, frame.columns):
        if col in _MONEY:
            out[col] = fmt.money_column(fmt.label(col), cur)
        elif col in _PERCENT:
            out[col] = fmt.percent_column(fmt.label(col))
        elif col in _HOURS:
            out[col] = fmt.hours_column(fmt.label(col))
        else:
            out[col] = fmt.label(col)
    return out


def _table(frame: pd.DataFrame, cur: str, name: str, columns: list[str] | None = None) -> None:
    shown = frame[[c for c in columns if c in frame.columns]] if columns else frame
    st.dataframe(_numbers(shown), hide_index=True, column_config=_config(shown, cur))
    st.download_button(f"Download {name} (CSV)", views.csv_later(frame), f"{name.replace(' ', '-')}.csv", "text/csv", on_click="ignore")


# ----------------------------------------------------------------------------- cached reads


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def downtime(src: Source, start: date, end: date) -> pd.DataFrame:
    return verify.downtime_loss(cache.books(src), start, end)


@st.cache_data(ttl=TTL, max_entries=ENTRIES, show_spinner=False)
def plan_vs_actual(src: Source, end: date) -> pd.DataFrame:
    return plan.plan_vs_actual(cache.books(src), end)


@st.cache_data(ttl=TTL, max_entries=ENTRIES, show_spinner=False)
def assumptions(src: Source, start: date, end: date) -> pd.DataFrame:
    return plan.assumptions(cache.books(src), start, end)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def leftover(src: Source) -> pd.DataFrame:
    return verify.leftover_spend(cache.books(src))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)  # keyed by the data version (in src): no TTL
def ledger(src: Source) -> pd.DataFrame:
    return verify.retirement_ledger(cache.books(src))


def _plan_or_error(src: Source, end: date) -> pd.DataFrame | None:
    """Plan vs actual, or None after showing why the business cases cannot be read (file, row, column)."""
    try:
        return plan_vs_actual(src, end)
    except plan.PlanError as exc:
        st.error(f"Business cases not shown: {safe.md(str(exc))}")
        return None


# ----------------------------------------------------------------------------- page sections


def app_sections(src: Source, app_id: str, cur: str, start: date, end: date) -> None:
    """App page: plan vs actual, value lost to downtime, leftover spend and the retirement's verification."""
    frame = _plan_or_error(src, end)
    if frame is not None and app_id in set(frame["app_id"]):
        st.subheader("Plan versus actual")
        p = frame[frame["app_id"] == app_id].iloc[0]
        st.caption(
            f"Business case approved by {safe.md(p['approved_by'] or 'unknown')}"
            f"{' on ' + str(p['approved_on']) if p['approved_on'] else ''}: actual = the last 12 full months"
            + (f" (annualised from {p['months']} months since launch)" if 0 < p["months"] < plan.PLAN_MONTHS else "")
        )
        c = st.columns(4)
        c[0].metric("Value a year", fmt.money(p["actual_annual_value"], cur), fmt.money_delta(p["value_variance"], cur),
                    help=f"plan {fmt.money(p['expected_annual_value'], cur)}; {fmt.percent(p['value_pct_of_plan'])} of plan")  # fmt: skip
        c[1].metric("Run cost a year", fmt.money(p["actual_annual_run_cost"], cur), fmt.money_delta(p["run_cost_variance"], cur),
                    delta_color="inverse",
                    help=f"plan {fmt.money(p['expected_annual_run_cost'], cur)}; {fmt.percent(p['run_cost_pct_of_plan'])} of plan")  # fmt: skip
        c[2].metric("Net a year against plan", fmt.money_delta(p["net_variance"], cur) or "–", help=str(p["status"]))
        c[3].metric("Status", str(p["status"]))
    loss = downtime(src, start, end)
    mine = loss[loss["app_id"] == app_id]
    if not mine.empty:
        st.subheader("Value lost to downtime")
        st.caption("Months below the availability SLO: the month's value × (SLO − availability).")
        _table(mine, cur, f"{app_id}-downtime", ["month", "availability", "slo", "shortfall", "value", "value_lost"])
    soft = assumptions(src, start, end)
    soft = soft[(soft["app_id"] == app_id) & (soft["value"] != 0)]
    if not soft.empty:
        st.subheader("Value assumptions (soft value)")
        flagged = soft[soft["status"] != "approved"]
        if not flagged.empty:
            st.warning(f"{len(flagged)} assumption(s) expired, unapproved or missing behind estimate value of "
                       f"{fmt.money(flagged['value'].sum(), cur)} in the period.")  # fmt: skip
        _table(soft, cur, f"{app_id}-assumptions")
    left = leftover(src)
    left = left[left["app_id"] == app_id]
    led = ledger(src)
    led = led[led["app_id"] == app_id]
    if not led.empty or not left.empty:
        st.subheader("Retirement verified on the bill")
        if not led.empty:
            _table(led, cur, f"{app_id}-retirement", ["retired_on", "approved_by", "projected_annual_savings",
                   "realised_annual_savings", "savings_variance", "realised_pct", "freed_hours_per_month",
                   "value_gone_annual", "status"])  # fmt: skip
        if not left.empty:
            st.warning(f":material/money_off: Leftover spend: {fmt.money(left['leftover_spend'].sum(), cur, decimals=2)} billed after the grace period, "
                     f"still about {fmt.money(left['daily_rate'].sum(), cur, decimals=2)} a day.")  # fmt: skip
            _table(left, cur, f"{app_id}-leftover-spend", ["source", "category", "service", "leftover_spend", "first_day",
                   "last_day", "daily_rate"])  # fmt: skip


def portfolio_sections(src: Source, k: dict[str, Any], cur: str, start: date, end: date) -> None:
    """Portfolio page: hard and soft value, value lost to downtime, savings realised this year."""
    c = st.columns(4)
    c[0].metric("Hard value", fmt.money_short(k.get("hard_value"), cur),
                help=f"{fmt.money(k.get('hard_value'), cur)}: experiment and observational evidence")  # fmt: skip
    c[1].metric("Soft value", fmt.money_short(k.get("soft_value"), cur),
                help=f"{fmt.money(k.get('soft_value'), cur)}: estimates, resting on assumptions")  # fmt: skip
    loss = downtime(src, start, end)
    c[2].metric("Value lost to downtime", fmt.money_short(loss["value_lost"].sum() if not loss.empty else 0.0, cur),
                help="Months below an app's availability SLO: the month's value × (SLO − availability)")  # fmt: skip
    t = verify.year_totals(ledger(src), cache.facts(src).last_complete_day.year)
    c[3].metric(f"Savings realised {t['year']}", fmt.money_short(t["realised"], cur),
                help=f"{t['verified']} verified retirement(s): {fmt.money(t['realised'], cur)}/yr realised on the bill against "
                     f"{fmt.money(t['projected_verified'], cur)}/yr projected; {t['pending']} not verifiable yet")  # fmt: skip


def finance_sections(src: Source, cur: str, start: date, end: date) -> None:
    """Finance page: plan versus actual, value assumptions flagged, value lost to downtime."""
    frame = _plan_or_error(src, end)
    st.subheader("Plan versus actual (business cases)")
    if frame is None:
        pass
    elif frame.empty:
        st.info("No business case: add [plan.business_case.<app id>] to portfolio.toml or a business_case file.")
    else:
        _table(frame, cur, "plan-vs-actual", ["name", "months", "expected_annual_value", "actual_annual_value",
               "value_variance", "value_pct_of_plan", "expected_annual_run_cost", "actual_annual_run_cost",
               "run_cost_variance", "net_variance", "status", "approved_by"])  # fmt: skip
    soft = assumptions(src, start, end)
    st.subheader("Soft value and its assumptions")
    if soft.empty:
        st.info("No estimate value in the period.")
    else:
        flagged = soft[soft["status"].isin(plan.FLAGGED)]
        if not flagged.empty:
            st.warning(f"{len(flagged)} assumption(s) expired, unapproved or undeclared: "
                       + ", ".join(safe.md_code(str(a)) for a in flagged["assumption"]))  # fmt: skip
        _table(soft, cur, "value-assumptions")
    loss = downtime(src, start, end)
    st.subheader("Value lost to downtime")
    if loss.empty:
        st.success("No app missed its availability SLO in the period.")
    else:
        _table(loss, cur, "downtime-loss")


def retirement_sections(src: Source, cur: str) -> None:
    """Retirement page: the retirement ledger (projected vs realised), this year's totals, leftover spend."""
    led = ledger(src)
    st.subheader("Retirement ledger: savings verified on the bill")
    cfg = cache.config(src).savings
    st.caption(
        f"Realised = run-rate of the {cfg.before_days} days before the retirement date − run-rate of up to "
        f"{cfg.after_days} days after the {cfg.grace_days}-day grace period, a year; not claimed before "
        f"{cfg.min_after_days} days after the grace period."
    )
    if led.empty:
        st.info("No retirement carried out yet.")
    else:
        t = verify.year_totals(led, cache.facts(src).last_complete_day.year)
        c = st.columns(3)
        c[0].metric(f"Realised {t['year']} (a year)", fmt.money(t["realised"], cur))
        c[1].metric(f"Projected {t['year']}, verified retirements", fmt.money(t["projected_verified"], cur))
        c[2].metric(f"Retirements {t['year']}", f"{t['retirements']}", help=f"{t['pending']} not verifiable yet")
        _table(led, cur, "retirement-ledger", ["name", "retired_on", "approved_by", "projected_annual_savings",
               "realised_annual_savings", "savings_variance", "realised_pct", "projected_freed_hours_per_month",
               "freed_hours_per_month", "value_at_risk", "value_gone_annual", "leftover_spend", "status"])  # fmt: skip
    left = leftover(src)
    st.subheader("Leftover spend")
    if left.empty:
        st.success("No retired app bills after its grace period.")
    else:
        st.warning(f"{left['app_id'].nunique()} retired app(s) still bill: {fmt.money(left['leftover_spend'].sum(), cur, decimals=2)} "
                 "after the grace period.")  # fmt: skip
        _table(left, cur, "leftover-spend")
