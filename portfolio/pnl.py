"""The P&L of every ML app: value against full cost (infra, vendor, other and people), per month.

Pure functions: a :class:`~portfolio.facts.Facts` and the config in, DataFrames out; no database,
no streamlit. One definition of every number (DESIGN.md, "Semantics"):

- value = Σ outcome amount × attribution (attribution clipped to 0..1, missing = 1); the low and
  high bounds likewise, a missing bound being the value itself;
- cost = infra + vendor + other + people, where people = maintenance hours × the team's loaded
  hourly rate (plus any cost record of category "people");
- net = value − cost; ROI = net / cost (NaN when cost is 0);
- run-rate = the trailing 3 *full* months × 4;
- unit economics: cost per 1,000 requests and value per request (usage metric "requests").

Spend no app claims stays in the books as the app ``"_unallocated"`` (team ``"_shared"``), so the
columns always add up to the bill. Costs in a currency other than the configured one are left out
of every sum and listed by :func:`currency_issues` instead of being silently converted.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from portfolio import precedence
from portfolio.config import Config
from portfolio.facts import Facts
from portfolio.periods import Period, full_months, month_start
from portfolio.records import UNALLOCATED

SHARED_TEAM = "_shared"
UNKNOWN_TEAM = "_unknown"
RUN_RATE_MONTHS = 3
RUN_RATE_FACTOR = 12 / RUN_RATE_MONTHS

MONTHLY_COLUMNS = [
    "app_id", "month", "team", "revenue_capture", "cost_avoidance", "value", "value_low", "value_high",
    "value_experiment", "value_observational", "value_estimate", "infra_cost", "vendor_cost", "other_cost",
    "people_cost", "maintenance_hours", "cost", "net", "roi", "requests",
]  # fmt: skip
#: the additive columns of a monthly row (everything but keys, team and roi)
SUM_COLUMNS = [c for c in MONTHLY_COLUMNS[3:] if c != "roi"]

APP_COLUMNS = [
    "app_id", "name", "team", "stage", "value_kind", "owner", "revenue_capture", "cost_avoidance", "value",
    "value_low", "value_high", "value_experiment", "value_observational", "value_estimate", "infra_cost",
    "vendor_cost", "other_cost", "people_cost", "maintenance_hours", "cost", "net", "roi", "requests",
    "cost_per_1k_requests", "value_per_request", "prev_value", "prev_cost", "prev_net", "net_change",
    "cumulative_net", "payback_month", "run_rate_cost", "run_rate_value", "run_rate_net", "availability", "slo",
]  # fmt: skip
ROLLUP_SUMS = [
    "revenue_capture", "cost_avoidance", "value", "value_low", "value_high", "value_experiment",
    "value_observational", "value_estimate", "infra_cost", "vendor_cost", "other_cost", "people_cost",
    "maintenance_hours", "cost", "net", "requests", "prev_value", "prev_cost", "prev_net", "net_change",
    "cumulative_net", "run_rate_cost", "run_rate_value", "run_rate_net",
]  # fmt: skip
INVENTORY_COLUMNS = [
    "app_id", "name", "team", "owner", "sponsor", "stage", "value_kind", "launched", "slo_availability",
    "review_every_days",
]  # fmt: skip
EVIDENCE_COLUMNS = ["team", "kind", "evidence", "value", "value_low", "value_high"]
RECONCILIATION_COLUMNS = [
    "source", "billing_period", "currency", "allocated", "unallocated", "recorded", "billed", "difference",
    "ok", "status",
]  # fmt: skip
CURRENCY_COLUMNS = ["source", "currency", "amount", "rows"]

_EVIDENCE = ("experiment", "observational", "estimate")


# ---------------------------------------------------------------------------------------------
# small frame helpers shared by the domain modules


_OBJECT_COLUMNS = {
    "app_id", "month", "team", "name", "stage", "value_kind", "owner", "sponsor", "launched", "payback_month",
    "source", "billing_period", "currency", "ok", "status", "kind", "evidence", "rule", "reason", "numbers",
    "snoozed_until", "rules", "reasons", "recommendation", "connector", "type", "description", "last_run",
    "error", "last_success", "last_cost_day", "last_usage_day", "last_uptime_day", "last_outcome_month",
    "last_maintenance_day", "stale", "id", "decided_at", "decision", "decided_by", "rationale", "next_review",
}  # fmt: skip


def empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c not in _OBJECT_COLUMNS else "object") for c in columns})


def to_ts(values: pd.Series) -> pd.Series:
    """Days (``date``, strings or datetimes) as naive datetime64 (vectorised)."""
    out = pd.to_datetime(values, errors="coerce")
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def month_of(ts: pd.Series) -> pd.Series:
    """The first day of each timestamp's month, as datetime64."""
    return pd.Series(ts.to_numpy().astype("datetime64[M]").astype("datetime64[ns]"), index=ts.index)


