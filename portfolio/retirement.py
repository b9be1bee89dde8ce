"""Retirement findings: which apps should be retired, why (in words and numbers), and what it frees.

Each rule is a small function of a :class:`Context` returning explainable findings: the rule,
the app, the reason in words and the numbers behind it. Thresholds come from ``cfg.rules``
(:class:`portfolio.config.Rules`). Rules are evaluated as of ``facts.today`` over *full* months
ending on or before the last complete day (the month of the last complete day counts only when
that day is its last), except ``zombie``, which looks at the last ``zombie_window_days`` days.

Never flagged: retired apps (by the inventory's stage, or by the lifecycle: see
:func:`portfolio.lifecycle.retired_mask`) and the shared ``_unallocated`` spend. A recorded
Decision whose ``next_review`` is today or later snoozes all of that app's findings until then.

The rules (DESIGN.md): zombie (spend, near-zero usage), underwater (net < 0 over the last months),
decaying (value falling quarter over quarter), maintenance_sink (people cost above a share of
value), unreliable (SLO missed in most recent months), orphaned (no owner, or review overdue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from portfolio import lifecycle
from portfolio.books import Books
from portfolio.books import of as books_of
from portfolio.config import Config, Rules
from portfolio.facts import Facts
from portfolio.frames import by_app, empty_frame, flat, month_of
from portfolio.periods import Period, full_months
from portfolio.records import UNALLOCATED

FINDING_COLUMNS = [
    "app_id", "name", "team", "rule", "reason", "numbers", "annual_savings", "value_at_risk", "net_effect",
    "freed_hours", "snoozed_until",
]  # fmt: skip
CANDIDATE_COLUMNS = [
    "app_id", "name", "team", "rules", "reasons", "annual_savings", "value_at_risk", "net_effect", "freed_hours",
]  # fmt: skip
WHAT_IF_KEYS = ("value", "cost", "net", "roi", "maintenance_hours", "apps")

Finding = dict[str, Any]


@dataclass(frozen=True)
class Context:
    """What every rule reads: the eligible apps, the monthly P&L and the raw daily facts."""

    books: Books
    facts: Facts
    cfg: Config
    rules: Rules
    apps: pd.DataFrame  # eligible apps (not retired, not _unallocated), indexed by app_id
    monthly: pd.DataFrame  # Books.monthly: month as datetime64
    last_day: date

    def months_sum(self, n: int, cols: list[str], skip_last: int = 0) -> tuple[pd.DataFrame, list[date]]:
        """Per eligible app, the sum of ``cols`` over the ``n`` full months before the last ``skip_last``."""
        months = full_months(self.last_day, n + skip_last)[:n]
        m = self.monthly
        rows = m[(m["month"] >= pd.Timestamp(months[0])) & (m["month"] <= pd.Timestamp(months[-1]))]
        sums = rows.groupby("app_id")[cols].sum()
        return sums.reindex(self.apps.index).fillna(0.0), months


def _money(x: float) -> str:
    return f"{'-' if x < 0 else ''}{abs(x):,.0f}"


def _span(months: list[date]) -> str:
    first, last = months[0].strftime("%Y-%m"), months[-1].strftime("%Y-%m")
    return first if first == last else f"{first}..{last}"


def _num(x: Any, digits: int = 2) -> Any:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return None
    return round(float(x), digits)


# ---------------------------------------------------------------------------------------------
# the rules: one function each, Context -> findings


def zombie(ctx: Context) -> list[Finding]:
    """Spend but near-zero usage: mean daily requests <= threshold while it still costs money."""
    r = ctx.rules
    days = r.zombie_window_days
    start = ctx.last_day - timedelta(days=days - 1)
    req = ctx.books.requests(ctx.last_day)
    requests = by_app(req[req["ts"] >= pd.Timestamp(start)].groupby("app_id", observed=True)["requests"].sum())
    costs = ctx.books.costs(ctx.last_day)
    costs = costs[(costs["ts"] >= pd.Timestamp(start)) & (costs["bucket"] != "people_cost")]
    spend = by_app(costs.groupby("app_id", observed=True)["amount"].sum())
    mean_req = requests.reindex(ctx.apps.index).fillna(0.0) / days  # missing days count as zero requests
    spend = spend.reindex(ctx.apps.index).fillna(0.0)
    min_cost = r.zombie_min_monthly_cost * days / 30
    hits = list(ctx.apps.index[((mean_req <= r.zombie_max_daily_requests) & (spend >= min_cost)).to_numpy()])
    return [
        {
            "app_id": a,
            "rule": "zombie",
            "reason": (
                f"{mean_req[a]:,.1f} requests a day on average over the last {days} days "
                f"(at most {r.zombie_max_daily_requests:g} counts as unused) while it cost {_money(spend[a])} "
                f"in infra/vendor/other spend (threshold {_money(min_cost)})"
            ),
            "numbers": {
                "window_days": days, "window_start": start.isoformat(), "window_end": ctx.last_day.isoformat(),
                "mean_daily_requests": _num(mean_req[a]), "max_daily_requests": _num(r.zombie_max_daily_requests),
                "cost": _num(spend[a]), "min_cost": _num(min_cost),
            },  # fmt: skip
        }
        for a in hits
    ]


def underwater(ctx: Context) -> list[Finding]:
    """Net below zero over the last ``underwater_months`` full months."""
    n = ctx.rules.underwater_months
    sums, months = ctx.months_sum(n, ["value", "cost", "net"])
    value, cost, net = (sums[c].astype("float64").to_dict() for c in ("value", "cost", "net"))
    hits = [a for a, x in net.items() if x < 0]
    return [
        {
            "app_id": a,
            "rule": "underwater",
            "reason": (
                f"net {_money(net[a])} over the last {n} full months ({_span(months)}): "
                f"value {_money(value[a])} against cost {_money(cost[a])}"
            ),
            "numbers": {"months": n, "from": months[0].isoformat(), "to": months[-1].isoformat(),
                        "value": _num(value[a]), "cost": _num(cost[a]), "net": _num(net[a])},  # fmt: skip
        }
        for a in hits
    ]


def decaying(ctx: Context) -> list[Finding]:
    """Value of the last full quarter below (1 − ``decaying_min_drop``) × the quarter before."""
    drop = ctx.rules.decaying_min_drop
    recent, recent_months = ctx.months_sum(3, ["value"])
    earlier, earlier_months = ctx.months_sum(3, ["value"], skip_last=3)
    now, before = recent["value"], earlier["value"]
    hits = now.index[(before > 0) & (now < (1 - drop) * before)]
    out = []
    for a in hits:
        fall = 1 - now[a] / before[a]
        out.append(
            {
                "app_id": a,
                "rule": "decaying",
                "reason": (
                    f"value fell {fall:.0%} quarter over quarter: {_money(now[a])} in {_span(recent_months)} "
                    f"against {_money(before[a])} in {_span(earlier_months)} (a drop of {drop:.0%} or more flags it)"
                ),
                "numbers": {"recent_value": _num(now[a]), "earlier_value": _num(before[a]), "drop": _num(fall, 4),
                            "min_drop": _num(drop, 4), "recent_from": recent_months[0].isoformat(),
                            "earlier_from": earlier_months[0].isoformat()},  # fmt: skip
            }
        )
    return out


def maintenance_sink(ctx: Context) -> list[Finding]:
    """People cost above ``maintenance_sink_share`` of value (or any people cost with no value)."""
    n, share = ctx.rules.maintenance_sink_months, ctx.rules.maintenance_sink_share
    sums, months = ctx.months_sum(n, ["people_cost", "value", "maintenance_hours"])
    people, value = sums["people_cost"].astype("float64"), sums["value"].astype("float64")
    hours = sums["maintenance_hours"].astype("float64").to_dict()
    hits = list(sums.index[((people > 0) & (people > share * value.clip(lower=0))).to_numpy()])
    out = []
    for a in hits:
        if value[a] > 0:
            why = f"people cost {_money(people[a])} is {people[a] / value[a]:.0%} of its value {_money(value[a])}"
        else:
            why = f"people cost {_money(people[a])} with no recorded value"
        out.append(
            {
                "app_id": a,
                "rule": "maintenance_sink",
                "reason": f"{why} over the last {n} full months ({_span(months)}; more than {share:.0%} flags it), "
                f"{hours[a]:,.0f} maintenance hours",
                "numbers": {"months": n, "people_cost": _num(people[a]), "value": _num(value[a]),
                            "share": _num(people[a] / value[a], 4) if value[a] > 0 else None,
                            "max_share": _num(share, 4), "hours": _num(hours[a])},  # fmt: skip
            }
        )
    return out


def unreliable(ctx: Context) -> list[Finding]:
    """Monthly availability (mean daily) below the app's SLO in enough of the recent full months."""
    n, need = ctx.rules.unreliable_window_months, ctx.rules.unreliable_min_missed
    months = full_months(ctx.last_day, n)
    up = ctx.books.uptime(ctx.last_day)
    up = up[(up["ts"] >= pd.Timestamp(months[0])) & (up["ts"] < pd.Timestamp(months[-1]) + pd.offsets.MonthBegin(1))]
    if up.empty:
        return []
    # the mean over the month's days: an aggregated row (portfolio.facts) weighs the days it covers
    up = up[up["availability"].notna()].assign(month=month_of(up["ts"]))
    up = up.assign(weighted=up["availability"] * up["days"])
    sums = up.groupby(["app_id", "month"], observed=True)[["weighted", "days"]].sum()
    monthly = flat((sums["weighted"] / sums["days"].where(sums["days"] > 0)).rename("availability"))
    monthly = monthly[monthly["app_id"].isin(ctx.apps.index)]
    monthly["slo"] = monthly["app_id"].map(ctx.apps["slo_availability"])
    monthly = monthly[monthly["slo"].notna()]
    missed = monthly[monthly["availability"] < monthly["slo"]]
    out = []
    for a, rows in missed.groupby("app_id", sort=True):  # one group per app that missed
        if len(rows) < need:
            continue
        a = str(a)
        detail = ", ".join(f"{m:%Y-%m} {v:.2%}" for m, v in zip(rows["month"], rows["availability"], strict=True))
        slo = float(rows["slo"].iloc[0])
        out.append(
            {
                "app_id": a,
                "rule": "unreliable",
                "reason": f"missed its {slo:.2%} availability SLO in {len(rows)} of the last {n} full months ({detail})",
                "numbers": {"slo": _num(slo, 6), "months": n, "missed": len(rows), "min_missed": need,
                            "availability": {f"{m:%Y-%m}": _num(v, 6) for m, v in
                                             zip(rows["month"], rows["availability"], strict=True)}},  # fmt: skip
            }
        )
    return out


