"""Dashboard-only shapes of the facts: slices of one app, period sums, sparklines, upload parsing.

Pure functions (frames in, frames out; no Streamlit, no database), so the pages stay linear and
these are testable. The numbers themselves (value, cost, net, ...) always come from
:mod:`portfolio.pnl`; here they are only filtered and summed for display.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from portfolio import precedence
from portfolio.config import Config
from portfolio.facts import Facts
from portfolio.periods import Period, month_start, within
from portfolio.records import UNALLOCATED

MONEY = ["value", "cost", "net"]


def _days(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.date


def _in_period(frame: pd.DataFrame, column: str, period: Period) -> pd.DataFrame:
    return within(frame, column, period.start, period.end)


def apps(facts: Facts) -> pd.DataFrame:
    """The inventory, sorted by name: app_id, name, team, owner, stage, value_kind, ..."""
    frame = facts.apps.copy()
    if frame.empty:
        return frame
    frame["name"] = frame["name"].fillna(frame["app_id"])
    return frame.sort_values(["name", "app_id"]).reset_index(drop=True)


def teams(facts: Facts, cfg: Config) -> list[str]:
    """Teams named in the config or in the inventory, sorted."""
    found = set(cfg.teams) | {str(t) for t in facts.apps.get("team", pd.Series(dtype=str)).dropna()}
    return sorted(found)


def portfolio_monthly(monthly: pd.DataFrame, period: Period, team: str | None) -> pd.DataFrame:
    """Monthly value, cost, net summed over apps (of ``team``) inside ``period``.

    ``monthly`` is :func:`portfolio.pnl.monthly_pnl`.
    """
    cols = ["month", *MONEY]
    if monthly.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    frame = monthly
    if team:
        frame = frame[frame["team"] == team]
    months = _days(frame["month"])
    frame = frame[(months >= month_start(period.start)) & (months <= period.end)]
    out = frame.groupby("month", as_index=False)[MONEY].sum()
    return out.sort_values("month").reset_index(drop=True)


def _with_money(monthly: pd.DataFrame) -> pd.DataFrame:
    """Rows with any value or cost (uptime alone does not make a month "have data")."""
    return monthly[(monthly["value"] != 0) | (monthly["cost"] != 0)]


def data_months(monthly: pd.DataFrame) -> list[str]:
    """``YYYY-MM`` of the months in which any app has value or cost, oldest first.

    ``monthly`` is :func:`portfolio.pnl.monthly_pnl`.
    """
    if monthly.empty:
        return []
    return sorted({f"{m:%Y-%m}" for m in _days(_with_money(monthly)["month"])})


def has_data(monthly: pd.DataFrame, period: Period, team: str | None = None) -> bool:
    """Whether any app (of ``team``) has value or cost in one of ``period``'s months.

    An empty period says so on the page instead of showing $0 tiles (and a "+$0" change).
    """
    if monthly.empty:
        return False
    frame = _with_money(monthly)
    if team:
        frame = frame[frame["team"] == team]
    return bool(_days(frame["month"]).isin(period.months).any())


def sparklines(monthly: pd.DataFrame, period: Period) -> dict[str, list[float]]:
    """Per app, its monthly net over the period's months (0 for a month without facts)."""
    if monthly.empty:
        return {}
    months = period.months
    frame = monthly.assign(month=_days(monthly["month"]))
    frame = frame[frame["month"].isin(months)]
    pivot = frame.pivot_table(index="app_id", columns="month", values="net", aggfunc="sum", fill_value=0.0)
    pivot = pivot.reindex(columns=months, fill_value=0.0)
    return {str(app): [round(float(v), 2) for v in row] for app, row in pivot.iterrows()}


@dataclass
class AppView:
    """Everything the App page shows about one app besides its P&L rows."""

    costs: pd.DataFrame  # month, category, service, amount
    usage: pd.DataFrame  # day, metric, value
    uptime: pd.DataFrame  # month, availability, days
    outcomes: pd.DataFrame  # month, kind, amount, attribution, value, evidence, low, high, note, source, counts
    tickets: pd.DataFrame  # day, ref, kind, hours, incidents, ttr_hours, title, url, source
    info: dict[str, object] = field(default_factory=dict)