def as_dates(ts: pd.Series) -> pd.Series:
    """datetime64 -> python ``date`` objects (None for NaT): the DataFrame edge for days."""
    out = ts.dt.date.astype("object")
    return out.where(ts.notna(), None)


def _ts(d: date) -> pd.Timestamp:
    return pd.Timestamp(d)


def inventory(facts: Facts, cfg: Config, extra_ids: Any = ()) -> pd.DataFrame:
    """Every app: the App table, then apps declared only in the config, then ``_unallocated``
    and any app id met in the facts but missing from both (team ``"_unknown"``: money is never dropped).
    """
    apps = facts.apps.copy()
    for col in INVENTORY_COLUMNS:
        if col not in apps.columns:
            apps[col] = None
    apps = apps[INVENTORY_COLUMNS]
    known = set(apps["app_id"])
    rows: list[dict[str, Any]] = []
    for a in cfg.apps:
        if a.id not in known:
            rows.append(
                {
                    "app_id": a.id, "name": a.name or a.id, "team": a.team, "owner": a.owner, "sponsor": a.sponsor,
                    "stage": a.stage, "value_kind": a.value_kind, "launched": a.launched,
                    "slo_availability": a.slo_availability, "review_every_days": a.review_every_days,
                }
            )  # fmt: skip
            known.add(a.id)
    if UNALLOCATED not in known:
        rows.append(
            {
                "app_id": UNALLOCATED, "name": "Unallocated (shared) spend", "team": SHARED_TEAM, "owner": None,
                "sponsor": None, "stage": "production", "value_kind": SHARED_TEAM, "launched": None,
                "slo_availability": np.nan, "review_every_days": np.nan,
            }
        )  # fmt: skip
        known.add(UNALLOCATED)
    for app_id in sorted({str(x) for x in extra_ids if x is not None} - known):
        rows.append(
            {
                "app_id": app_id, "name": app_id, "team": UNKNOWN_TEAM, "owner": None, "sponsor": None,
                "stage": "production", "value_kind": "cost_avoidance", "launched": None,
                "slo_availability": np.nan, "review_every_days": np.nan,
            }
        )  # fmt: skip
    if rows:
        add = pd.DataFrame(rows, columns=INVENTORY_COLUMNS)
        apps = add if apps.empty else pd.concat([apps, add], ignore_index=True)
    shared = apps["app_id"] == UNALLOCATED
    apps.loc[shared, "team"] = SHARED_TEAM
    apps.loc[shared, "value_kind"] = SHARED_TEAM
    apps["name"] = apps["name"].where(apps["name"].notna() & (apps["name"] != ""), apps["app_id"])
    apps["team"] = apps["team"].where(apps["team"].notna() & (apps["team"] != ""), UNKNOWN_TEAM)
    apps["slo_availability"] = pd.to_numeric(apps["slo_availability"], errors="coerce")
    return apps.reset_index(drop=True)


def hourly_rates(apps: pd.DataFrame, cfg: Config) -> pd.Series:
    """app_id -> loaded hourly rate of its team (config; default rate for unknown teams)."""
    return pd.Series({a: cfg.team(t).hourly_rate for a, t in zip(apps["app_id"], apps["team"], strict=True)}, dtype="float64")


# ---------------------------------------------------------------------------------------------
# fact preparation (vectorised, daily data never looped over in Python)