def orphaned(ctx: Context) -> list[Finding]:
    """No owner, or the review is overdue by more than ``orphan_grace_days``.

    The review is due at the latest Decision.next_review of the app; an app with decisions but
    no next review date is due ``review_every_days`` after its latest decision; an app with no
    decision is due ``review_every_days`` after launch.
    """
    grace = ctx.rules.orphan_grace_days
    today = ctx.facts.today
    due = _review_due(ctx)
    out = []
    for a, owner in ctx.apps["owner"].items():  # one per app
        a = str(a)
        if owner is None or (isinstance(owner, float) and pd.isna(owner)) or not str(owner).strip():
            out.append({"app_id": a, "rule": "orphaned", "reason": "no owner is recorded for this app",
                        "numbers": {"owner": None}})  # fmt: skip
            continue
        d = due.get(a)
        if d is not None and today > d + timedelta(days=grace):
            late = (today - d).days
            out.append(
                {
                    "app_id": a,
                    "rule": "orphaned",
                    "reason": f"review overdue: it was due {d.isoformat()}, {late} days ago (grace {grace} days)",
                    "numbers": {"review_due": d.isoformat(), "days_overdue": late, "grace_days": grace,
                                "owner": str(owner)},  # fmt: skip
                }
            )
    return out


def _review_due(ctx: Context) -> dict[str, date]:
    """app_id -> the day its review is due (see :func:`orphaned`), once per books (the rule and
    the review queue both ask)."""
    return ctx.books.memo(("retirement.review_due",), lambda: _build_review_due(ctx))


