"""Reports for the command line: the domain's frames cut to a period and written as a table, CSV or JSON.

The numbers are the domain's (:mod:`portfolio.pnl`, :mod:`portfolio.maintenance`,
:mod:`portfolio.retirement`); this module only selects rows and formats them.

CSV and JSON (the CLI's and every dashboard download) carry **exact decimal amounts**: money is
the Decimal :func:`portfolio.money.exact` recovers (micro-units, never ``2329329.9099999997``,
never ``-0.0``; a missing value is an empty cell / ``null``, never ``None``), and every row foots
by construction (:data:`FOOTINGS`: cost = infra + other + people, net = value − cost, …), so the
rows add up to the totals shown, to the cent. Rounding each cell separately made a FOCUS bill's rows
sum to 755.06 where the bill is 755.07, and a row show 265.60 + 9.52 as a cost of 275.13.

The table is for people: it rounds for display only; its totals are sums of the exact values.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from portfolio import money, safe
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
    # app_pnl / rollups / dashboard tables
    "prev_value", "prev_cost", "prev_net", "net_change", "cumulative_net", "run_rate_cost", "run_rate_value",
    "run_rate_net", "amount", "low", "high", "allocated", "unallocated", "recorded", "billed", "difference",
    "before", "after", "delta", "net_effect", "total", "npv", "lifetime_cost", "unregistered", "counted_amount",
    "build_cost", "opening_net",
    # hard and soft value; plan vs actual; downtime; retirements verified on the bill (portfolio.plan, portfolio.verify)
    "value_hard", "value_soft", "expected_annual_value", "actual_annual_value", "value_variance",
    "expected_annual_run_cost", "actual_annual_run_cost", "run_cost_variance", "expected_annual_net",
    "actual_annual_net", "net_variance", "value_lost", "projected_annual_savings", "before_annual_cost",
    "after_annual_cost", "realised_annual_savings", "savings_variance", "value_before_annual", "value_after_annual",
    "value_gone_annual", "leftover_spend", "daily_rate",
}  # fmt: skip
HOURS = {
    "projected_freed_hours_per_month", "freed_hours_per_month",
    "maintenance_hours", "klo_hours", "incident_hours", "improvement_hours", "hours", "mttr_hours", "freed_hours",
    "ttr_hours", "capacity_hours",
}  # fmt: skip
RATIOS = {"roi", "prev_roi", "value_pct_of_plan", "run_cost_pct_of_plan", "realised_pct", "shortfall", "availability", "slo"}
#: derived money column -> (plus, minus): recomputed from the exact parts so every row foots
FOOTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cost": (("infra_cost", "other_cost", "people_cost"), ()),
    "net": (("value",), ("cost",)),
    "prev_net": (("prev_value",), ("prev_cost",)),
    "net_change": (("net",), ("prev_net",)),
    "run_rate_net": (("run_rate_value",), ("run_rate_cost",)),
    "recorded": (("allocated", "unallocated"), ()),
    "difference": (("recorded",), ("billed",)),
    "delta": (("after",), ("before",)),
    "net_effect": (("annual_savings",), ("value_at_risk",)),
    "value_hard": (("value_experiment", "value_observational"), ()),
    "value_soft": (("value_estimate",), ()),
    "actual_annual_net": (("actual_annual_value",), ("actual_annual_run_cost",)),
    "expected_annual_net": (("expected_annual_value",), ("expected_annual_run_cost",)),
    "value_variance": (("actual_annual_value",), ("expected_annual_value",)),
    "run_cost_variance": (("actual_annual_run_cost",), ("expected_annual_run_cost",)),
    "net_variance": (("actual_annual_net",), ("expected_annual_net",)),
    "realised_annual_savings": (("before_annual_cost",), ("after_annual_cost",)),
    "savings_variance": (("realised_annual_savings",), ("projected_annual_savings",)),
    "value_gone_annual": (("value_before_annual",), ("value_after_annual",)),
}

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
        "app_id", "month", "team", "revenue_capture", "cost_avoidance", "value", "value_hard", "value_soft",
        "infra_cost", "other_cost", "people_cost", "cost", "net", "roi",
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


def comparison_line(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> str:
    """``compared with 2024-12 – 2025-11: value … (+…)``: the period's totals against its comparison."""
    from portfolio import pnl

    apps = pnl.app_pnl(facts, cfg, period, team)
    now = totals(apps, ["value", "cost", "net", "prev_value", "prev_cost", "prev_net"])
    parts = []
    for key in ("value", "cost", "net"):
        before = now.get(f"prev_{key}", Decimal(0))
        change = now.get(key, Decimal(0)) - before
        sign = "+" if change > 0 else ""
        parts.append(f"{key} {_display(before, 2)} ({sign}{_display(change, 2)})")
    return f"compared with {period.previous().label}: " + "  ".join(parts)


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