def _in_currency(frame: pd.DataFrame, cfg: Config) -> np.ndarray:
    """Rows in the reporting currency (a missing currency is the reporting one)."""
    codes, uniques = pd.factorize(frame["currency"])
    want = cfg.currency.upper()
    ok = np.array([str(u).upper() == want for u in uniques] + [True], dtype=bool)
    return ok[codes]  # code -1 (missing) picks the trailing True


def _mapped(values: pd.Series, mapping: dict[str, str], default: str, categories: list[str]) -> Any:
    """Map a low-cardinality column through ``mapping`` via its factorized codes (no per-row Python)."""
    codes, uniques = pd.factorize(values)
    target = np.array([categories.index(mapping.get(str(u), default)) for u in uniques] + [categories.index(default)])
    return pd.Categorical.from_codes(target[codes], categories=pd.Index(categories))


def flat(frame: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """reset_index with categorical key columns back to plain objects (small aggregated frames)."""
    out = frame.reset_index()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)
    return out


def by_app(series: pd.Series) -> pd.Series:
    """A per-app aggregate with a plain object index (categorical keys do not reindex cleanly)."""
    series.index = pd.Index(series.index.astype(object), name="app_id")
    return series


_CACHE: OrderedDict[tuple[Any, ...], tuple[tuple[weakref.ref[pd.DataFrame], ...], pd.DataFrame]] = OrderedDict()
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


def _cached(
    kind: str, frame: pd.DataFrame | tuple[pd.DataFrame, ...], extra: tuple[Any, ...], build: Callable[[], pd.DataFrame]
) -> pd.DataFrame:
    """The prepared (parsed, typed) form of fact frames, built once per frame object.

    Facts are immutable by contract; the entry holds weak references to the frames (identity
    checked, so a new Facts always gets fresh preparation, and a dropped Facts frees its entries).
    Callers must not mutate the result.
    """
    frames = frame if isinstance(frame, tuple) else (frame,)
    key = (kind, tuple(id(f) for f in frames), tuple(len(f) for f in frames), extra)
    with _CACHE_LOCK:
        for stale in [k for k, (refs, _) in _CACHE.items() if any(r() is None for r in refs)]:
            del _CACHE[stale]  # its facts are gone: free the prepared frame now
        hit = _CACHE.get(key)
        if hit is not None and all(r() is f for r, f in zip(hit[0], frames, strict=True)):
            _CACHE.move_to_end(key)
            return hit[1]
    out = build()
    with _CACHE_LOCK:
        _CACHE[key] = (tuple(weakref.ref(f) for f in frames), out)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out


def _until(frame: pd.DataFrame, end: date) -> pd.DataFrame:
    if frame.empty or frame["ts"].max() <= _ts(end):
        return frame
    return frame[frame["ts"] <= _ts(end)]


_BUCKETS = ["infra_cost", "vendor_cost", "people_cost", "other_only"]
_BUCKET_OF = {"infra": "infra_cost", "vendor": "vendor_cost", "people": "people_cost"}


def _costs(facts: Facts, cfg: Config, end: date) -> pd.DataFrame:
    """Cost rows in the reporting currency up to ``end``: app_id (categorical), ts, month, bucket, amount.

    ``bucket`` is infra_cost / vendor_cost / people_cost / other_only (category "other" and anything unknown).
    """

    def build() -> pd.DataFrame:
        c = facts.costs
        if c.empty:
            return pd.DataFrame({"app_id": pd.Categorical([]), "ts": pd.Series(dtype="datetime64[ns]"),
                                 "month": pd.Series(dtype="datetime64[ns]"),
                                 "bucket": pd.Categorical([], categories=_BUCKETS), "amount": pd.Series(dtype="float64")})  # fmt: skip
        keep = _in_currency(c, cfg)
        ts = to_ts(c["day"]).to_numpy()[keep]
        out = pd.DataFrame(
            {
                "app_id": c["app_id"].astype("category").to_numpy()[keep],
                "ts": ts,
                "bucket": _mapped(c["category"], _BUCKET_OF, "other_only", _BUCKETS)[keep],
                "amount": pd.to_numeric(c["amount"], errors="coerce").fillna(0.0).to_numpy()[keep],
            }
        )
        out["month"] = month_of(out["ts"])
        return out

    return _until(_cached("costs", facts.costs, (cfg.currency.upper(),), build), end)


