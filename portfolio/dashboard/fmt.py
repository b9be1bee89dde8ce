"""How numbers are written on the dashboard: one place, so tests can compare with the domain.

Money goes through :mod:`portfolio.money` (the one formatter the review, alerts and CLI share).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from portfolio import money as money_mod

_COLUMN_FORMATS = {"USD": "dollar", "EUR": "euro", "JPY": "yen"}


def _missing(value: Any) -> bool:
    return money_mod.missing(value)


def money(value: Any, currency: str = "USD", decimals: int = 0) -> str:
    """``$1,234,567`` / ``-€1,234`` / ``1,234 CHF`` (whole units by default); ``–`` when missing."""
    return money_mod.fmt(value, currency, decimals)


def money_short(value: Any, currency: str = "USD") -> str:
    """``$12.69M`` / ``-$950.3K`` / ``$812``: four significant digits for a KPI tile; ``–`` when missing."""
    return money_mod.short(value, currency)


def money_short_delta(value: Any, currency: str = "USD") -> str | None:
    """A signed compact delta (``+$2.35M``); None when missing or when it rounds to nothing."""
    return money_mod.delta(value, currency, compact=True)


def money_delta(value: Any, currency: str = "USD") -> str | None:
    """A signed money delta for ``st.metric`` (``+$1,234`` / ``-$1,234``); None when missing or nothing."""
    return money_mod.delta(value, currency)


def percent(value: Any) -> str:
    """``12.3%``; ``–`` when missing (ROI of an app with no cost)."""
    if _missing(value):
        return "–"
    return f"{float(value) * 100:.1f}%"


def percent_delta(value: Any) -> str | None:
    """A signed change in percentage points for ``st.metric``."""
    if _missing(value):
        return None
    return f"{float(value) * 100:+.1f} pp"


def hours(value: Any, decimals: int = 0) -> str:
    """``1,234 h``; ``decimals=1`` for short durations (MTTR ``1.7 h``, not ``2 h``); ``–`` when missing."""
    if _missing(value):
        return "–"
    amount = float(value)
    return f"{0.0 if round(amount, decimals) == 0 else amount:,.{decimals}f} h"


#: column -> what a table's header says (anything else: "snake_case" -> "Snake case")
LABELS = {
    "app_id": "App id", "name": "App", "value_kind": "Value kind", "roi": "ROI", "prev_roi": "ROI, compared period",
    "revenue_capture": "Revenue capture", "cost_avoidance": "Cost avoidance", "value_low": "Value (low)",
    "value_high": "Value (high)", "value_experiment": "Value, experiment", "value_observational": "Value, observational",
    "value_estimate": "Value, estimate", "infra_cost": "Infra cost", "vendor_cost": "Vendor cost",
    "other_cost": "Other cost", "people_cost": "People cost", "maintenance_hours": "Maintenance hours",
    "requests": "Requests", "cost_per_1k_requests": "Cost per 1,000 requests", "value_per_request": "Value per request",
    "prev_value": "Value, compared period", "prev_cost": "Cost, compared period", "prev_net": "Net, compared period",
    "net_change": "Net change", "cumulative_net": "Cumulative net", "payback_month": "Payback month",
    "run_rate_cost": "Run-rate cost / yr", "run_rate_value": "Run-rate value / yr", "run_rate_net": "Run-rate net / yr",
    "slo": "SLO", "slo_availability": "SLO", "klo_hours": "KLO hours", "improvement_hours": "Improvement hours",
    "incident_hours": "Incident hours", "mttr_hours": "MTTR", "ttr_hours": "Time to restore",
    "capacity_hours": "Capacity hours", "klo_share": "KLO share", "klo_share_of_team": "Share of team capacity",
    "annual_savings": "Annual savings", "value_at_risk": "Value at risk", "freed_hours": "Freed hours / yr",
    "snoozed_until": "Snoozed until", "billing_period": "Billing period", "rows_written": "Rows written",
    "rows_deleted": "Rows deleted", "connector_type": "Connector type", "decided_at": "Decided at",
    "decided_by": "Decided by", "next_review": "Next review", "maintenance_to_value": "Maintenance / value",
}  # fmt: skip
_MONEY = {
    "revenue_capture", "cost_avoidance", "value", "value_low", "value_high", "value_experiment", "value_observational",
    "value_estimate", "infra_cost", "vendor_cost", "other_cost", "people_cost", "cost", "net", "prev_value",
    "prev_cost", "prev_net", "net_change", "cumulative_net", "run_rate_cost", "run_rate_value", "run_rate_net",
    "annual_savings", "value_at_risk", "amount", "low", "high", "cost_per_1k_requests", "before", "after", "delta",
    "npv", "net_effect", "lifetime_cost", "unregistered", "counted_amount", "allocated", "unallocated", "recorded",
    "billed", "difference",
}  # fmt: skip
_HOURS = {"maintenance_hours", "klo_hours", "improvement_hours", "incident_hours", "hours", "mttr_hours",
          "ttr_hours", "capacity_hours", "freed_hours"}  # fmt: skip
_PERCENT = {"roi", "prev_roi", "availability", "slo", "slo_availability", "attribution", "klo_share_of_team"}


def label(column: str) -> str:
    """The human header of ``column`` (``people_cost`` -> ``People cost``)."""
    return LABELS.get(column, column.replace("_", " ").capitalize())


def columns(frame: pd.DataFrame, currency: str = "USD", **overrides: Any) -> dict[str, Any]:
    """``column_config`` for every column of ``frame``: human labels, money in ``currency``, hours, percents.

    ``overrides`` replace the entry of a column (a label, a column config, or None to hide it).
    """
    out: dict[str, Any] = {}
    for col in map(str, frame.columns):
        if col in _MONEY:
            out[col] = money_column(label(col), currency, decimals=2 if col == "cost_per_1k_requests" else None)
        elif col in _HOURS:
            out[col] = hours_column(label(col))
        elif col in _PERCENT:
            out[col] = percent_column(label(col))
        else:
            out[col] = label(col)
    out.update(overrides)
    return out


def money_column(label: str, currency: str = "USD", help: str | None = None, decimals: int | None = None) -> Any:
    """A currency column for ``st.dataframe`` (Streamlit formats it, the value stays a number).

    ``decimals``: a fixed number of decimals (``€0.42`` per 1,000 requests) instead of Streamlit's currency format.
    """
    fmt = _COLUMN_FORMATS.get(currency, "localized")
    if decimals is not None:
        prefix, suffix = money_mod.affixes(currency)
        fmt = f"{prefix}%.{decimals}f{suffix}"
    elif fmt == "localized":
        label = f"{label} ({currency})"
    return st.column_config.NumberColumn(label, format=fmt, help=help)


def percent_column(label: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format="percent", help=help)


def hours_column(label: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format="%.1f h", help=help)


def month(value: Any, missing: str = "–") -> str:
    """``2026-03`` from a date / timestamp / ISO text; ``missing`` for None / NaT."""
    if value is None:
        return missing
    try:
        if pd.isna(value):
            return missing
    except (TypeError, ValueError):
        pass
    return str(value)[:7]