def _number(value: Any, digits: int) -> Decimal | int | None:
    """A non-money number as an exact short Decimal (``digits`` decimals at most) or an int."""
    if money.missing(value):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return int(value)
    d = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits))
    d = d.normalize() if d != 0 else Decimal(0)
    return int(d) if d == d.to_integral_value() else d


_ZERO = Decimal("0.000000")


def _money_value(value: Any) -> Decimal | None:
    """:func:`portfolio.money.exact`, with a fast path for the floats a frame holds."""
    if type(value) is float:
        if value != value:  # NaN
            return None
        amount = Decimal(repr(value)).quantize(money.MICRO, rounding=ROUND_HALF_EVEN)
        return amount if amount != 0 else _ZERO
    return money.exact(value)


def _other_value(value: Any) -> Any:
    plain = _plain(value)
    return _number(plain, 9) if isinstance(plain, float) else plain


def _converter(col: str) -> Any:
    if col in MONEY:
        return _money_value
    if col in HOURS or col in RATIOS or col in {"availability", "slo", "slo_availability"}:
        return lambda v: _number(v, 6)
    return _other_value


def exact_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as exact Python values: money Decimal (footed, see :data:`FOOTINGS`), hours and
    ratios short Decimals, whole numbers int, dates ISO text, missing None.

    Converted a column at a time (a report over 1,000 apps has hundreds of thousands of cells)."""
    columns, converted = _exact_columns(frame)
    if not columns:
        return [{} for _ in range(len(frame))]
    return [dict(zip(columns, values, strict=True)) for values in zip(*converted, strict=True)]


def _exact_columns(frame: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
    """:func:`exact_rows` a column at a time: the column names and each column's exact values,
    footed. Each footing runs over every row before the next (a later one may read a column an
    earlier one set, as it would row by row). A repeated column name stands for its last column
    (as in a row dict); callers read that one."""
    columns = [str(c) for c in frame.columns]
    converted = [[conv(v) for v in frame.iloc[:, i].tolist()] for i, conv in enumerate(map(_converter, columns))]
    at = {c: i for i, c in enumerate(columns)}  # a repeated name: its last column, as a row dict has it
    for col, (plus, minus) in FOOTINGS.items():
        if col not in at or not all(c in at for c in (*plus, *minus)):
            continue
        target = converted[at[col]]
        adds, subs = [converted[at[c]] for c in plus], [converted[at[c]] for c in minus]
        for r in range(len(target)):
            if all(isinstance(x[r], Decimal) for x in adds) and all(isinstance(x[r], Decimal) for x in subs):
                total = sum((x[r] for x in adds), Decimal(0)) - sum((x[r] for x in subs), Decimal(0))
                target[r] = total if total != 0 else _ZERO
    return columns, converted


def _text(column: str, value: Any) -> str:
    """One CSV cell: exact decimals, ``""`` for missing, JSON for dicts and lists."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return money.plain(value) if column in MONEY else f"{value:f}"
    if isinstance(value, dict | list):
        return json.dumps(_plain(value), sort_keys=True)
    return str(value)


