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


def hours(value: Any) -> str:
    if _missing(value):
        return "–"
    amount = float(value)
    return f"{0.0 if round(amount) == 0 else amount:,.0f} h"


def money_column(label: str, currency: str = "USD", help: str | None = None) -> Any:
    """A currency column for ``st.dataframe`` (Streamlit formats it, the value stays a number)."""
    fmt = _COLUMN_FORMATS.get(currency, "localized")
    if fmt == "localized":
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