def _outcomes(facts: Facts, cfg: Config, end: date) -> pd.DataFrame:
    """Outcome rows up to ``end``'s month with value, value_low, value_high (attribution applied)."""
    o = facts.outcomes
    cols = ["app_id", "month", "kind", "evidence", "value", "value_low", "value_high"]
    if o.empty:
        return pd.DataFrame({k: pd.Series(dtype="datetime64[ns]" if k == "month" else "object") for k in cols})
    o = o[_in_currency(o, cfg)]
    o = precedence.counted(o, precedence.order_of(cfg))  # one figure per app, month and kind
    month = month_of(to_ts(o["month"]))
    keep = (month <= _ts(month_start(end))).to_numpy()
    o = o[keep]
    amount = pd.to_numeric(o["amount"], errors="coerce").fillna(0.0)
    attribution = pd.to_numeric(o["attribution"], errors="coerce").fillna(1.0).clip(0.0, 1.0)
    low = pd.to_numeric(o["low"], errors="coerce").fillna(amount)
    high = pd.to_numeric(o["high"], errors="coerce").fillna(amount)
    value = amount * attribution
    evidence = o["evidence"].where(o["evidence"].isin(_EVIDENCE), "estimate")
    return pd.DataFrame(
        {
            "app_id": o["app_id"].to_numpy(dtype=object),
            "month": month[keep].to_numpy(),
            "kind": o["kind"].to_numpy(dtype=object),
            "evidence": evidence.to_numpy(dtype=object),
            "value": value.to_numpy(),
            # a bound on the wrong side of the amount still brackets the value
            "value_low": np.minimum((low * attribution).to_numpy(), value.to_numpy()),
            "value_high": np.maximum((high * attribution).to_numpy(), value.to_numpy()),
        }
    )


def _maintenance(facts: Facts, end: date) -> pd.DataFrame:
    """Maintenance rows up to ``end``: app_id (object), ts, month, kind, hours, incidents, ttr_hours."""

    def build() -> pd.DataFrame:
        m = facts.maintenance
        cols = ["app_id", "ts", "month", "kind", "hours", "incidents", "ttr_hours"]
        if m.empty:
            return pd.DataFrame({k: pd.Series(dtype="datetime64[ns]" if k in ("ts", "month") else "object") for k in cols})
        out = pd.DataFrame(
            {
                "app_id": m["app_id"].to_numpy(dtype=object),
                "ts": to_ts(m["day"]).to_numpy(),
                "kind": m["kind"].fillna("klo").to_numpy(dtype=object),
                "hours": pd.to_numeric(m["hours"], errors="coerce").fillna(0.0).to_numpy(),
                "incidents": pd.to_numeric(m["incidents"], errors="coerce").fillna(0).to_numpy(),
                "ttr_hours": pd.to_numeric(m["ttr_hours"], errors="coerce").to_numpy(),
            }
        )
        out["month"] = month_of(out["ts"])
        return out[cols]

    return _until(_cached("maintenance", facts.maintenance, (), build), end)


def _requests(facts: Facts, end: date) -> pd.DataFrame:
    """Daily "requests" usage up to ``end``: app_id (categorical), ts, month, requests."""

    def build() -> pd.DataFrame:
        u = facts.usage
        if u.empty:
            return pd.DataFrame({"app_id": pd.Categorical([]), "ts": pd.Series(dtype="datetime64[ns]"),
                                 "month": pd.Series(dtype="datetime64[ns]"), "requests": pd.Series(dtype="float64")})  # fmt: skip
        codes, uniques = pd.factorize(u["metric"])
        keep = np.array([x == "requests" for x in uniques] + [False], dtype=bool)[codes]
        out = pd.DataFrame(
            {
                "app_id": u["app_id"].astype("category").to_numpy()[keep],
                "ts": to_ts(u["day"]).to_numpy()[keep],
                "requests": pd.to_numeric(u["value"], errors="coerce").fillna(0.0).to_numpy()[keep],
            }
        )
        out["month"] = month_of(out["ts"])
        return out

    return _until(_cached("requests", facts.usage, (), build), end)


