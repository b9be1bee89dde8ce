"""The books: one object that reads the facts once and hands every domain module the same figures.

``Books(facts, cfg)`` prepares (parses, types, filters to the reporting currency, maps to
registered apps) each kind of fact once per instance and memoises what it derived, so
:mod:`portfolio.pnl`, :mod:`portfolio.maintenance`, :mod:`portfolio.retirement` and
:mod:`portfolio.recommend` all read the same numbers. There is no module-level cache: a Books
lives as long as its caller keeps it (the dashboard keeps one per data source).

Definitions that live here, and only here:

- **inventory**: the App table, then apps declared only in the config, then ``_unallocated``
  (team ``"_shared"``). An app id met in the facts but registered in neither is *unregistered*:
  it never becomes an app unless the config says ``discover_apps = true`` (then it becomes one
  with team ``"_unknown"``, for a first look at a bill).
- **unregistered spend**: cost whose app id (for a bill: the tag value) names no registered app.
  It is booked to ``_unallocated`` (so the columns still add up to the bill and the reconciliation
  counts it as unallocated) and listed by :meth:`Books.unregistered_spend` with its tag value.
  Other facts naming no registered app (outcomes, maintenance, usage, uptime) count for no app and
  are listed by :meth:`Books.unregistered_facts`.
- **people cost** = maintenance hours × the team's loaded hourly rate + spend booked with category
  ``"people"``. The P&L and the maintenance views both take it from :meth:`Books.monthly`.
- **run-rate** = the trailing 3 *full* months × 4.
- **since launch** (:meth:`Books.since_launch`): cumulative net, payback month, lifetime ROI and
  NPV from launch when the app has opening figures in the config (``build_cost``, optionally
  ``opening_net`` up to ``opening_net_until``); otherwise from the app's first month with data,
  labelled so, and no payback month is claimed.

Costs and outcomes in a currency other than the configured one are left out of every sum (see
:func:`portfolio.pnl.currency_issues`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from portfolio import genai, precedence
from portfolio.config import AppConfig, Config, Opening
from portfolio.facts import Facts, weights
from portfolio.frames import as_dates, empty_frame, flat, month_of, ratio, to_ts
from portfolio.periods import add_months, full_months, month_start
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
INVENTORY_COLUMNS = [
    "app_id", "name", "team", "owner", "sponsor", "stage", "value_kind", "launched", "slo_availability",
    "review_every_days",
]  # fmt: skip
SINCE_COLUMNS = ["app_id", "cumulative_since", "cumulative_net", "payback_month", "lifetime_cost", "lifetime_roi", "npv"]
UNREGISTERED_SPEND_COLUMNS = ["tag_value", "currency", "amount", "rows", "sources", "first_day", "last_day", "claim"]
UNREGISTERED_FACT_COLUMNS = ["kind", "app_id", "rows", "first_day", "last_day"]

_EVIDENCE = ("experiment", "observational", "estimate")
_BUCKETS = ["infra_cost", "vendor_cost", "people_cost", "other_only"]
_BUCKET_OF = {"infra": "infra_cost", "vendor": "vendor_cost", "people": "people_cost"}


def in_currency(frame: pd.DataFrame, cfg: Config) -> np.ndarray:
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


def _shared_objects(values: pd.Series) -> np.ndarray:
    """``values`` as an object array whose equal values are one Python object: a ticket per row at
    1,000 apps is 184,000 rows naming ~1,000 apps and three kinds, not 184,000 strings each."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(uniques, dtype=object)[codes]  # type: ignore[no-any-return]


def _until(frame: pd.DataFrame, end: date) -> pd.DataFrame:
    if frame.empty or frame["ts"].max() <= pd.Timestamp(end):
        return frame
    return frame[frame["ts"] <= pd.Timestamp(end)]


def claim_snippet(tag_value: str) -> str:
    """The ``[[apps]]`` entry that would claim spend tagged ``tag_value`` (team left to fill in)."""
    text = tag_value.replace("\\", "\\\\").replace('"', '\\"')
    return f'[[apps]]\nid = "{text}"\nteam = "TODO"  # the owning team\ncost_tags = ["{text}"]'