def app_view(facts: Facts, cfg: Config, app_id: str, period: Period) -> AppView:
    """The facts of one app inside ``period`` (costs in the reporting currency only)."""
    costs = facts.costs[(facts.costs["app_id"] == app_id)] if not facts.costs.empty else facts.costs
    costs = _in_period(costs, "day", period)
    if not costs.empty:
        costs = costs[costs["currency"].fillna(cfg.currency) == cfg.currency]
    cost_frame = (
        costs.assign(month=_days(costs["day"]).map(month_start))
        .groupby(["month", "category", "service"], as_index=False)["amount"]
        .sum()
        if not costs.empty
        else pd.DataFrame(columns=["month", "category", "service", "amount"])
    )

    usage = facts.usage[facts.usage["app_id"] == app_id] if not facts.usage.empty else facts.usage
    if "model" in usage.columns:  # tokens and calls per model have the Tokens section (their scale is another)
        usage = usage[usage["model"].fillna("") == ""]
    usage = _in_period(usage, "day", period)
    usage_frame = (
        usage.groupby(["day", "metric"], as_index=False)["value"].sum()
        if not usage.empty
        else pd.DataFrame(columns=["day", "metric", "value"])
    )

    uptime = facts.uptime[facts.uptime["app_id"] == app_id] if not facts.uptime.empty else facts.uptime
    uptime = _in_period(uptime, "day", period)
    uptime_frame = (
        uptime.assign(month=_days(uptime["day"]).map(month_start))
        .groupby("month", as_index=False)
        .agg(availability=("availability", "mean"), days=("day", "nunique"))
        if not uptime.empty
        else pd.DataFrame(columns=["month", "availability", "days"])
    )

    outcomes = facts.outcomes[facts.outcomes["app_id"] == app_id] if not facts.outcomes.empty else facts.outcomes
    outcomes = _in_period(outcomes, "month", Period(month_start(period.start), period.end))
    out_cols = ["month", "kind", "amount", "attribution", "value", "evidence", "low", "high", "note", "source", "counts"]
    if outcomes.empty:
        outcome_frame = pd.DataFrame(columns=out_cols)
    else:
        counted = precedence.counted(outcomes, precedence.order_of(cfg))  # False: another source's figure counts
        outcome_frame = outcomes.assign(
            value=outcomes["amount"] * outcomes["attribution"].fillna(1.0), counts=outcomes.index.isin(counted.index)
        )
        outcome_frame = outcome_frame[out_cols].sort_values(["month", "kind"], ascending=[False, True])

    tickets = facts.maintenance[facts.maintenance["app_id"] == app_id] if not facts.maintenance.empty else facts.maintenance
    tickets = _in_period(tickets, "day", period)
    t_cols = ["day", "ref", "kind", "hours", "incidents", "ttr_hours", "title", "url", "source"]
    ticket_frame = (
        tickets[t_cols].sort_values("day", ascending=False) if not tickets.empty else pd.DataFrame(columns=t_cols)
    )

    info: dict[str, object] = {}
    row = facts.apps[facts.apps["app_id"] == app_id] if not facts.apps.empty else facts.apps
    if not row.empty:
        info = {str(k): _scalar(v) for k, v in row.iloc[0].to_dict().items()}
    elif app_id == UNALLOCATED:
        info = {"app_id": app_id, "name": "Unallocated (shared) spend", "team": "_shared"}
    return AppView(
        costs=pd.DataFrame(cost_frame).reset_index(drop=True),
        usage=pd.DataFrame(usage_frame).reset_index(drop=True),
        uptime=uptime_frame.reset_index(drop=True),
        outcomes=outcome_frame.reset_index(drop=True),
        tickets=ticket_frame.reset_index(drop=True),
        info=info,
    )


def _scalar(value: object) -> object:
    """None for a missing cell (None, NaN, NaT), the value otherwise."""
    try:
        return None if pd.isna(value) else value  # type: ignore[call-overload]
    except (TypeError, ValueError):  # list-likes are not missing
        return value


def sync_history(facts: Facts, limit: int = 50) -> pd.DataFrame:
    """The latest sync runs, newest first."""
    cols = ["connector", "connector_type", "started", "finished", "status", "rows_written", "rows_deleted", "error"]
    runs = facts.runs
    if runs.empty:
        return pd.DataFrame(columns=cols)
    return runs.sort_values("started", ascending=False).head(limit)[cols].reset_index(drop=True)


def to_csv(frame: pd.DataFrame) -> bytes:
    """The bytes of a download button: the frame's rows as the CLI writes them (exact decimal
    amounts that foot, :func:`portfolio.report.to_csv`), no index."""
    from portfolio import report

    return report.to_csv(frame).encode("utf-8")


def csv_later(frame: pd.DataFrame) -> Callable[[], bytes]:
    """:func:`to_csv` of ``frame`` as a callable for ``st.download_button``: Streamlit runs it when
    the button is pressed (in that request), not on every run of the page. At 1,000 apps the exact
    CSV of a page's main table takes about half a second, paid on each filter change before."""
    kept = frame.copy()
    return lambda: to_csv(kept)


def clean_for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells Streamlit's Arrow conversion cannot take (dicts, lists) become text."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, dict | list | set)).any():
            out[col] = out[col].map(lambda v: _text(v))
    return out


def _text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, list | set):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def incidents_by_month(monthly: pd.DataFrame, period: Period, team: str | None) -> pd.DataFrame:
    """Incidents and incident-weighted MTTR per month of ``period``.

    ``monthly`` is :func:`portfolio.maintenance.maintenance_monthly`.
    """
    cols = ["month", "incidents", "mttr_hours"]
    if monthly.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    frame = monthly if not team else monthly[monthly["team"] == team]
    months = _days(frame["month"])
    frame = frame[(months >= month_start(period.start)) & (months <= period.end)]
    frame = frame.assign(weighted=frame["mttr_hours"].fillna(0.0) * frame["incidents"])
    out = frame.groupby("month", as_index=False).agg(incidents=("incidents", "sum"), weighted=("weighted", "sum"))
    out["mttr_hours"] = out["weighted"] / out["incidents"].where(out["incidents"] > 0)
    return out[cols].sort_values("month").reset_index(drop=True)


