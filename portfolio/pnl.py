"""The P&L of every ML app: value against full cost (infra, vendor, other and people), per month.

Pure functions: a :class:`~portfolio.facts.Facts` and the config in, DataFrames out; no database,
no streamlit. The facts are read through :class:`portfolio.books.Books` (pass ``books=`` to share
one between calls; it holds every definition below). One definition of every number (DESIGN.md,
"Semantics"):

- value = Σ outcome amount × attribution (attribution clipped to 0..1, missing = 1); the low and
  high bounds likewise, a missing bound being the value itself;
- cost = infra + vendor + other + people, where people = maintenance hours × the team's loaded
  hourly rate (plus any cost record of category "people");
- net = value − cost; ROI = net / cost (NaN when cost is 0);
- run-rate = the trailing 3 *full* months × 4;
- unit economics: cost per 1,000 requests and value per request (usage metric "requests");
- cumulative net, payback month, lifetime ROI and NPV since launch (or since the first month with
  data, labelled so): :meth:`portfolio.books.Books.since_launch`.

Spend no app claims, and unregistered spend (its tag names no registered app), stays in the books
as the app ``"_unallocated"`` (team ``"_shared"``), so the columns always add up to the bill. Costs in a currency other than the configured one are left out
of every sum and listed by :func:`currency_issues` instead of being silently converted.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from portfolio import retirement
from portfolio.books import (
    INVENTORY_COLUMNS,
    RUN_RATE_FACTOR,
    RUN_RATE_MONTHS,
    SHARED_TEAM,
    SUM_COLUMNS,
    UNKNOWN_TEAM,
    Books,
    in_currency,
)
from portfolio.books import (
    MONTHLY_COLUMNS as _BOOKS_MONTHLY,
)
from portfolio.books import of as books_of
from portfolio.config import Config
from portfolio.facts import Facts, weights
from portfolio.frames import as_dates, by_app, empty_frame, flat, month_of, nan_to_none, ratio, to_ts
from portfolio.periods import Period, month_start
from portfolio.records import UNALLOCATED

#: hard value = experiment + observational evidence; soft value = estimate (shown apart in every total)
HARD_SOFT = ["value_hard", "value_soft"]
_AT = _BOOKS_MONTHLY.index("value_estimate") + 1
MONTHLY_COLUMNS = [*_BOOKS_MONTHLY[:_AT], *HARD_SOFT, *_BOOKS_MONTHLY[_AT:]]
APP_COLUMNS = [
    "app_id", "name", "team", "stage", "value_kind", "owner", "revenue_capture", "cost_avoidance", "value",
    "value_low", "value_high", "value_experiment", "value_observational", "value_estimate", "value_hard",
    "value_soft", "infra_cost",
    "vendor_cost", "other_cost", "people_cost", "maintenance_hours", "cost", "net", "roi", "requests",
    "cost_per_1k_requests", "value_per_request", "prev_value", "prev_cost", "prev_net", "net_change",
    "cumulative_net", "cumulative_since", "payback_month", "lifetime_roi", "npv", "run_rate_cost",
    "run_rate_value", "run_rate_net", "availability", "slo",
]  # fmt: skip
ROLLUP_SUMS = [
    "revenue_capture", "cost_avoidance", "value", "value_low", "value_high", "value_experiment",
    "value_observational", "value_estimate", "value_hard", "value_soft", "infra_cost", "vendor_cost", "other_cost", "people_cost",
    "maintenance_hours", "cost", "net", "requests", "prev_value", "prev_cost", "prev_net", "net_change",
    "cumulative_net", "npv", "run_rate_cost", "run_rate_value", "run_rate_net",
]  # fmt: skip
EVIDENCE_COLUMNS = ["team", "kind", "evidence", "value", "value_low", "value_high"]
RECONCILIATION_COLUMNS = [
    "source", "billing_period", "currency", "allocated", "unallocated", "unregistered", "recorded", "billed",
    "difference", "ok", "status",
]  # fmt: skip
CURRENCY_COLUMNS = ["source", "currency", "amount", "rows"]

__all__ = [
    "APP_COLUMNS", "CURRENCY_COLUMNS", "EVIDENCE_COLUMNS", "INVENTORY_COLUMNS", "MONTHLY_COLUMNS",
    "RECONCILIATION_COLUMNS", "ROLLUP_SUMS", "RUN_RATE_FACTOR", "RUN_RATE_MONTHS", "SHARED_TEAM", "SUM_COLUMNS",
    "UNKNOWN_TEAM", "Books", "app_pnl", "as_dates", "by_app", "currency_issues", "empty_frame", "flat", "inventory",
    "kpis", "month_of", "monthly_pnl", "net_range", "reconciliation", "rollup", "run_rate", "to_ts",
    "value_by_evidence",
]  # fmt: skip


def _books(facts: Facts, cfg: Config, books: Books | None) -> Books:
    """The caller's books (they must be of these facts and config), else new ones."""
    return books if books is not None else books_of(facts, cfg)