def monthly_rate(annual: float) -> float:
    """The monthly discount rate equivalent to ``annual``: (1 + annual) ** (1/12) - 1."""
    return float((1.0 + annual) ** (1.0 / 12.0) - 1.0)


def of(facts: Facts, cfg: Config) -> Books:
    """The one :class:`Books` of these facts and this config, kept on the facts (no module-level
    cache): the domain functions called without ``books`` share it, so a report that asks for the
    P&L, the findings and the ledger prepares each frame once, not once per call (the quarterly
    review did it six times at 1,000 apps)."""
    kept = facts.books.get(id(cfg))
    if kept is None or kept.cfg is not cfg or kept.facts is not facts:  # (a dataclasses.replace copy shares the dict)
        kept = Books(facts, cfg)
        facts.books.clear()  # one at a time: a caller with a fresh config copy per call keeps one, not many
        facts.books[id(cfg)] = kept
    return kept


class Books:
    """The facts of one portfolio, read once, as the domain sees them.

    Every method returns a frame the caller must not mutate (they are memoised on the instance).
    ``end`` arguments cut the facts at that day; they default to, and never go past, the last
    complete day.
    """

    def __init__(self, facts: Facts, cfg: Config) -> None:
        self.facts = facts
        self.cfg = cfg
        self.last_day = facts.last_complete_day
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.RLock()

    # ---- memo ---------------------------------------------------------------------------------

    def _once(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._memo:
                self._memo[key] = build()
            return self._memo[key]

    def memo(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """Build once per Books what a domain module derives from it (``key`` names it)."""
        return self._once(("memo", *key), build)

    def _end(self, end: date | None) -> date:
        return min(end or self.last_day, self.last_day)

    # ---- which apps exist -----------------------------------------------------------------------

    def app_config(self, app_id: str) -> AppConfig | None:
        return next((a for a in self.cfg.apps if a.id == app_id), None)

    def opening(self, app_id: str) -> AppConfig | Opening | None:
        """The app's opening figures: its ``[[apps]]`` entry's, else ``[finance.opening.<id>]``, else None."""
        declared = self.app_config(app_id)
        if declared is not None and declared.has_opening:
            return declared
        extra = self.cfg.finance.opening.get(app_id)
        return extra if extra is not None and extra.has_opening else None

    def registered(self) -> frozenset[str]:
        """App ids of the App table and the config, plus ``_unallocated``."""

        def build() -> frozenset[str]:
            ids = {str(x) for x in self.facts.apps["app_id"] if x is not None} if not self.facts.apps.empty else set()
            return frozenset(ids | {a.id for a in self.cfg.apps} | {UNALLOCATED})

        return self._once(("registered",), build)  # type: ignore[no-any-return]

    def _fact_ids(self) -> set[str]:
        ids: set[str] = set()
        for frame in (self.facts.costs, self.facts.outcomes, self.facts.maintenance, self.facts.usage, self.facts.uptime):
            if not frame.empty:
                ids |= {str(x) for x in pd.unique(frame["app_id"]) if x is not None}
        return ids

    def inventory(self) -> pd.DataFrame:
        """Every app: the App table, apps declared only in the config, ``_unallocated``; with
        ``discover_apps = true`` also every other app id met in the facts (team ``"_unknown"``)."""
        return self._once(("inventory",), self._build_inventory)  # type: ignore[no-any-return]

    def _build_inventory(self) -> pd.DataFrame:
        apps = self.facts.apps.copy()
        for col in INVENTORY_COLUMNS:
            if col not in apps.columns:
                apps[col] = None
        apps = apps[INVENTORY_COLUMNS]
        known = set(apps["app_id"])
        rows: list[dict[str, Any]] = []
        for a in self.cfg.apps:
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
        if self.cfg.discover_apps:
            for app_id in sorted(self._fact_ids() - known):
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

    def known(self) -> frozenset[str]:
        """The ids that count as apps: the inventory's."""
        return self._once(("known",), lambda: frozenset(str(x) for x in self.inventory()["app_id"]))  # type: ignore[no-any-return]

    def hourly_rates(self) -> pd.Series:
        """app_id -> loaded hourly rate of its team (config; the default rate for teams it does not list)."""
        apps = self.inventory()
        return pd.Series(
            {a: self.cfg.team(t).hourly_rate for a, t in zip(apps["app_id"], apps["team"], strict=True)}, dtype="float64"
        )

    def known_mask(self, values: pd.Series) -> np.ndarray:
        """Per row: does ``values`` (app ids) name an app of the inventory (factorised, no per-row Python)."""
        codes, uniques = pd.factorize(values)
        known = self.known()
        ok = np.array([str(u) in known for u in uniques] + [False], dtype=bool)
        return ok[codes]

    # ---- prepared facts -------------------------------------------------------------------------

    def costs(self, end: date | None = None) -> pd.DataFrame:
        """Cost rows in the reporting currency up to ``end``: app_id (categorical), ts, month, bucket, amount.

        ``bucket`` is infra_cost / vendor_cost / people_cost / other_only (category "other" and
        anything unknown). Unregistered spend is booked to ``_unallocated``.
        """
        return _until(self._once(("costs",), self._build_costs), self._end(end))

    def _build_costs(self) -> pd.DataFrame:
        # a gateway's estimate counts only where no vendor bill covers that app and day
        c = genai.pnl_costs(self.facts.costs)
        if c.empty:
            return pd.DataFrame({"app_id": pd.Categorical([]), "ts": pd.Series(dtype="datetime64[ns]"),
                                 "month": pd.Series(dtype="datetime64[ns]"),
                                 "bucket": pd.Categorical([], categories=_BUCKETS), "amount": pd.Series(dtype="float64")})  # fmt: skip
        keep = in_currency(c, self.cfg)
        app_id = c["app_id"].where(self.known_mask(c["app_id"]), UNALLOCATED)
        out = pd.DataFrame(
            {
                "app_id": app_id.astype("category").to_numpy()[keep],
                "ts": to_ts(c["day"]).to_numpy()[keep],
                "bucket": _mapped(c["category"], _BUCKET_OF, "other_only", _BUCKETS)[keep],
                "amount": pd.to_numeric(c["amount"], errors="coerce").fillna(0.0).to_numpy()[keep],
            }
        )
        out["month"] = month_of(out["ts"])
        return out

    def outcomes(self, end: date | None = None) -> pd.DataFrame:
        """THE read of outcome rows: every view of value goes through here.

        Rows up to ``end``'s month, in the reporting currency, of registered apps, with value,
        value_low, value_high (attribution applied; clipped to 0..1, missing = 1; a missing bound is
        the value itself). Columns: app_id, month (datetime64), kind, evidence, value, value_low,
        value_high. (Where one figure per app, month and kind is picked among value sources, it is
        picked here, by ``[value] precedence``: :func:`portfolio.precedence.counted`.)
        """
        last = month_start(self._end(end))
        return self._once(("outcomes", last), lambda: self._build_outcomes(last))  # type: ignore[no-any-return]

    def _build_outcomes(self, last_month: date) -> pd.DataFrame:
        o = self.facts.outcomes
        cols = ["app_id", "month", "kind", "evidence", "value", "value_low", "value_high"]
        if o.empty:
            return pd.DataFrame({k: pd.Series(dtype="datetime64[ns]" if k == "month" else "object") for k in cols})
        o = o[in_currency(o, self.cfg) & self.known_mask(o["app_id"])]
        o = precedence.counted(o, precedence.order_of(self.cfg))  # one figure per app, month and kind
        month = month_of(to_ts(o["month"]))
        keep = (month <= pd.Timestamp(last_month)).to_numpy()
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

    def maintenance(self, end: date | None = None) -> pd.DataFrame:
        """Maintenance rows of registered apps up to ``end``: app_id, ts, month, kind, hours, incidents, ttr_hours."""
        return _until(self._once(("maintenance",), self._build_maintenance), self._end(end))

    def _build_maintenance(self) -> pd.DataFrame:
        m = self.facts.maintenance
        cols = ["app_id", "ts", "month", "kind", "hours", "incidents", "ttr_hours"]
        if m.empty:
            return pd.DataFrame({k: pd.Series(dtype="datetime64[ns]" if k in ("ts", "month") else "object") for k in cols})
        m = m[self.known_mask(m["app_id"])]
        out = pd.DataFrame(
            {
                "app_id": _shared_objects(m["app_id"]),
                "ts": to_ts(m["day"]).to_numpy(),
                "kind": _shared_objects(m["kind"].fillna("klo")),
                "hours": pd.to_numeric(m["hours"], errors="coerce").fillna(0.0).to_numpy(),
                "incidents": pd.to_numeric(m["incidents"], errors="coerce").fillna(0).to_numpy(),
                "ttr_hours": pd.to_numeric(m["ttr_hours"], errors="coerce").to_numpy(),
            }
        )
        out["month"] = month_of(out["ts"])
        return out[cols]

    def requests(self, end: date | None = None) -> pd.DataFrame:
        """Daily "requests" usage of registered apps up to ``end``: app_id (categorical), ts, month, requests."""
        return _until(self._once(("requests",), self._build_requests), self._end(end))

    def _build_requests(self) -> pd.DataFrame:
        u = genai.pnl_requests(self.facts.usage, self.facts.costs)  # an app's requests counted once
        if u.empty:
            return pd.DataFrame({"app_id": pd.Categorical([]), "ts": pd.Series(dtype="datetime64[ns]"),
                                 "month": pd.Series(dtype="datetime64[ns]"), "requests": pd.Series(dtype="float64")})  # fmt: skip
        codes, uniques = pd.factorize(u["metric"])
        keep = np.array([x == "requests" for x in uniques] + [False], dtype=bool)[codes] & self.known_mask(u["app_id"])
        out = pd.DataFrame(
            {
                "app_id": u["app_id"].astype("category").to_numpy()[keep],
                "ts": to_ts(u["day"]).to_numpy()[keep],
                "requests": pd.to_numeric(u["value"], errors="coerce").fillna(0.0).to_numpy()[keep],
            }
        )
        out["month"] = month_of(out["ts"])
        return out

    def uptime(self, end: date | None = None) -> pd.DataFrame:
        """Mean daily availability per registered app and day up to ``end`` (several sources on one day
        averaged); ``days``: how many days the row's mean covers (an aggregated month, see :mod:`portfolio.facts`)."""
        return _until(self._once(("uptime",), self._build_uptime), self._end(end))

    def _build_uptime(self) -> pd.DataFrame:
        u = self.facts.uptime
        if u.empty:
            return pd.DataFrame({"app_id": pd.Categorical([]), "ts": pd.Series(dtype="datetime64[ns]"),
                                 "availability": pd.Series(dtype="float64"), "days": pd.Series(dtype="float64")})  # fmt: skip
        u = u[self.known_mask(u["app_id"])]
        # aggregated facts (portfolio.facts): one row per app and month part, with the days it covers;
        # daily rows: one day each (several sources on one day are averaged into that one day)
        days = pd.to_numeric(u["days"], errors="coerce").fillna(0.0).to_numpy() if "days" in u.columns else 1.0
        frame = pd.DataFrame(
            {"app_id": u["app_id"].astype("category").to_numpy(), "ts": to_ts(u["day"]).to_numpy(),
             "availability": pd.to_numeric(u["availability"], errors="coerce").to_numpy(), "days": days}
        )  # fmt: skip
        grouped = frame.groupby(["app_id", "ts"], observed=True)
        return grouped.agg(availability=("availability", "mean"), days=("days", "max")).reset_index()

    # ---- the monthly P&L ------------------------------------------------------------------------

    def monthly(self, end: date | None = None) -> pd.DataFrame:
        """The monthly P&L (``month`` as datetime64) up to ``end``'s month: see :func:`portfolio.pnl.monthly_pnl`."""
        end = self._end(end)
        if end < self.last_day and (end + timedelta(days=1)).day == 1:
            # cut at a month's last day: exactly the whole months of the P&L up to the last day
            # (every fact of those months is on or before ``end``), so it is not built again
            return self._once(("monthly", end), lambda: self._months_of_full(end))  # type: ignore[no-any-return]
        return self._once(("monthly", end), lambda: self._build_monthly(end))  # type: ignore[no-any-return]

    def _months_of_full(self, end: date) -> pd.DataFrame:
        full = self.monthly(self.last_day)
        return full[full["month"] <= pd.Timestamp(month_start(end))].reset_index(drop=True)

    def _build_monthly(self, end: date) -> pd.DataFrame:
        keys = ["app_id", "month"]
        parts: list[pd.DataFrame] = []

        costs = self.costs(end)
        if not costs.empty:
            wide = costs.groupby([*keys, "bucket"], observed=True)["amount"].sum().unstack("bucket", fill_value=0)
            wide.columns = [str(c) for c in wide.columns]
            parts.append(flat(wide))

        outcomes = self.outcomes(end)
        if not outcomes.empty:
            grouped = outcomes.groupby(keys)[["value", "value_low", "value_high"]].sum()
            by_kind = outcomes.groupby([*keys, "kind"])["value"].sum().unstack("kind", fill_value=0)
            by_evidence = outcomes.groupby([*keys, "evidence"])["value"].sum().unstack("evidence", fill_value=0)
            by_evidence.columns = [f"value_{c}" for c in by_evidence.columns]
            kinds = by_kind[[c for c in by_kind.columns if c in ("revenue_capture", "cost_avoidance")]]
            parts.append(grouped.join(kinds).join(by_evidence).reset_index())

        maint = self.maintenance(end)
        if not maint.empty:
            parts.append(maint.groupby(keys)["hours"].sum().rename("maintenance_hours").reset_index())

        req = self.requests(end)
        if not req.empty:
            parts.append(flat(req.groupby(keys, observed=True)["requests"].sum()))

        up = self.uptime(end)
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

        team = self.inventory().set_index("app_id")["team"]
        merged["team"] = merged["app_id"].map(team)
        # people cost, the one definition: hours x the team's loaded rate, plus spend booked as "people"
        rate = merged["app_id"].map(self.hourly_rates()).fillna(self.cfg.default_hourly_rate)
        merged["people_cost"] = merged["people_cost"] + merged["maintenance_hours"] * rate
        merged["other_cost"] = merged["vendor_cost"] + merged["other_only"]
        merged["cost"] = merged["infra_cost"] + merged["other_cost"] + merged["people_cost"]
        merged["net"] = merged["value"] - merged["cost"]
        merged["roi"] = ratio(merged["net"], merged["cost"])
        merged = merged[merged["month"] <= pd.Timestamp(month_start(end))]
        return merged[MONTHLY_COLUMNS].sort_values(keys, kind="stable").reset_index(drop=True)

    def sum_between(self, start: date, end: date, cols: list[str]) -> pd.DataFrame:
        """Per app, the sum of ``cols`` of the monthly P&L over the days ``start`` .. ``end`` (whole
        months: ``start``'s month to ``end``'s month, facts cut at ``end``)."""
        return self.sum_months(month_start(start), month_start(end), cols, cut=end)

    def sum_months(self, first: date, last: date, cols: list[str], cut: date | None = None) -> pd.DataFrame:
        """Per app, the sum of ``cols`` over the months ``first`` .. ``last`` (1st days), facts cut at ``cut``."""
        monthly = self.monthly(cut)
        rows = monthly[(monthly["month"] >= pd.Timestamp(first)) & (monthly["month"] <= pd.Timestamp(last))]
        return rows.groupby("app_id")[cols].sum()

    def run_rate(self, end: date | None = None, cols: Iterable[str] = ("cost", "value", "net")) -> pd.DataFrame:
        """Trailing 3 full months (ending on or before ``end``) × 4, per app."""
        end = self._end(end)
        months = full_months(end, RUN_RATE_MONTHS)
        return self.sum_months(months[0], months[-1], list(cols), cut=end) * RUN_RATE_FACTOR

    # ---- since launch ---------------------------------------------------------------------------

    def since_launch(self, end: date | None = None) -> pd.DataFrame:
        """Cumulative net, payback month, lifetime ROI and NPV of every app with data, as of ``end``.

        With opening figures in the config (``build_cost`` and/or ``opening_net`` up to
        ``opening_net_until``, on the app's ``[[apps]]`` entry or in ``[finance.opening.<app id>]``) and a launch date (the config's ``launched``, else the inventory's)
        the figures start at launch:

        - the cash flows are −build_cost in the launch month, +opening_net in the month of
          ``opening_net_until`` (the net of launch .. that day, so the facts of those months are not
          counted again), then each later month's net from the facts (months before the first fact
          and not covered by ``opening_net`` count as zero);
        - cumulative_net = their sum; payback_month = the first month at whose end the running sum
          is >= 0 (a month's flows are summed first, so a launch month never "pays back" its build
          cost before its own net is in);
          lifetime_cost = build_cost + the cost of the months counted from the facts;
          lifetime_roi = cumulative_net / lifetime_cost;
          cumulative_since = ``"launch"``.

        Without them the flows are the months of the facts from the app's first month with data
        (and not before its launch month): cumulative_since is that month (``"YYYY-MM"``) and
        payback_month is None, because a payback from an unknown starting point would be a guess.

        NPV discounts each flow to the first month (launch, or the first month with data) at the
        monthly rate m = (1 + ``[finance] discount_rate``) ** (1/12) − 1: a flow k months later
        counts flow / (1 + m) ** k, so with the default 10 % a dollar a year out is worth $0.909.

        Columns: app_id, cumulative_since, cumulative_net, payback_month (``date`` or None),
        lifetime_cost, lifetime_roi (NaN when lifetime_cost is 0), npv.
        """
        end = self._end(end)
        return self._once(("since", end), lambda: self._build_since(end))  # type: ignore[no-any-return]

    def _build_since(self, end: date) -> pd.DataFrame:
        monthly = self.monthly(end)
        if monthly.empty:
            return empty_frame(SINCE_COLUMNS)
        m = monthly_rate(self.cfg.finance.discount_rate)
        launched = month_of(to_ts(self.inventory().set_index("app_id")["launched"]))
        rows: list[dict[str, Any]] = []
        # per app, its months in order: one sort and plain slices of arrays (a groupby over 1,000
        # apps splits 1,000 frames)
        ordered = monthly.sort_values(["app_id", "month"], kind="stable")
        ids = ordered["app_id"].astype(str).tolist()
        all_months = pd.to_datetime(ordered["month"]).dt.date.tolist()
        all_nets, all_costs = ordered["net"].to_numpy(dtype="float64"), ordered["cost"].to_numpy(dtype="float64")
        cuts = [0, *(i for i in range(1, len(ids)) if ids[i] != ids[i - 1]), len(ids)]
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            app_id = ids[lo]
            months, nets, costs = all_months[lo:hi], all_nets[lo:hi], all_costs[lo:hi]
            opening = self.opening(app_id)
            launch = launched.get(app_id)
            launch_day = opening.launched if opening is not None and opening.launched is not None else (
                None if launch is None or pd.isna(launch) else launch.date()
            )
            flows: list[tuple[date, float]] = []
            if opening is not None and launch_day is not None:
                start = month_start(launch_day)
                flows.append((start, -float(opening.build_cost or 0.0)))
                covered = start
                if opening.opening_net is not None and opening.opening_net_until is not None:
                    covered = add_months(opening.opening_net_until, 1)
                    flows.append((month_start(opening.opening_net_until), float(opening.opening_net)))
                counted = [(d, n, c) for d, n, c in zip(months, nets, costs, strict=True) if d >= covered]
                flows += [(d, n) for d, n, _ in counted]
                lifetime_cost = float(opening.build_cost or 0.0) + sum(c for _, _, c in counted)
                since = "launch"
            else:
                counted = [
                    (d, n, c) for d, n, c in zip(months, nets, costs, strict=True)
                    if launch is None or pd.isna(launch) or d >= launch.date()
                ]  # fmt: skip
                if not counted:
                    continue
                start = counted[0][0]
                flows = [(d, n) for d, n, _ in counted]
                lifetime_cost = sum(c for _, _, c in counted)
                since = start.strftime("%Y-%m")
            by_month: dict[date, float] = {}
            for d, amount in flows:  # a month's flows together: the build cost and the launch month's net
                by_month[d] = by_month.get(d, 0.0) + amount
            running, payback = 0.0, None
            for d in sorted(by_month):
                running += by_month[d]
                if payback is None and running >= 0 and since == "launch" and app_id != UNALLOCATED:
                    payback = d
            npv = sum(amount / (1.0 + m) ** _months_between(start, d) for d, amount in flows)
            rows.append(
                {
                    "app_id": app_id, "cumulative_since": since, "cumulative_net": running, "payback_month": payback,
                    "lifetime_cost": lifetime_cost, "lifetime_roi": running / lifetime_cost if lifetime_cost else np.nan,
                    "npv": npv,
                }
            )  # fmt: skip
        if not rows:
            return empty_frame(SINCE_COLUMNS)
        return pd.DataFrame(rows, columns=SINCE_COLUMNS)

    # ---- what no registered app claims -----------------------------------------------------------

    def unregistered_spend(self) -> pd.DataFrame:
        """Spend whose app id (a bill's tag value) names no registered app, largest first.

        It is booked to ``_unallocated`` in every sum; this says where it came from. Columns:
        tag_value, currency, amount, rows, sources (comma-separated), first_day, last_day, claim
        (the ``[[apps]]`` entry that would claim it). Empty with ``discover_apps = true``.
        """
        return self._once(("unregistered_spend",), self._build_unregistered_spend)  # type: ignore[no-any-return]

    def _build_unregistered_spend(self) -> pd.DataFrame:
        c = self.facts.costs
        if c.empty:
            return empty_frame(UNREGISTERED_SPEND_COLUMNS)
        odd = c[~self.known_mask(c["app_id"]) & c["app_id"].notna()]
        if odd.empty:
            return empty_frame(UNREGISTERED_SPEND_COLUMNS)
        frame = pd.DataFrame(
            {
                "tag_value": odd["app_id"].astype(str),
                "currency": odd["currency"].fillna(self.cfg.currency).astype(str),
                "amount": pd.to_numeric(odd["amount"], errors="coerce").fillna(0.0),
                "rows": weights(odd),
                "source": odd["source"].fillna("").astype(str),
                "first": to_ts(odd["first_day"] if "first_day" in odd.columns else odd["day"]),
                "last": to_ts(odd["last_day"] if "last_day" in odd.columns else odd["day"]),
            }
        )
        out = frame.groupby(["tag_value", "currency"], as_index=False).agg(
            amount=("amount", "sum"),
            rows=("rows", "sum"),
            sources=("source", lambda s: ", ".join(sorted(set(s)))),
            first_day=("first", "min"),
            last_day=("last", "max"),
        )
        out["first_day"] = as_dates(out["first_day"])
        out["last_day"] = as_dates(out["last_day"])
        out["claim"] = out["tag_value"].map(claim_snippet)
        out["rows"] = out["rows"].astype("float64")
        out = out.sort_values(["amount", "tag_value"], ascending=[False, True])
        return out[UNREGISTERED_SPEND_COLUMNS].reset_index(drop=True)

    def unregistered_facts(self) -> pd.DataFrame:
        """Outcomes, maintenance, usage and uptime rows naming no registered app: they count for no app.

        Columns: kind (outcome / maintenance / usage / uptime), app_id, rows, first_day, last_day.
        """
        frames = []
        for kind, frame, day in (
            ("outcome", self.facts.outcomes, "month"),
            ("maintenance", self.facts.maintenance, "day"),
            ("usage", self.facts.usage, "day"),
            ("uptime", self.facts.uptime, "day"),
        ):
            if frame.empty:
                continue
            odd = frame[~self.known_mask(frame["app_id"]) & frame["app_id"].notna()]
            if odd.empty:
                continue
            g = pd.DataFrame(
                {
                    "app_id": odd["app_id"].astype(str),
                    "rows": weights(odd),
                    "first": to_ts(odd["first_day"] if "first_day" in odd.columns else odd[day]),
                    "last": to_ts(odd["last_day"] if "last_day" in odd.columns else odd[day]),
                }
            ).groupby("app_id", as_index=False)
            out = g.agg(rows=("rows", "sum"), first_day=("first", "min"), last_day=("last", "max"))
            out.insert(0, "kind", kind)
            frames.append(out)
        if not frames:
            return empty_frame(UNREGISTERED_FACT_COLUMNS)
        out = pd.concat(frames, ignore_index=True)
        out["first_day"] = as_dates(out["first_day"])
        out["last_day"] = as_dates(out["last_day"])
        out["rows"] = out["rows"].astype("float64")
        return out[UNREGISTERED_FACT_COLUMNS].reset_index(drop=True)


def _months_between(start: date, d: date) -> int:
    return (d.year - start.year) * 12 + (d.month - start.month)
