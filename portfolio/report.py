"""Reports for the command line: the domain's frames cut to a period and written as a table, CSV or JSON.

The numbers are the domain's (:mod:`portfolio.pnl`, :mod:`portfolio.maintenance`,
:mod:`portfolio.retirement`); this module only selects rows and formats them. In CSV, money is
rounded to cents, hours to two decimals and ratios to four; JSON keeps full precision; the table is
for people and shows the key columns with thousands separators.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from portfolio import safe
from portfolio.periods import within

if TYPE_CHECKING:
    from portfolio.config import Config
    from portfolio.facts import Facts
    from portfolio.periods import Period

FORMATS = ("table", "csv", "json")
KINDS = ("pnl", "maintenance", "retirement")

MONEY = {
    "revenue_capture",
    "cost_avoidance",
    "value",
    "value_low",
    "value_high",
    "value_experiment",
    "value_observational",
    "value_estimate",
    "infra_cost",
    "vendor_cost",
    "other_cost",
    "people_cost",
    "cost",
    "net",
    "annual_savings",
    "value_at_risk",
}
HOURS = {"maintenance_hours", "klo_hours", "incident_hours", "improvement_hours", "hours", "mttr_hours", "freed_hours"}
RATIOS = {"roi"}

#: the columns each report must have (the domain may add more; all are written, in the domain's order)
REQUIRED = {
    "pnl": [
        "app_id", "month", "revenue_capture", "cost_avoidance", "value", "value_low", "value_high",
        "infra_cost", "people_cost", "other_cost", "cost", "net", "roi",
    ],
    "maintenance": ["app_id", "month", "klo_hours", "incidents", "mttr_hours", "people_cost"],
    "retirement": ["app_id", "rule", "reason", "annual_savings", "value_at_risk"],
}  # fmt: skip

#: what the human-readable table shows
TABLE_COLUMNS = {
    "pnl": [
        "app_id", "month", "team", "revenue_capture", "cost_avoidance", "value", "infra_cost",
        "other_cost", "people_cost", "cost", "net", "roi",
    ],
    "maintenance": ["app_id", "month", "team", "klo_hours", "improvement_hours", "incidents", "mttr_hours", "people_cost"],
    "retirement": ["app_id", "rule", "annual_savings", "value_at_risk", "reason"],
}  # fmt: skip


def in_period(frame: pd.DataFrame, period: Period, team: str | None = None, column: str = "month") -> pd.DataFrame:
    """Rows whose ``column`` (a month's first day) is one of the period's months, and of ``team``."""
    out = within(frame, column, period.start, period.end)
    if team is not None:
        out = out[out["team"] == team]
    return out.reset_index(drop=True)


def pnl_report(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> pd.DataFrame:
    """Monthly P&L per app (with the ``_unallocated`` row for unclaimed spend) over the period."""
    from portfolio import pnl

    return in_period(pnl.monthly_pnl(facts, cfg), period, team)


def maintenance_report(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> pd.DataFrame:
    """Monthly maintenance per app: KLO hours (incl. incidents), incidents, MTTR, people cost."""
    from portfolio import maintenance

    return in_period(maintenance.maintenance_monthly(facts, cfg), period, team)


def retirement_report(
    facts: Facts, cfg: Config, team: str | None = None, include_snoozed: bool = False
) -> pd.DataFrame:
    """Retirement findings as of ``facts.today`` (one row per app and rule)."""
    from portfolio import retirement

    frame = retirement.retirement_findings(facts, cfg, include_snoozed=include_snoozed)
    if team is not None:
        frame = frame[frame["team"] == team]
    return frame.reset_index(drop=True)


def ordered(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The frame as the domain made it (its column order), checked to have the report's columns."""
    missing = [c for c in REQUIRED[kind] if c not in frame.columns]
    if missing:
        raise KeyError(f"{kind} report lacks columns {missing}")
    return frame


def _digits(column: str) -> int | None:
    if column in MONEY or column in HOURS:
        return 2
    if column in RATIOS or column in {"availability", "slo"}:
        return 4
    return None


def _plain(value: Any) -> Any:
    """A JSON-able Python value: NaN/NaT -> None, dates -> ISO text, numpy scalars -> Python."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    return value


def to_csv(frame: pd.DataFrame) -> str:
    """CSV with money rounded to cents, hours to 2 and ratios to 4 decimals; dates ISO; dicts as JSON.

    Text cells that a spreadsheet would run as a formula get a leading ``'`` (:func:`portfolio.safe.csv_cell`).
    """
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        series = frame[col]
        digits = _digits(col)
        if digits is not None:
            out[col] = pd.to_numeric(series, errors="coerce").round(digits)
        elif series.dtype == object:
            out[col] = series.map(
                lambda v: json.dumps(_plain(v), sort_keys=True) if isinstance(v, dict | list) else _plain(v)
            )
        else:
            out[col] = series
    # text from the sources (app names, reasons, notes) must not run as a formula in a spreadsheet
    return str(safe.csv_frame(out).to_csv(index=False, lineterminator="\n"))


def to_json(frame: pd.DataFrame) -> str:
    """A JSON array of row objects (full precision; NaN as null)."""
    rows = [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    return json.dumps(rows, indent=2, allow_nan=False)


def _cell(column: str, value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if column in RATIOS and isinstance(value, int | float):
        return f"{value:.1%}"
    if column in MONEY and isinstance(value, int | float):
        return f"{value:,.2f}"
    if column in HOURS and isinstance(value, int | float):
        return f"{value:,.1f}"
    if column == "incidents" and isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.startswith(("19", "20")) and len(value) == 10 and column == "month":
        return value[:7]
    return str(value)


def to_table(frame: pd.DataFrame, columns: Iterable[str]) -> str:
    """A fixed-width text table of ``columns`` (numbers right-aligned)."""
    cols = [c for c in columns if c in frame.columns]
    if frame.empty:
        return "(no rows)"
    cells = [[_cell(c, v) for c, v in zip(cols, row, strict=True)] for row in frame[cols].itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    numeric = [c in MONEY or c in HOURS or c in RATIOS or c == "incidents" for c in cols]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def totals_line(frame: pd.DataFrame, columns: Iterable[str]) -> str:
    """``total: value 1,234.00  cost ...`` over the money columns present."""
    parts = []
    for c in columns:
        if c in frame.columns and (c in MONEY or c in HOURS):
            parts.append(f"{c} {_cell(c, float(pd.to_numeric(frame[c], errors='coerce').sum()))}")
    return "total: " + "  ".join(parts)


def render(frame: pd.DataFrame, kind: str, fmt: str) -> str:
    """The report ``kind`` in format ``fmt`` (table | csv | json)."""
    frame = ordered(frame, kind)
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "json":
        return to_json(frame) + "\n"
    text = to_table(frame, TABLE_COLUMNS[kind])
    if kind in ("pnl", "maintenance") and not frame.empty:
        keys = ["value", "cost", "net"] if kind == "pnl" else ["klo_hours", "people_cost"]
        text += "\n" + totals_line(frame, keys)
    return text + "\n"