def _money_text(column: str, value: Any) -> str:
    if isinstance(value, Decimal):
        return money.exact_text(value)
    return _text(column, value)


def to_csv(frame: pd.DataFrame) -> str:
    """CSV of exact values: money as exact decimals that foot, dates ISO, dicts as JSON, missing empty.

    Text cells that a spreadsheet would run as a formula (a ledger note ``=HYPERLINK(...)``, a ticket
    title ``@SUM(...)``) get a leading ``'`` (:func:`portfolio.safe.csv_cell`); numbers stay numbers.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = [str(c) for c in frame.columns]
    writer.writerow(columns)
    names, converted = _exact_columns(frame)  # money: exact Decimals (exact_rows)
    at = {c: i for i, c in enumerate(names)}
    cells = []
    for c in columns:  # a column at a time; a repeated name writes its last column's values, as before
        text = _money_text if c in MONEY else _text
        cells.append([safe.csv_cell(text(c, v)) for v in converted[at[c]]])
    writer.writerows(zip(*cells, strict=True) if cells else ([] for _ in range(len(frame))))
    return buffer.getvalue()


def to_json(frame: pd.DataFrame) -> str:
    """A JSON array of row objects: numbers written exactly (``2329329.91``), missing as null."""
    numbers: list[str] = []

    def encode(value: Any, column: str) -> Any:
        if isinstance(value, Decimal):
            numbers.append(money.plain(value) if column in MONEY else f"{value:f}")
            return f"\x00{len(numbers) - 1}\x00"
        return _plain(value)

    rows = [{k: encode(v, k) for k, v in row.items()} for row in exact_rows(frame)]
    text = json.dumps(rows, indent=2, allow_nan=False)
    # each placeholder string -> the bare exact number (NUL cannot occur in any other string: json escapes it)
    return re.sub(r'"\\u0000(\d+)\\u0000"', lambda m: numbers[int(m.group(1))], text)


def totals(frame: pd.DataFrame, columns: Iterable[str]) -> dict[str, Decimal]:
    """Column -> the exact sum of the (footed) rows: what a CSV of ``frame`` adds up to."""
    rows = exact_rows(frame)
    out = {}
    for c in columns:
        if c in frame.columns:
            out[c] = sum((r[c] for r in rows if isinstance(r[c], Decimal | int)), Decimal(0))
    return out


def _display(value: Any, decimals: int) -> str:
    """``1,234.57``: the exact value rounded for display only (never ``-0.00``)."""
    amount = money.exact(value) or Decimal(0)
    rounded = amount.quantize(Decimal(1).scaleb(-decimals))
    return f"{rounded if rounded != 0 else abs(rounded):,.{decimals}f}"


def _cell(column: str, value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if column in RATIOS and isinstance(value, int | float):
        return f"{value:.1%}"
    if column in MONEY and isinstance(value, int | float | Decimal):
        return _display(value, 2)
    if column in HOURS and isinstance(value, int | float | Decimal):
        return _display(value, 1)
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
    """``total: value 1,234.00  cost ...``: sums of the exact values, rounded only when written."""
    sums = totals(frame, [c for c in columns if c in MONEY or c in HOURS])
    return "total: " + "  ".join(f"{c} {_cell(c, v)}" for c, v in sums.items())


def render(frame: pd.DataFrame, kind: str, fmt: str) -> str:
    """The report ``kind`` in format ``fmt`` (table | csv | json)."""
    frame = ordered(frame, kind)
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "json":
        return to_json(frame) + "\n"
    text = to_table(frame, TABLE_COLUMNS[kind])
    if kind in ("pnl", "maintenance") and not frame.empty:
        keys = ["value", "value_hard", "value_soft", "cost", "net"] if kind == "pnl" else ["klo_hours", "people_cost"]
        text += "\n" + totals_line(frame, keys)
    return text + "\n"