def overall_mttr(by_month: pd.DataFrame) -> float:
    """Incident-weighted mean time to restore over the months of ``by_month`` (NaN without incidents)."""
    n = float(by_month["incidents"].sum()) if not by_month.empty else 0.0
    if n == 0:
        return float("nan")
    return float((by_month["mttr_hours"].fillna(0.0) * by_month["incidents"]).sum() / n)


def quarters(today: date, count: int = 8) -> list[str]:
    """The latest ``count`` quarters that have started by the last complete day, newest first ("2026Q3").

    The first may be in progress: :func:`portfolio.review.last_complete_quarter` is the default pick.
    """
    last = today - timedelta(days=1)
    year, q = last.year, (last.month - 1) // 3 + 1
    out = []
    for _ in range(count):
        out.append(f"{year}Q{q}")
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return out


# ---- many apps: top N and "all others", labels keyed by app id, search, paging ----------------

#: how many apps (or teams) a chart shows by name; the rest are one "all others" mark
TOP_N = 15
OTHERS_ID = "_others"


def app_labels(frame: pd.DataFrame) -> pd.Series:
    """A display label per row that is unique per ``app_id``: the name, with the id where names repeat.

    Charts group by what they plot on an axis: two apps named alike must stay two bars (an app is
    its id, never its name), so a name shared by several ids is written ``name (id)``.
    """
    if frame.empty:
        return pd.Series(dtype="object", index=frame.index)
    ids = frame["app_id"].astype(str)
    names = frame["name"].where(frame["name"].notna() & (frame["name"].astype(str) != ""), ids).astype(str)
    labels = names.where(~names.duplicated(keep=False), names + " (" + ids + ")")
    # an app literally named "Churn (b)" next to two "Churn" apps, one of them id "b": only ids are unique
    clash = labels.duplicated(keep=False)
    return labels.where(~clash, names + " (" + ids + ")")


def top_and_others(
    frame: pd.DataFrame,
    by: str,
    sums: list[str],
    n: int = TOP_N,
    key: str = "app_id",
    label: str = "name",
    noun: str = "apps",
    absolute: bool = False,
) -> pd.DataFrame:
    """The ``n`` rows largest in ``by`` (by magnitude when ``absolute``), then one row for all the others.

    The others' row has ``key`` = ``_others``, ``label`` = "All others (K apps)" and the sum of each
    ``sums`` column over the rows it stands for, so every column in ``sums`` totals exactly what the
    whole frame totals (other columns are left empty on it). ``others`` (a column added to every
    row) says how many rows the row stands for: 1, or K. Fewer than ``n`` + 1 rows: the frame as it is.
    """
    out = frame.copy()
    if out.empty:
        return out.assign(others=pd.Series(dtype="int64"))
    rank = out[by].abs() if absolute else out[by]
    out = out.assign(_rank=rank.fillna(float("-inf"))).sort_values(["_rank", key], ascending=[False, True])
    out = out.drop(columns="_rank").assign(others=1)
    if len(out) <= n + 1:  # one "others" row standing for one app hides nothing
        return out.reset_index(drop=True)
    head, rest = out.iloc[:n], out.iloc[n:]
    row: dict[str, object] = {c: None for c in out.columns}
    row.update({c: rest[c].sum() for c in sums})
    row.update({key: OTHERS_ID, label: f"All others ({len(rest):,} {noun})", "others": len(rest)})
    return pd.concat([head, pd.DataFrame([row], columns=out.columns)], ignore_index=True)


def search(frame: pd.DataFrame, query: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The rows in which any of ``columns`` (default: every text column) contains ``query``.

    Case-insensitive plain text (no regular expression: a name such as ``c++`` is a literal); an
    empty query keeps every row.
    """
    words = str(query or "").strip().lower().split()
    if not words or frame.empty:
        return frame
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    text = pd.Series("", index=frame.index)
    for col in cols:
        text = text + " " + frame[col].map(lambda v: "" if v is None else str(v)).str.lower()
    keep = pd.Series(True, index=frame.index)
    for word in words:  # every word somewhere in the row: "search churn" finds the search team's churn app
        keep &= text.str.contains(word, regex=False)
    return frame[keep]


def sort_rows(frame: pd.DataFrame, column: str | None, descending: bool) -> pd.DataFrame:
    """``frame`` ordered by ``column`` (missing values last), stable for ties; as it is without one."""
    if not column or column not in frame.columns or frame.empty:
        return frame
    return frame.sort_values(column, ascending=not descending, na_position="last", kind="stable")


def page_of(frame: pd.DataFrame, page: int, size: int) -> tuple[pd.DataFrame, int]:
    """The rows of page ``page`` (1-based, clamped to the pages there are) and the number of pages."""
    pages = max(1, -(-len(frame) // size))
    page = min(max(1, int(page)), pages)
    return frame.iloc[(page - 1) * size : page * size], pages