def inventory(facts: Facts, cfg: Config, books: Books | None = None) -> pd.DataFrame:
    """Every app (see :meth:`portfolio.books.Books.inventory`)."""
    return _books(facts, cfg, books).inventory()


def monthly_pnl(facts: Facts, cfg: Config, books: Books | None = None) -> pd.DataFrame:
    """Each app's P&L per calendar month: the trend behind every other view.

    One row per ``app_id`` and ``month`` (a ``date``, the 1st) for every month in which the app has
    any fact, up to the month of the last complete day (facts after it are ignored). Spend no app
    claims, and spend naming no registered app, is the row ``app_id = "_unallocated"``, team ``"_shared"``.

    Columns: app_id, month, team, revenue_capture, cost_avoidance, value, value_low, value_high,
    value_experiment, value_observational, value_estimate, value_hard (experiment + observational),
    value_soft (estimate), infra_cost, vendor_cost, other_cost (vendor + "other" category), people_cost (maintenance hours × team rate + "people" spend),
    maintenance_hours, cost (= infra_cost + other_cost + people_cost), net, roi (NaN when cost is 0),
    requests.
    """
    frame = _hard_soft(_books(facts, cfg, books).monthly().copy())
    frame["month"] = as_dates(frame["month"]) if not frame.empty else frame["month"].astype("object")
    return frame[MONTHLY_COLUMNS]


def _hard_soft(frame: pd.DataFrame) -> pd.DataFrame:
    """value_hard (experiment + observational) and value_soft (estimate) beside the evidence columns."""
    frame["value_hard"] = frame["value_experiment"] + frame["value_observational"]
    frame["value_soft"] = frame["value_estimate"]
    return frame


def run_rate(books: Books, end: date, cols: list[str]) -> pd.DataFrame:
    """Trailing 3 full months (ending on or before ``end``) × 4, per app."""
    return books.run_rate(end, cols)


# ---------------------------------------------------------------------------------------------
# per-app P&L over a period


def _availability(books: Books, period: Period, end: date) -> pd.Series:
    up = books.uptime(end)
    up = up[(up["ts"] >= pd.Timestamp(period.start)) & up["availability"].notna()]
    # the mean over the days: a monthly aggregate row weighs as many days as it covers
    weighted = (up["availability"] * up["days"]).groupby(up["app_id"], observed=True).sum()
    days = up["days"].groupby(up["app_id"], observed=True).sum()
    return by_app(weighted / days.where(days > 0))