def _build_review_due(ctx: Context) -> dict[str, date]:
    due: dict[str, date] = {}
    every = ctx.apps["review_every_days"]
    decisions = ctx.facts.decisions
    decided_apps: set[str] = set()
    reviews: dict[str, date] = {}
    decided: dict[str, date] = {}
    if not decisions.empty:  # the latest next review and decision of each app, in one pass each
        ids = decisions["app_id"].astype(str)
        decided_apps = set(ids)
        nxt = pd.to_datetime(decisions["next_review"], errors="coerce")
        reviews = {str(k): v.date() for k, v in nxt.groupby(ids).max().dropna().items()}
        at = pd.to_datetime(decisions["decided_at"], errors="coerce", utc=True)
        decided = {str(k): v.date() for k, v in at.groupby(ids).max().dropna().items()}
    launched_col = ctx.apps["launched"]
    for a in ctx.apps.index:
        days = every.get(a)
        days = 90 if days is None or pd.isna(days) else int(days)
        if a in decided_apps:
            if a in reviews:
                due[a] = reviews[a]
                continue
            if a in decided:
                due[a] = decided[a] + timedelta(days=days)
                continue
        launched = launched_col.get(a)
        if launched is not None and not (isinstance(launched, float) and pd.isna(launched)):
            due[a] = pd.Timestamp(str(launched)).date() + timedelta(days=days)
    return due