def _uptime(facts: Facts, end: date) -> pd.DataFrame:
    """Mean daily availability per app and day up to ``end`` (several sources on one day are averaged)."""

    def build() -> pd.DataFrame:
        u = facts.uptime
        if u.empty:
            return pd.DataFrame({"app_id": pd.Categorical([]), "ts": pd.Series(dtype="datetime64[ns]"),
                                 "availability": pd.Series(dtype="float64")})  # fmt: skip
        frame = pd.DataFrame(
            {"app_id": u["app_id"].astype("category").to_numpy(), "ts": to_ts(u["day"]).to_numpy(),
             "availability": pd.to_numeric(u["availability"], errors="coerce").to_numpy()}
        )  # fmt: skip
        return frame.groupby(["app_id", "ts"], observed=True)["availability"].mean().reset_index()

    return _until(_cached("uptime", facts.uptime, (), build), end)


# ---------------------------------------------------------------------------------------------
# monthly P&L


def _monthly(facts: Facts, cfg: Config, end: date | None = None) -> pd.DataFrame:
    """monthly_pnl with ``month`` as datetime64 and facts cut at ``end`` (default: last complete day).

    Memoised per Facts frames, config and end: the overview asks for it several times. Read-only.
    """
    end = min(end or facts.last_complete_day, facts.last_complete_day)
    frames = (facts.apps, facts.costs, facts.outcomes, facts.maintenance, facts.usage, facts.uptime)
    return _cached("monthly", frames, (cfg.model_dump_json(), end), lambda: _build_monthly(facts, cfg, end))


def _build_monthly(facts: Facts, cfg: Config, end: date) -> pd.DataFrame:
    keys = ["app_id", "month"]
    parts: list[pd.DataFrame] = []

    costs = _costs(facts, cfg, end)
    if not costs.empty:
        wide = costs.groupby([*keys, "bucket"], observed=True)["amount"].sum().unstack("bucket", fill_value=0)
        wide.columns = [str(c) for c in wide.columns]
        parts.append(flat(wide))

    outcomes = _outcomes(facts, cfg, end)
    if not outcomes.empty:
        grouped = outcomes.groupby(keys)[["value", "value_low", "value_high"]].sum()
        by_kind = outcomes.groupby([*keys, "kind"])["value"].sum().unstack("kind", fill_value=0)
        by_evidence = outcomes.groupby([*keys, "evidence"])["value"].sum().unstack("evidence", fill_value=0)
        by_evidence.columns = [f"value_{c}" for c in by_evidence.columns]
        parts.append(grouped.join(by_kind[[c for c in by_kind.columns if c in ("revenue_capture", "cost_avoidance")]]).join(by_evidence).reset_index())

    maint = _maintenance(facts, end)
    if not maint.empty:
        hours = maint.groupby(keys)["hours"].sum().rename("maintenance_hours")
        parts.append(hours.reset_index())

    req = _requests(facts, end)
    if not req.empty:
        parts.append(flat(req.groupby(keys, observed=True)["requests"].sum()))

    up = _uptime(facts, end)
    if not up.empty:
        seen = up.assign(month=month_of(up["ts"])).groupby(keys, observed=True).size()
        parts.append(flat(seen)[keys])

    if not parts:
        return empty_frame(MONTHLY_COLUMNS).astype({"month": "datetime64[ns]"})
    merged = pd.concat(parts, ignore_index=True, sort=False)
    numeric = [c for c in merged.columns if c not in keys]
    merged = merged.groupby(keys, as_index=False)[numeric].sum(min_count=0)
    for col in SUM_COLUMNS + ["other_only"]:
        if col not in merged.columns:
            merged[col] = 0.0
        merged[col] = merged[col].fillna(0.0).astype("float64")

    apps = inventory(facts, cfg, merged["app_id"].unique())
    team = apps.set_index("app_id")["team"]
    rates = hourly_rates(apps, cfg)
    merged["team"] = merged["app_id"].map(team)
    # people cost: hours x the team's loaded rate, plus spend booked as category "people"
    merged["people_cost"] = merged["people_cost"] + merged["maintenance_hours"] * merged["app_id"].map(rates).fillna(cfg.default_hourly_rate)
    merged["other_cost"] = merged["vendor_cost"] + merged["other_only"]
    merged["cost"] = merged["infra_cost"] + merged["other_cost"] + merged["people_cost"]
    merged["net"] = merged["value"] - merged["cost"]
    merged["roi"] = _ratio(merged["net"], merged["cost"])
    merged = merged[merged["month"] <= _ts(month_start(end))]
    return merged[MONTHLY_COLUMNS].sort_values(keys, kind="stable").reset_index(drop=True)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype("float64")
    return (num.astype("float64") / den.where(den != 0)).astype("float64")