def app_pnl(
    facts: Facts, cfg: Config, period: Period, team: str | None = None, books: Books | None = None
) -> pd.DataFrame:
    """Which apps earn their keep over ``period``, against the period before it.

    One row per app of the inventory (retired apps only when they have facts in either period),
    plus ``"_unallocated"`` when shared or unregistered spend exists in the period. ``team``
    filters on the app's team (the shared row belongs to team ``"_shared"``).

    Columns: app_id, name, team, stage, value_kind, owner, revenue_capture, cost_avoidance, value,
    value_low, value_high, value_experiment, value_observational, value_estimate, infra_cost,
    vendor_cost, other_cost, people_cost, maintenance_hours, cost, net, roi, requests,
    cost_per_1k_requests, value_per_request, prev_value, prev_cost, prev_net, net_change (net −
    prev_net); as of the period end (:meth:`portfolio.books.Books.since_launch`): cumulative_net,
    cumulative_since (``"launch"`` or the ``YYYY-MM`` it counts from), payback_month (None unless
    counted from launch), lifetime_roi, npv; run_rate_cost, run_rate_value, run_rate_net (trailing
    3 full months × 4 as of the period end), availability (mean daily, NaN without uptime data), slo.
    """
    b = _books(facts, cfg, books)
    end = min(period.end, facts.last_complete_day)
    if end < period.start:
        return empty_frame(APP_COLUMNS)
    prev = period.previous()
    apps = b.inventory()
    now = b.sum_between(period.start, end, SUM_COLUMNS)
    # the previous period from the same monthly frame (cut at this period's end): built once
    before = b.sum_months(month_start(prev.start), month_start(prev.end), ["value", "cost", "net"], cut=end)
    rr = b.run_rate(end, ["cost", "value", "net"])
    since = b.since_launch(end).set_index("app_id")
    avail = _availability(b, period, end)

    frame = apps.set_index("app_id")
    frame = frame.join(now, how="left")
    frame = frame.join(before.add_prefix("prev_"), how="left")
    frame = frame.join(rr.add_prefix("run_rate_"), how="left")
    numeric = SUM_COLUMNS + ["prev_value", "prev_cost", "prev_net", "run_rate_cost", "run_rate_value", "run_rate_net"]
    active = frame[numeric].notna().any(axis=1)
    frame[numeric] = frame[numeric].fillna(0.0)
    frame["cumulative_net"] = since["cumulative_net"].reindex(frame.index).astype("float64").fillna(0.0)
    frame["npv"] = since["npv"].reindex(frame.index).astype("float64").fillna(0.0)
    frame["lifetime_roi"] = since["lifetime_roi"].reindex(frame.index).astype("float64")
    frame["cumulative_since"] = nan_to_none(since["cumulative_since"].reindex(frame.index))
    frame["payback_month"] = nan_to_none(since["payback_month"].reindex(frame.index))
    frame["availability"] = avail.reindex(frame.index)
    frame = frame.reset_index()
    keep = frame["stage"].ne("retired") | active.to_numpy()
    is_shared = frame["app_id"] == UNALLOCATED
    keep &= ~is_shared | (frame["cost"].abs() > 0)
    if team is not None:
        keep &= frame["team"] == team
    frame = frame[keep].copy()
    frame["roi"] = ratio(frame["net"], frame["cost"])
    frame["cost_per_1k_requests"] = ratio(frame["cost"] * 1000.0, frame["requests"])
    frame["value_per_request"] = ratio(frame["value"], frame["requests"])
    frame["net_change"] = frame["net"] - frame["prev_net"]
    frame["slo"] = frame["slo_availability"]
    frame = _hard_soft(frame)
    if frame.empty:
        return empty_frame(APP_COLUMNS)
    return frame[APP_COLUMNS].sort_values(["net", "app_id"], ascending=[False, True]).reset_index(drop=True)


def kpis(
    facts: Facts, cfg: Config, period: Period, team: str | None = None, books: Books | None = None
) -> dict[str, Any]:
    """The portfolio's headline numbers over ``period`` and the previous one (KPI row of the overview).

    Keys: value, hard_value (experiment + observational), soft_value (estimate), cost, net, roi, apps (non-retired apps, not counting ``_unallocated``), candidates
    (apps with active, i.e. not snoozed, retirement findings), prev_value, prev_cost, prev_net, prev_roi.
    """
    b = _books(facts, cfg, books)
    frame = app_pnl(facts, cfg, period, team, books=b)
    value, cost = float(frame["value"].sum()), float(frame["cost"].sum())
    hard = float(frame["value_hard"].sum()) if not frame.empty else 0.0
    prev_value, prev_cost = float(frame["prev_value"].sum()), float(frame["prev_cost"].sum())
    apps = b.inventory()
    apps = apps[(apps["app_id"] != UNALLOCATED) & (apps["stage"] != "retired")]
    if team is not None:
        apps = apps[apps["team"] == team]
    cands = retirement.candidates(retirement.retirement_findings(facts, cfg, books=b))
    if team is not None:
        cands = cands[cands["team"] == team]
    return {
        "value": value,
        "hard_value": hard,
        "soft_value": value - hard,
        "cost": cost,
        "net": value - cost,
        "roi": (value - cost) / cost if cost else float("nan"),
        "apps": len(apps),
        "candidates": int(cands["app_id"].nunique()),
        "prev_value": prev_value,
        "prev_cost": prev_cost,
        "prev_net": prev_value - prev_cost,
        "prev_roi": (prev_value - prev_cost) / prev_cost if prev_cost else float("nan"),
    }