RULES: dict[str, Callable[[Context], list[Finding]]] = {
    "zombie": zombie,
    "underwater": underwater,
    "decaying": decaying,
    "maintenance_sink": maintenance_sink,
    "unreliable": unreliable,
    "orphaned": orphaned,
}

# ---------------------------------------------------------------------------------------------
# findings


def _books(facts: Facts, cfg: Config, books: Books | None) -> Books:
    """The caller's books (they must be of these facts and config), else new ones."""
    return books if books is not None else books_of(facts, cfg)


def _context(books: Books) -> Context:
    apps = books.inventory()
    eligible = apps[~lifecycle.retired_mask(apps, books.facts) & (apps["app_id"] != UNALLOCATED)].set_index("app_id")
    return Context(
        books=books, facts=books.facts, cfg=books.cfg, rules=books.cfg.rules, apps=eligible, monthly=books.monthly(),
        last_day=books.last_day,
    )


def snoozed_until(facts: Facts) -> pd.Series:
    """app_id -> the latest next_review that is today or later (a decision snoozes the app until then)."""
    d = facts.decisions
    if d.empty:
        return pd.Series(dtype="object")
    review = pd.to_datetime(d["next_review"], errors="coerce")
    live = d.assign(review=review)[review >= pd.Timestamp(facts.today)]
    if live.empty:
        return pd.Series(dtype="object")
    return live.groupby("app_id")["review"].max().dt.date


QUEUE_COLUMNS = ["app_id", "name", "team", "owner", "stage", "review_due", "days_left", "status", "snoozed_until"]
#: a review due within this many days is listed in the review queue as "due"
DUE_WITHIN_DAYS = 30


