"""Savings verified on the bill, and value lost to downtime.

Definitions (docs/design.md, "One definition of every number"):

- **Value lost to downtime** (:func:`downtime_loss`): in a month where an app's availability (the
  mean of its daily availability, as the *unreliable* rule reads it) is below its SLO, value lost
  = the month's value × shortfall, shortfall = SLO − availability. Outcomes are monthly, so the
  month's value is the figure; days without uptime data do not count in the mean.
- **Leftover spend** (:func:`leftover_spend`): every cost row of a retired app, from any cost
  source (bills, estimates, OpenCost), dated on or after the retirement date + ``[savings]
  grace_days`` (default 7): per app, source, category and service (the service is the resource a
  bill names: the endpoint, the GPU node pool, the bucket).
- **Retirement ledger** (:func:`retirement_ledger`): per retired app, the annual savings projected
  when it was approved against those realised on the bill. Run-rate before = the app's cost as the
  P&L counts it (every cost row of it: infra, vendor, other, people spend; plus its maintenance
  hours × the team's rate — the cost the approved projection froze, so the two compare) over the
  ``before_days`` (90) days before the retirement date, per day × 365;
  run-rate after = the same over the days from the end of the grace period (at most
  ``after_days``, 90) to the last complete day, per day × 365. Realised = before − after. With
  fewer than ``min_after_days`` (30) days after the grace period nothing is claimed: the row says
  how many days there are. Maintenance hours freed per month = hours per day before − after, ×
  365 / 12 (same windows). Value gone = the mean monthly value of the 3 full months before the
  retirement month − that of the full months after the grace period, × 12 (None without a full
  month after).

Retirements come from :func:`portfolio.lifecycle.retirements` (approved proposals carried out,
with the projected savings frozen at approval); :func:`retirements` is the one adapter to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from portfolio.books import Books, in_currency
from portfolio.frames import as_dates, empty_frame, month_of, to_ts
from portfolio.periods import add_months, month_end, month_start
from portfolio.records import UNALLOCATED

DOWNTIME_COLUMNS = ["app_id", "name", "month", "availability", "slo", "shortfall", "value", "value_lost"]
LEFTOVER_COLUMNS = [
    "app_id", "retired_on", "grace_until", "source", "category", "service", "leftover_spend", "days", "first_day",
    "last_day", "daily_rate",
]  # fmt: skip
LEDGER_COLUMNS = [
    "app_id", "name", "retired_on", "approved_by", "approved_at", "projected_annual_savings", "before_annual_cost",
    "after_annual_cost", "realised_annual_savings", "savings_variance", "realised_pct", "days_before", "days_after",
    "projected_freed_hours_per_month", "freed_hours_per_month", "value_at_risk", "value_before_annual",
    "value_after_annual", "value_gone_annual", "leftover_spend", "status",
]  # fmt: skip
DAYS_PER_YEAR = 365
VALUE_BEFORE_MONTHS = 3


@dataclass(frozen=True)
class Retired:
    """What the ledger needs of a carried-out retirement (the fields of ``portfolio.lifecycle.Retirement``)."""

    app_id: str
    retired_on: date | None
    approved_at: Any = None
    approved_by: str | None = None
    projected_annual_savings: Decimal | float | None = None
    freed_hours_per_month: float | None = None
    value_at_risk: Decimal | float | None = None
    note: str = ""


def retirements(books: Books) -> list[Retired]:
    """The retirements carried out by the as-of day, from :func:`portfolio.lifecycle.retirements`
    (projected figures as frozen at approval; ``note`` says why one has no date or no projection).
    Read once per Books."""
    return list(books.memo(("verify.retirements",), lambda: _retirements(books)))


def _retirements(books: Books) -> list[Retired]:
    from portfolio import lifecycle

    out = [
        Retired(
            app_id=str(r.app_id), retired_on=r.retired_on, approved_at=r.approved_at, approved_by=r.approved_by,
            projected_annual_savings=r.projected_annual_savings, freed_hours_per_month=r.freed_hours_per_month,
            value_at_risk=r.value_at_risk, note=r.note,
        )
        for r in lifecycle.retirements(books.facts)
    ]  # fmt: skip
    return sorted(out, key=lambda r: (r.retired_on is None, r.retired_on or date.min, r.app_id))


def _money(x: Any) -> Decimal | None:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return None
    return x if isinstance(x, Decimal) else Decimal(str(round(float(x), 6)))


# ----------------------------------------------------------------------------- downtime


def downtime_loss(books: Books, start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """Value lost to downtime per app and month (only months that missed the SLO), months ``start`` .. ``end``.

    Columns: app_id, name, month (``date``), availability (mean daily), slo, shortfall (slo −
    availability), value (the month's value), value_lost (value × shortfall; 0 when the month has
    no value). Sorted by month, then app.
    """
    end = books._end(end)
    up = books.uptime(end)
    if up.empty:
        return empty_frame(DOWNTIME_COLUMNS)
    up = up.assign(month=month_of(up["ts"]))
    if start is not None:
        up = up[up["month"] >= pd.Timestamp(month_start(start))]
    monthly = up.groupby(["app_id", "month"], observed=True)["availability"].mean().reset_index()
    inv = books.inventory().set_index("app_id")
    monthly["app_id"] = monthly["app_id"].astype(str)
    monthly["slo"] = monthly["app_id"].map(inv["slo_availability"]).astype("float64")
    missed = monthly[monthly["availability"] < monthly["slo"]].copy()
    if missed.empty:
        return empty_frame(DOWNTIME_COLUMNS)
    pnl = books.monthly(end)[["app_id", "month", "value"]]
    missed = missed.merge(pnl, on=["app_id", "month"], how="left")
    missed["value"] = missed["value"].fillna(0.0)
    missed["shortfall"] = missed["slo"] - missed["availability"]
    missed["value_lost"] = missed["value"] * missed["shortfall"]
    missed["name"] = missed["app_id"].map(inv["name"])
    missed["month"] = as_dates(missed["month"])
    return missed[DOWNTIME_COLUMNS].sort_values(["month", "app_id"]).reset_index(drop=True)


def downtime_by_app(loss: pd.DataFrame) -> pd.Series:
    """app_id -> value lost to downtime (sum over the months of ``loss``)."""
    if loss.empty:
        return pd.Series(dtype="float64")
    return loss.groupby("app_id")["value_lost"].sum()


# ----------------------------------------------------------------------------- leftover spend


def _grace_until(books: Books, retired_on: date) -> date:
    """The first day whose spend is leftover spend."""
    return retired_on + timedelta(days=books.cfg.savings.grace_days)


def leftover_spend(books: Books, retired: list[Retired] | None = None) -> pd.DataFrame:
    """Spend of retired apps after their grace period, per app, source, category and service.

    Every cost row in the reporting currency counts, whatever its source (a bill, a gateway
    estimate, OpenCost), up to the last complete day. Columns: :data:`LEFTOVER_COLUMNS`;
    ``daily_rate`` = the spend of the last 7 days with data / 7 (what it still costs a day).
    Largest first. Computed once per Books for its own retirements.
    """
    if retired is None:
        return books.memo(("verify.leftover",), lambda: _leftover(books, retirements(books))).copy()  # type: ignore[no-any-return]
    return _leftover(books, retired)


def _leftover(books: Books, retired: list[Retired]) -> pd.DataFrame:
    c = books.facts.costs
    if not retired or c.empty:
        return empty_frame(LEFTOVER_COLUMNS)
    c = c[c["app_id"].isin({r.app_id for r in retired})]  # the retired apps' rows only, before any per-row work
    c = c[in_currency(c, books.cfg)]
    ts = to_ts(c["day"])
    c = c.assign(ts=ts)[ts <= pd.Timestamp(books.last_day)]
    frames = []
    per_app = _per_app(c, [r.app_id for r in retired])
    for r in retired:
        if r.retired_on is None or r.app_id not in per_app:
            continue
        start = _grace_until(books, r.retired_on)
        mine = per_app[r.app_id]
        mine = mine[mine["ts"] >= pd.Timestamp(start)]
        if mine.empty:
            continue
        mine = mine.assign(amount=pd.to_numeric(mine["amount"], errors="coerce").fillna(0.0))
        last_week = mine["ts"] > mine["ts"].max() - pd.Timedelta(days=7)
        g = mine.groupby(["source", "category", "service"], as_index=False).agg(
            leftover_spend=("amount", "sum"),
            days=("ts", "nunique"),
            first_day=("ts", "min"),
            last_day=("ts", "max"),
        )
        recent = mine[last_week].groupby(["source", "category", "service"])["amount"].sum() / 7.0
        g["daily_rate"] = [
            float(recent.get((s, k, v), 0.0))
            for s, k, v in zip(g["source"], g["category"], g["service"], strict=True)
        ]
        g["app_id"], g["retired_on"], g["grace_until"] = r.app_id, r.retired_on, start
        frames.append(g)
    if not frames:
        return empty_frame(LEFTOVER_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["first_day"], out["last_day"] = as_dates(out["first_day"]), as_dates(out["last_day"])
    out = out[out["leftover_spend"] != 0]
    return (
        out[LEFTOVER_COLUMNS]
        .sort_values(["leftover_spend", "app_id"], ascending=[False, True])
        .reset_index(drop=True)
    )


# ----------------------------------------------------------------------------- the retirement ledger


def _per_app(frame: pd.DataFrame, app_ids: list[str]) -> dict[str, pd.DataFrame]:
    """The rows of each of ``app_ids`` (one pass over the frame, not one filter per app)."""
    if frame.empty:
        return {}
    wanted = frame[frame["app_id"].isin(set(app_ids))]
    return {str(a): g for a, g in wanted.groupby("app_id", sort=False, observed=True)}


def _sum_days(per_app: dict[str, pd.DataFrame], app_id: str, col: str, first: date, last: date) -> float:
    frame = per_app.get(app_id)
    if frame is None:
        return 0.0
    mask = (frame["ts"] >= pd.Timestamp(first)) & (frame["ts"] <= pd.Timestamp(last))
    return float(frame.loc[mask, col].sum())


def retirement_ledger(books: Books, retired: list[Retired] | None = None) -> pd.DataFrame:
    """Per carried-out retirement: projected against realised savings, hours freed, value gone, leftover spend.

    Columns: :data:`LEDGER_COLUMNS`. ``status`` is ``"verified"`` (enough days after the grace
    period), ``"not enough history: N of M days after the grace period"`` or ``"no spend before
    the retirement date"`` (nothing to compare with). Realised figures are None unless verified.
    """
    own = retired is None
    retired = retirements(books) if retired is None else retired
    if not retired:
        return empty_frame(LEDGER_COLUMNS)
    cfg = books.cfg.savings
    last_day = books.last_day
    costs = books.costs()
    maint = books.maintenance()
    monthly = books.monthly()
    names = books.inventory().set_index("app_id")["name"]
    leftover = leftover_spend(books, None if own else retired)
    left_by_app = (
        leftover.groupby("app_id")["leftover_spend"].sum()
        if not leftover.empty
        else pd.Series(dtype="float64")
    )
    first_cost = (
        costs.groupby("app_id", observed=True)["ts"].min()
        if not costs.empty
        else pd.Series(dtype="datetime64[ns]")
    )
    rates = books.hourly_rates()
    ids = [r.app_id for r in retired]
    costs_of, maint_of = _per_app(costs, ids), _per_app(maint, ids)
    rows = []
    for r in retired:
        if r.retired_on is None:  # nothing to measure from: say so, guess nothing
            undated: dict[str, Any] = dict.fromkeys(LEDGER_COLUMNS)
            undated |= {"app_id": r.app_id, "name": names.get(r.app_id, r.app_id), "approved_by": r.approved_by,
                    "approved_at": r.approved_at, "projected_annual_savings": _money(r.projected_annual_savings),
                    "value_at_risk": _money(r.value_at_risk), "status": r.note or "no retirement date"}  # fmt: skip
            rows.append(undated)
            continue
        rate = float(rates.get(r.app_id, books.cfg.default_hourly_rate))
        b_last = r.retired_on - timedelta(days=1)
        b_first = r.retired_on - timedelta(days=cfg.before_days)
        seen = first_cost.get(r.app_id)
        if seen is not None and not pd.isna(seen) and seen.date() > b_first:
            b_first = seen.date()  # launched (or data begins) inside the window: the days there are
        days_before = max(0, (b_last - b_first).days + 1)
        a_first = _grace_until(books, r.retired_on)
        a_last = min(a_first + timedelta(days=cfg.after_days - 1), last_day)
        days_after = max(0, (a_last - a_first).days + 1)
        # the app's cost as the P&L counts it: its spend (bills, people spend) + its maintenance hours x the team's rate
        hours_before = _sum_days(maint_of, r.app_id, "hours", b_first, b_last)
        hours_after = _sum_days(maint_of, r.app_id, "hours", a_first, a_last) if days_after else 0.0
        before_cost = _sum_days(costs_of, r.app_id, "amount", b_first, b_last) + hours_before * rate
        after_cost = (_sum_days(costs_of, r.app_id, "amount", a_first, a_last) if days_after else 0.0) + hours_after * rate
        projected = _money(r.projected_annual_savings)
        row: dict[str, Any] = {
            "app_id": r.app_id, "name": names.get(r.app_id, r.app_id), "retired_on": r.retired_on,
            "approved_by": r.approved_by, "approved_at": r.approved_at, "projected_annual_savings": projected,
            "days_before": days_before, "days_after": days_after,
            "projected_freed_hours_per_month": r.freed_hours_per_month, "value_at_risk": _money(r.value_at_risk),
            "leftover_spend": _money(float(left_by_app.get(r.app_id, 0.0))),
        }  # fmt: skip
        verified = days_after >= cfg.min_after_days and days_before > 0 and before_cost != 0
        if days_before == 0 or before_cost == 0:
            row["status"] = "no spend before the retirement date"
        elif not verified:
            row["status"] = (
                f"not enough history: {days_after} of {cfg.min_after_days} days after the grace period"
            )
        else:
            row["status"] = "verified"
        if verified:
            before_annual = _money(before_cost / days_before * DAYS_PER_YEAR)
            after_annual = _money(after_cost / days_after * DAYS_PER_YEAR)
            assert before_annual is not None and after_annual is not None
            row["before_annual_cost"], row["after_annual_cost"] = before_annual, after_annual
            realised = before_annual - after_annual
            row["realised_annual_savings"] = realised
            row["savings_variance"] = None if projected is None else realised - projected
            row["realised_pct"] = None if not projected else float(realised / projected)
            row["freed_hours_per_month"] = (hours_before / days_before - hours_after / days_after) * DAYS_PER_YEAR / 12
        else:
            for key in ("before_annual_cost", "after_annual_cost", "realised_annual_savings", "savings_variance",
                        "realised_pct", "freed_hours_per_month"):  # fmt: skip
                row[key] = None
        # value: the 3 full months before the retirement month against the full months after the grace period
        mine = monthly[monthly["app_id"] == r.app_id]
        ret_month = month_start(r.retired_on)
        v_before = mine[(mine["month"] >= pd.Timestamp(add_months(ret_month, -VALUE_BEFORE_MONTHS)))
                        & (mine["month"] < pd.Timestamp(ret_month))]  # fmt: skip
        after_start = a_first if a_first == month_start(a_first) else add_months(a_first, 1)
        after_end = month_start(last_day) if last_day == month_end(last_day) else add_months(last_day, -1)
        n_after = (after_end.year - after_start.year) * 12 + after_end.month - after_start.month + 1
        v_after = mine[
            (mine["month"] >= pd.Timestamp(after_start)) & (mine["month"] <= pd.Timestamp(after_end))
        ]
        value_before = _money(float(v_before["value"].sum()) / VALUE_BEFORE_MONTHS * 12) or Decimal(0)
        row["value_before_annual"] = value_before
        if n_after > 0:
            value_after = _money(float(v_after["value"].sum()) / n_after * 12) or Decimal(0)
            row["value_after_annual"], row["value_gone_annual"] = value_after, value_before - value_after
        else:
            row["value_after_annual"] = row["value_gone_annual"] = None
        rows.append(row)
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def year_totals(ledger: pd.DataFrame, year: int) -> dict[str, Any]:
    """Savings of the retirements carried out in ``year``: projected against realised (verified ones).

    Keys: retirements, verified, projected (all of the year's), projected_verified (of those
    verified), realised, leftover_spend, pending (not verified yet).
    """
    mine = ledger if ledger.empty else ledger[[d.year == year for d in ledger["retired_on"]]]
    ok = mine[mine["status"] == "verified"] if not mine.empty else mine

    def total(frame: pd.DataFrame, col: str) -> Decimal:
        return (
            sum((x for x in frame[col] if isinstance(x, Decimal)), Decimal(0))
            if not frame.empty
            else Decimal(0)
        )

    return {
        "year": year,
        "retirements": len(mine),
        "verified": len(ok),
        "pending": len(mine) - len(ok),
        "projected": total(mine, "projected_annual_savings"),
        "projected_verified": total(ok, "projected_annual_savings"),
        "realised": total(ok, "realised_annual_savings"),
        "leftover_spend": total(mine, "leftover_spend"),
    }


def not_unallocated(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["app_id"] != UNALLOCATED] if not frame.empty else frame