def rollup(app_frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Sum an :func:`app_pnl` frame by ``"team"`` or ``"value_kind"`` (ROI recomputed, not averaged).

    Columns: <by>, apps (how many rows), the money columns of app_pnl (see ``ROLLUP_SUMS``), roi, prev_roi.
    """
    if by not in ("team", "value_kind"):
        raise ValueError(f"rollup by {by!r}: expected 'team' or 'value_kind'")
    columns = [by, "apps", *ROLLUP_SUMS, "roi", "prev_roi"]
    if app_frame.empty:
        return empty_frame(columns)
    sums = [c for c in ROLLUP_SUMS if c in app_frame.columns]
    out = app_frame.groupby(by, as_index=False, dropna=False).agg(apps=("app_id", "size"), **{c: (c, "sum") for c in sums})
    out["roi"] = ratio(out["net"], out["cost"])
    out["prev_roi"] = ratio(out["prev_net"], out["prev_cost"]) if "prev_net" in out else np.nan
    return out.reindex(columns=columns).sort_values("net", ascending=False).reset_index(drop=True)


def value_by_evidence(
    facts: Facts, cfg: Config, period: Period, team: str | None = None, books: Books | None = None
) -> pd.DataFrame:
    """How much of the claimed value is hard (experiment) vs soft (estimate), by team and kind.

    The finance partner's question: what evidence backs each value claim. Columns: team, kind,
    evidence, value, value_low, value_high (attribution applied).
    """
    end = min(period.end, facts.last_complete_day)
    b = _books(facts, cfg, books)
    out = b.outcomes(end)
    out = out[out["month"] >= pd.Timestamp(period.start)] if not out.empty else out
    if out.empty:
        return empty_frame(EVIDENCE_COLUMNS)
    out = out.assign(team=out["app_id"].map(b.inventory().set_index("app_id")["team"]))
    if team is not None:
        out = out[out["team"] == team]
        if out.empty:
            return empty_frame(EVIDENCE_COLUMNS)
    grouped = out.groupby(["team", "kind", "evidence"], as_index=False)[["value", "value_low", "value_high"]].sum()
    return grouped[EVIDENCE_COLUMNS].reset_index(drop=True)


def net_range(
    facts: Facts, cfg: Config, period: Period, team: str | None = None, books: Books | None = None
) -> dict[str, float]:
    """The portfolio net with the value bounds: {net, net_low, net_high} (cost taken as known)."""
    frame = app_pnl(facts, cfg, period, team, books=books)
    cost = float(frame["cost"].sum())
    return {
        "net": float(frame["value"].sum()) - cost,
        "net_low": float(frame["value_low"].sum()) - cost,
        "net_high": float(frame["value_high"].sum()) - cost,
    }


# ---------------------------------------------------------------------------------------------
# reconciliation and currency


def reconciliation(facts: Facts, cfg: Config | None = None, books: Books | None = None) -> pd.DataFrame:
    """Does what we allocated (plus what nobody claimed) add up to the bill, to the cent?

    One row per cost source, billing period (``YYYY-MM``; rows without one use the month of their
    day) and currency. Columns: source, billing_period, currency, allocated (spend of registered
    apps), unallocated (spend no app claims, unregistered spend included), unregistered (the part
    of unallocated whose tag names no registered app), recorded (allocated + unallocated), billed (the bill's own total, NaN when the source records none),
    difference (recorded − billed, rounded to cents), ok (``abs(difference) < 0.005``; None without
    a bill total), status ("ok", "mismatch" or "no bill total"). Estimated cost rows (an LLM
    gateway's price-table estimates) are left out: they are compared with the bill (see
    :func:`portfolio.genai.drift`), never added to it.
    """
    c = facts.costs
    if not c.empty and "estimated" in c.columns:
        c = c[~c["estimated"].fillna(False).astype(bool)]  # a gateway's estimate is no line of any bill
    b = facts.billing_totals
    keys = ["source", "billing_period", "currency"]
    if c.empty and b.empty:
        return empty_frame(RECONCILIATION_COLUMNS)
    if not c.empty:
        period = c["billing_period"].to_numpy(dtype=object).copy()
        missing = pd.isna(period) | (period == "")
        if missing.any():  # format each month once, not each row
            months = month_of(to_ts(c["day"][missing]))
            codes, uniques = pd.factorize(months)
            labels = np.array([pd.Timestamp(u).strftime("%Y-%m") for u in uniques] + [""], dtype=object)
            period[missing] = labels[codes]
        amount = pd.to_numeric(c["amount"], errors="coerce").fillna(0.0).to_numpy()
        registered = _books(facts, cfg or Config(), books).known_mask(c["app_id"])
        unregistered = ~registered
        shared = (c["app_id"] == UNALLOCATED).to_numpy() | unregistered
        rec = pd.DataFrame(
            {
                "source": c["source"].fillna("").to_numpy(dtype=object),
                "billing_period": period,
                "currency": c["currency"].fillna("").to_numpy(dtype=object),
                "allocated": np.where(shared, 0.0, amount),
                "unallocated": np.where(shared, amount, 0.0),
                "unregistered": np.where(unregistered, amount, 0.0),
            }
        )
        rec = rec.groupby(keys, as_index=False)[["allocated", "unallocated", "unregistered"]].sum()
    else:
        rec = pd.DataFrame({k: pd.Series(dtype="object") for k in keys} | {"allocated": [], "unallocated": [], "unregistered": []})
    if not b.empty:
        bills = pd.DataFrame(
            {"source": b["source"].astype(str), "billing_period": b["billing_period"].astype(str),
             "currency": b["currency"].fillna("").astype(str), "billed": pd.to_numeric(b["total"], errors="coerce")}
        ).groupby(keys)["billed"].sum().reset_index()  # fmt: skip
    else:
        bills = _empty_bills(keys)
    out = rec.merge(bills, on=keys, how="outer")
    out[["allocated", "unallocated", "unregistered"]] = out[["allocated", "unallocated", "unregistered"]].fillna(0.0)
    out["recorded"] = out["allocated"] + out["unallocated"]
    out["difference"] = (out["recorded"] - out["billed"]).round(2)
    has_bill = out["billed"].notna()
    ok = (out["recorded"] - out["billed"]).abs() < 0.005
    out["ok"] = pd.Series([bool(x) if h else None for x, h in zip(ok, has_bill, strict=True)], index=out.index, dtype="object")
    out["status"] = np.where(~has_bill, "no bill total", np.where(ok, "ok", "mismatch"))
    return out[RECONCILIATION_COLUMNS].sort_values(keys).reset_index(drop=True)


def _empty_bills(keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(dtype="object") for k in keys} | {"billed": pd.Series(dtype="float64")})


def currency_issues(facts: Facts, cfg: Config) -> pd.DataFrame:
    """Costs (and outcomes) in a currency other than the reporting one: left out of every sum.

    Nothing is converted silently; this lists what was left out so a person can fix the source.
    Columns: source, currency, amount, rows.
    """
    frames = []
    for frame in (facts.costs, facts.outcomes):
        if frame.empty:
            continue
        odd = frame[~in_currency(frame, cfg)]
        if not odd.empty:
            frames.append(
                pd.DataFrame({"source": odd["source"].astype(str), "currency": odd["currency"].astype(str),
                              "amount": pd.to_numeric(odd["amount"], errors="coerce").fillna(0.0),
                              "rows": weights(odd)})
            )  # fmt: skip
    if not frames:
        return empty_frame(CURRENCY_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    out = rows.groupby(["source", "currency"], as_index=False).agg(amount=("amount", "sum"), rows=("rows", "sum"))
    out["rows"] = out["rows"].astype("int64")
    return out[CURRENCY_COLUMNS]