def review_queue(facts: Facts, cfg: Config, books: Books | None = None, due_within_days: int = DUE_WITHIN_DAYS) -> pd.DataFrame:
    """The Retirement page's review queue: apps (not retired) whose review is overdue, due within
    ``due_within_days``, or snoozed by a decision — when, and until when.

    The review date is the one the ``orphaned`` rule uses (the latest decision's next review, else
    its date + ``review_every_days``, else launch + ``review_every_days``). Columns: app_id, name,
    team, owner, stage (lifecycle, as of today), review_due, days_left (negative: overdue by that
    many days), status (overdue / due / snoozed), snoozed_until. Overdue first, then by date.
    """
    ctx = _context(_books(facts, cfg, books))
    if ctx.apps.empty:
        return empty_frame(QUEUE_COLUMNS)
    due = _review_due(ctx)
    snooze = snoozed_until(facts)
    today = facts.today
    in_table = set(facts.apps["app_id"]) if not facts.apps.empty else set()
    stage_now = lifecycle.stages(facts, today) if in_table else pd.Series(dtype="object")
    rows = []
    for a in ctx.apps.index:
        d = due.get(str(a))
        until = snooze.get(a)
        if d is None:
            continue
        left = (d - today).days
        status = "overdue" if left < 0 else "due" if left <= due_within_days else "snoozed" if until is not None else None
        if status is None:
            continue
        owner = ctx.apps.at[a, "owner"]
        rows.append({
            "app_id": str(a), "name": ctx.apps.at[a, "name"], "team": ctx.apps.at[a, "team"],
            "owner": None if owner is None or (isinstance(owner, float) and pd.isna(owner)) else owner,
            "stage": stage_now[str(a)] if str(a) in in_table else ctx.apps.at[a, "stage"],
            "review_due": d, "days_left": left, "status": status, "snoozed_until": until,
        })  # fmt: skip
    if not rows:
        return empty_frame(QUEUE_COLUMNS)
    out = pd.DataFrame(rows, columns=QUEUE_COLUMNS)
    out["_rank"] = out["status"].map({"overdue": 0, "due": 1, "snoozed": 2})
    out = out.sort_values(["_rank", "review_due", "app_id"])
    return out[QUEUE_COLUMNS].reset_index(drop=True)


def retirement_findings(
    facts: Facts, cfg: Config, include_snoozed: bool = False, books: Books | None = None
) -> pd.DataFrame:
    """What should be retired, and why: one row per (app, rule) that fires, explained.

    Columns: app_id, name, team, rule, reason (words), numbers (a JSON-serialisable dict of the
    numbers behind the reason), annual_savings (run-rate cost that would stop: trailing 3 full
    months × 4 of infra + vendor + other + people; shared spend excluded), value_at_risk (run-rate
    value), net_effect (annual_savings − value_at_risk), freed_hours (trailing 3 full months of maintenance hours × 4), snoozed_until (the next
    review date of a decision that snoozes the app, else None; snoozed findings are returned only
    with ``include_snoozed=True``). Sorted by annual_savings, largest first.
    """
    b = _books(facts, cfg, books)
    # the same for every period and team (the Portfolio KPIs ask on each filter change): once per books
    found_all: pd.DataFrame = b.memo(("retirement.findings", include_snoozed), lambda: _findings(b, include_snoozed))
    return found_all.copy()