def monthly_pnl(facts: Facts, cfg: Config) -> pd.DataFrame:
    """Each app's P&L per calendar month: the trend behind every other view.

    One row per ``app_id`` and ``month`` (a ``date``, the 1st) for every month in which the app has
    any fact, up to the month of the last complete day (facts after it are ignored). Spend no app
    claims is the row ``app_id = "_unallocated"``, team ``"_shared"``.

    Columns: app_id, month, team, revenue_capture, cost_avoidance, value, value_low, value_high,
    value_experiment, value_observational, value_estimate, infra_cost, vendor_cost, other_cost
    (vendor + "other" category), people_cost (maintenance hours × team rate + "people" spend),
    maintenance_hours, cost (= infra_cost + other_cost + people_cost), net, roi (NaN when cost is 0),
    requests.
    """
    frame = _monthly(facts, cfg).copy()
    frame["month"] = as_dates(frame["month"]) if not frame.empty else frame["month"].astype("object")
    return frame


# ---------------------------------------------------------------------------------------------
# per-app P&L over a period


def _sum_between(monthly: pd.DataFrame, start: date, end: date, cols: list[str]) -> pd.DataFrame:
    rows = monthly[(monthly["month"] >= _ts(start)) & (monthly["month"] <= _ts(end))]
    return rows.groupby("app_id")[cols].sum()


def run_rate(monthly: pd.DataFrame, end: date, cols: list[str]) -> pd.DataFrame:
    """Trailing 3 full months (ending on or before ``end``) × 4, per app."""
    months = full_months(end, RUN_RATE_MONTHS)
    return _sum_between(monthly, months[0], months[-1], cols) * RUN_RATE_FACTOR


def _availability(facts: Facts, period: Period, end: date) -> pd.Series:
    up = _uptime(facts, end)
    up = up[up["ts"] >= _ts(period.start)]
    return by_app(up.groupby("app_id", observed=True)["availability"].mean())