def _findings(books: Books, include_snoozed: bool) -> pd.DataFrame:
    ctx = _context(books)
    facts = books.facts
    if ctx.apps.empty:
        return empty_frame(FINDING_COLUMNS)
    found = [f for rule in RULES.values() for f in rule(ctx)]
    if not found:
        return empty_frame(FINDING_COLUMNS)
    out = pd.DataFrame(found)
    snooze = snoozed_until(facts)
    out["snoozed_until"] = out["app_id"].map(snooze).astype("object")
    out["snoozed_until"] = out["snoozed_until"].where(out["snoozed_until"].notna(), None)
    if not include_snoozed:
        out = out[out["snoozed_until"].isna()]
        if out.empty:
            return empty_frame(FINDING_COLUMNS)
    rr = ctx.books.run_rate(ctx.last_day, ["cost", "value", "maintenance_hours"])
    out["annual_savings"] = out["app_id"].map(rr["cost"]).fillna(0.0).astype("float64")
    out["value_at_risk"] = out["app_id"].map(rr["value"]).fillna(0.0).astype("float64")
    out["freed_hours"] = out["app_id"].map(rr["maintenance_hours"]).fillna(0.0).astype("float64")
    out["net_effect"] = out["annual_savings"] - out["value_at_risk"]
    out["name"] = out["app_id"].map(ctx.apps["name"])
    out["team"] = out["app_id"].map(ctx.apps["team"])
    order = {name: i for i, name in enumerate(RULES)}
    out["_order"] = out["rule"].map(order)
    out = out.sort_values(["annual_savings", "app_id", "_order"], ascending=[False, True, True])
    return out[FINDING_COLUMNS].reset_index(drop=True)


def candidates(findings: pd.DataFrame) -> pd.DataFrame:
    """The retirement short-list: one row per app with findings, its rules and reasons together.

    Columns: app_id, name, team, rules (comma-separated), reasons ("; "-separated, in rule order),
    annual_savings, value_at_risk, net_effect (annual_savings − value_at_risk: the change of annual
    portfolio net if it were retired; negative when the app makes money), freed_hours. Sorted by
    net_effect, largest first: the apps whose retirement helps most come first.
    """
    if findings.empty:
        return empty_frame(CANDIDATE_COLUMNS)
    out = findings.groupby("app_id", sort=False).agg(
        name=("name", "first"),
        team=("team", "first"),
        rules=("rule", ", ".join),
        reasons=("reason", "; ".join),
        annual_savings=("annual_savings", "first"),
        value_at_risk=("value_at_risk", "first"),
        net_effect=("net_effect", "first"),
        freed_hours=("freed_hours", "first"),
    )
    out = out.reset_index().sort_values(["net_effect", "app_id"], ascending=[False, True])
    return out[CANDIDATE_COLUMNS].reset_index(drop=True)


def what_if(
    facts: Facts, cfg: Config, period: Period, retire: list[str], books: Books | None = None
) -> dict[str, dict[str, float]]:
    """What the portfolio would look like, at run-rate, with the apps in ``retire`` switched off.

    Run-rate = trailing 3 full months × 4 as of the period end (capped at the last complete day).
    Returns {"before": {...}, "after": {...}, "delta": {...}} with keys value, cost, net, roi,
    maintenance_hours, apps (non-retired apps). Shared spend (``_unallocated``) stays in both.
    Raises ValueError for an unknown app id or for ``_unallocated``.
    """
    end = min(period.end, facts.last_complete_day)
    b = _books(facts, cfg, books)
    apps = b.inventory()
    known = set(apps["app_id"])
    wanted = list(dict.fromkeys(retire))
    if UNALLOCATED in wanted:
        raise ValueError(f"{UNALLOCATED!r} is shared spend, not an app: it cannot be retired")
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise ValueError(f"cannot retire unknown app(s): {', '.join(unknown)}")
    rr = b.run_rate(end, ["value", "cost", "maintenance_hours"])
    live = apps[~lifecycle.retired_mask(apps, facts) & (apps["app_id"] != UNALLOCATED)]["app_id"]

    def totals(drop: list[str]) -> dict[str, float]:
        kept = rr.drop(index=[a for a in drop if a in rr.index])
        value, cost = float(kept["value"].sum()), float(kept["cost"].sum())
        return {
            "value": value,
            "cost": cost,
            "net": value - cost,
            "roi": (value - cost) / cost if cost else float("nan"),
            "maintenance_hours": float(kept["maintenance_hours"].sum()),
            "apps": float(len(set(live) - set(drop))),
        }

    before, after = totals([]), totals(wanted)
    delta = {k: after[k] - before[k] for k in WHAT_IF_KEYS}
    return {"before": before, "after": after, "delta": delta}