def _cumulative(monthly: pd.DataFrame, apps: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Cumulative net since launch and the payback month (first month cumulative net >= 0)."""
    if monthly.empty:
        return pd.Series(dtype="float64"), pd.Series(dtype="object")
    launched = month_of(to_ts(apps.set_index("app_id")["launched"]))
    rows = monthly[["app_id", "month", "net"]].copy()
    start = rows["app_id"].map(launched)
    rows = rows[start.isna() | (rows["month"] >= start)].sort_values(["app_id", "month"])
    rows["cum"] = rows.groupby("app_id")["net"].cumsum()
    cumulative = rows.groupby("app_id")["cum"].last()
    paid = rows[(rows["cum"] >= 0) & (rows["app_id"] != UNALLOCATED)].groupby("app_id")["month"].first()
    return cumulative, as_dates(paid) if not paid.empty else pd.Series(dtype="object")


def app_pnl(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> pd.DataFrame:
    """Which apps earn their keep over ``period``, against the period before it.

    One row per app of the inventory (retired apps only when they have facts in either period),
    plus ``"_unallocated"`` when shared spend exists in the period. ``team`` filters on the app's
    team (the shared row belongs to team ``"_shared"``).

    Columns: app_id, name, team, stage, value_kind, owner, revenue_capture, cost_avoidance, value,
    value_low, value_high, value_experiment, value_observational, value_estimate, infra_cost,
    vendor_cost, other_cost, people_cost, maintenance_hours, cost, net, roi, requests,
    cost_per_1k_requests, value_per_request, prev_value, prev_cost, prev_net, net_change (net −
    prev_net), cumulative_net (launch .. period end), payback_month (first month whose cumulative
    net since launch is >= 0, or None; months before the first recorded fact count as zero), run_rate_cost, run_rate_value, run_rate_net (trailing 3 full
    months × 4 as of the period end), availability (mean daily, NaN without uptime data), slo.
    """
    end = min(period.end, facts.last_complete_day)
    if end < period.start:
        return empty_frame(APP_COLUMNS)
    monthly = _monthly(facts, cfg, end)
    prev = period.previous()
    apps = inventory(facts, cfg, monthly["app_id"].unique())
    now = _sum_between(monthly, period.start, end, SUM_COLUMNS)
    before = _sum_between(monthly, prev.start, prev.end, ["value", "cost", "net"])
    rr = run_rate(monthly, end, ["cost", "value", "net"])
    cumulative, payback = _cumulative(monthly, apps)
    avail = _availability(facts, period, end)

    frame = apps.set_index("app_id")
    frame = frame.join(now, how="left")
    frame = frame.join(before.add_prefix("prev_"), how="left")
    frame = frame.join(rr.add_prefix("run_rate_"), how="left")
    numeric = SUM_COLUMNS + ["prev_value", "prev_cost", "prev_net", "run_rate_cost", "run_rate_value", "run_rate_net"]
    active = frame[numeric].notna().any(axis=1)
    frame[numeric] = frame[numeric].fillna(0.0)
    frame["cumulative_net"] = cumulative.reindex(frame.index).fillna(0.0)
    frame["payback_month"] = payback.reindex(frame.index).astype("object")
    frame["payback_month"] = frame["payback_month"].where(frame["payback_month"].notna(), None)
    frame["availability"] = avail.reindex(frame.index)
    frame = frame.reset_index()
    keep = frame["stage"].ne("retired") | active.to_numpy()
    is_shared = frame["app_id"] == UNALLOCATED
    keep &= ~is_shared | (frame["cost"].abs() > 0)
    if team is not None:
        keep &= frame["team"] == team
    frame = frame[keep].copy()
    frame["roi"] = _ratio(frame["net"], frame["cost"])
    frame["cost_per_1k_requests"] = _ratio(frame["cost"] * 1000.0, frame["requests"])
    frame["value_per_request"] = _ratio(frame["value"], frame["requests"])
    frame["net_change"] = frame["net"] - frame["prev_net"]
    frame["slo"] = frame["slo_availability"]
    if frame.empty:
        return empty_frame(APP_COLUMNS)
    return frame[APP_COLUMNS].sort_values(["net", "app_id"], ascending=[False, True]).reset_index(drop=True)


def kpis(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> dict[str, Any]:
    """The portfolio's headline numbers over ``period`` and the previous one (KPI row of the overview).

    Keys: value, cost, net, roi, apps (non-retired apps, not counting ``_unallocated``), candidates
    (apps with active, i.e. not snoozed, retirement findings), prev_value, prev_cost, prev_net, prev_roi.
    """
    import portfolio.retirement as retirement  # here: retirement builds on this module


    frame = app_pnl(facts, cfg, period, team)
    value, cost = float(frame["value"].sum()), float(frame["cost"].sum())
    prev_value, prev_cost = float(frame["prev_value"].sum()), float(frame["prev_cost"].sum())
    apps = inventory(facts, cfg)
    apps = apps[(apps["app_id"] != UNALLOCATED) & (apps["stage"] != "retired")]
    if team is not None:
        apps = apps[apps["team"] == team]
    cands = retirement.candidates(retirement.retirement_findings(facts, cfg))
    if team is not None:
        cands = cands[cands["team"] == team]
    return {
        "value": value,
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
    out["roi"] = _ratio(out["net"], out["cost"])
    out["prev_roi"] = _ratio(out["prev_net"], out["prev_cost"]) if "prev_net" in out else np.nan
    return out.reindex(columns=columns).sort_values("net", ascending=False).reset_index(drop=True)


def value_by_evidence(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> pd.DataFrame:
    """How much of the claimed value is hard (experiment) vs soft (estimate), by team and kind.

    The finance partner's question: what evidence backs each value claim. Columns: team, kind,
    evidence, value, value_low, value_high (attribution applied).
    """
    end = min(period.end, facts.last_complete_day)
    out = _outcomes(facts, cfg, end)
    out = out[out["month"] >= _ts(period.start)] if not out.empty else out
    if out.empty:
        return empty_frame(EVIDENCE_COLUMNS)
    apps = inventory(facts, cfg, out["app_id"].unique())
    out = out.assign(team=out["app_id"].map(apps.set_index("app_id")["team"]))
    if team is not None:
        out = out[out["team"] == team]
        if out.empty:
            return empty_frame(EVIDENCE_COLUMNS)
    grouped = out.groupby(["team", "kind", "evidence"], as_index=False)[["value", "value_low", "value_high"]].sum()
    return grouped[EVIDENCE_COLUMNS].reset_index(drop=True)


def net_range(facts: Facts, cfg: Config, period: Period, team: str | None = None) -> dict[str, float]:
    """The portfolio net with the value bounds: {net, net_low, net_high} (cost taken as known)."""
    frame = app_pnl(facts, cfg, period, team)
    cost = float(frame["cost"].sum())
    return {
        "net": float(frame["value"].sum()) - cost,
        "net_low": float(frame["value_low"].sum()) - cost,
        "net_high": float(frame["value_high"].sum()) - cost,
    }


# ---------------------------------------------------------------------------------------------
# reconciliation and currency


def reconciliation(facts: Facts) -> pd.DataFrame:
    """Does what we allocated (plus what nobody claimed) add up to the bill, to the cent?

    One row per cost source, billing period (``YYYY-MM``; rows without one use the month of their
    day) and currency. Columns: source, billing_period, currency, allocated, unallocated, recorded
    (allocated + unallocated), billed (the bill's own total, NaN when the source records none),
    difference (recorded − billed, rounded to cents), ok (``abs(difference) < 0.005``; None without
    a bill total), status ("ok", "mismatch" or "no bill total").
    """
    c = facts.costs
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
        shared = (c["app_id"] == UNALLOCATED).to_numpy()
        rec = pd.DataFrame(
            {
                "source": c["source"].fillna("").to_numpy(dtype=object),
                "billing_period": period,
                "currency": c["currency"].fillna("").to_numpy(dtype=object),
                "allocated": np.where(shared, 0.0, amount),
                "unallocated": np.where(shared, amount, 0.0),
            }
        )
        rec = rec.groupby(keys, as_index=False)[["allocated", "unallocated"]].sum()
    else:
        rec = pd.DataFrame({k: pd.Series(dtype="object") for k in keys} | {"allocated": [], "unallocated": []})
    if not b.empty:
        bills = pd.DataFrame(
            {"source": b["source"].astype(str), "billing_period": b["billing_period"].astype(str),
             "currency": b["currency"].fillna("").astype(str), "billed": pd.to_numeric(b["total"], errors="coerce")}
        ).groupby(keys)["billed"].sum().reset_index()  # fmt: skip
    else:
        bills = _empty_bills(keys)
    out = rec.merge(bills, on=keys, how="outer")
    out[["allocated", "unallocated"]] = out[["allocated", "unallocated"]].fillna(0.0)
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
        odd = frame[~_in_currency(frame, cfg)]
        if not odd.empty:
            frames.append(
                pd.DataFrame({"source": odd["source"].astype(str), "currency": odd["currency"].astype(str),
                              "amount": pd.to_numeric(odd["amount"], errors="coerce").fillna(0.0)})
            )  # fmt: skip
    if not frames:
        return empty_frame(CURRENCY_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    out = rows.groupby(["source", "currency"], as_index=False).agg(amount=("amount", "sum"), rows=("amount", "size"))
    return out[CURRENCY_COLUMNS]
