"""One recommendation per app: retire, harden, keep, invest or review, with its reasons.

Every surface that says what to do with an app (the Retirement, Maintenance and App pages, the
CLI's ``report retirement`` / ``report maintenance``, the quarterly review) shows this module's
answer, so two pages never contradict each other. It is a pure function of the books as of the last
complete day, whatever period a page shows.

The evidence, per app (not retired, not ``_unallocated``):

- the active retirement findings (:mod:`portfolio.retirement`; findings snoozed by a decision
  are left out and the snooze is named in the reasons);
- the **net effect** of retiring it = annual savings − value at risk, where annual savings =
  run-rate cost (trailing 3 full months × 4, people cost included) and value at risk = run-rate
  value; a positive net effect raises portfolio net;
- the value trend: last full quarter's value against the quarter before;
- the maintenance load: incidents per month over the last 3 full months;
- reliability: the ``unreliable`` finding.

The decision, in order:

1. **retire**: a finding of zombie, underwater, decaying or maintenance_sink fires and retiring it
   does not lower portfolio net (net effect >= 0);
2. **harden**: it makes money (net effect < 0) but is unreliable, breaks often (at least
   ``HARDEN_INCIDENTS_PER_MONTH`` incidents a month) or its upkeep is a maintenance sink: fix it
   rather than lose its net;
3. **review**: some other finding fires (orphaned, decaying but still profitable, ...), or no rule
   fires but it costs more than it brings at run-rate (a pilot, a young app): a person decides;
4. **invest**: it makes money, value grew at least ``INVEST_GROWTH`` quarter over quarter and
   nothing fires;
5. **keep**: everything else.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pandas as pd

from portfolio import lifecycle, retirement
from portfolio.books import Books
from portfolio.books import of as books_of
from portfolio.config import Config
from portfolio.facts import Facts
from portfolio.frames import empty_frame
from portfolio.periods import full_months
from portfolio.records import UNALLOCATED

ACTIONS = ("retire", "harden", "review", "invest", "keep")
RECOMMENDATION_COLUMNS = [
    "app_id", "name", "team", "action", "reason", "rules", "net_effect", "annual_savings", "value_at_risk",
    "freed_hours", "incidents_per_month", "value_trend", "snoozed_until",
]  # fmt: skip
#: the rules whose finding, on an app whose retirement does not lower net, means "retire"
RETIRE_RULES = ("zombie", "underwater", "decaying", "maintenance_sink")
#: at least this many incidents a month on average (last 3 full months): it breaks often
HARDEN_INCIDENTS_PER_MONTH = 1.0
#: value up at least this share quarter over quarter (and nothing fires): worth investing in
INVEST_GROWTH = 0.10


def _money(x: float, currency: str) -> str:
    return f"{'-' if x < 0 else ''}{abs(x):,.0f} {currency}"


def _books(facts: Facts, cfg: Config, books: Books | None) -> Books:
    """The caller's books (they must be of these facts and config), else new ones."""
    return books if books is not None else books_of(facts, cfg)


def recommendations(facts: Facts, cfg: Config, books: Books | None = None) -> pd.DataFrame:
    """One row per app (not retired, not ``_unallocated``): what to do with it and why.

    Columns: app_id, name, team, action (retire / harden / review / invest / keep), reason (the
    reasons in words, "; "-separated, the deciding one first), rules (the active findings' rules,
    comma-separated), net_effect (annual change of portfolio net if it were retired: annual_savings
    − value_at_risk), annual_savings (run-rate cost), value_at_risk (run-rate value), freed_hours
    (run-rate maintenance hours), incidents_per_month (last 3 full months), value_trend (last full
    quarter's value / the one before − 1; NaN without value before), snoozed_until (a decision's
    next review that snoozes its findings, else None). Sorted by net_effect, largest first.
    """
    b = _books(facts, cfg, books)
    apps = b.inventory()
    apps = apps[~lifecycle.retired_mask(apps, facts) & (apps["app_id"] != UNALLOCATED)].set_index("app_id")
    if apps.empty:
        return empty_frame(RECOMMENDATION_COLUMNS)
    cur = cfg.currency
    last = b.last_day
    findings = retirement.retirement_findings(facts, cfg, include_snoozed=True, books=b)
    active = findings[findings["snoozed_until"].isna()] if not findings.empty else findings
    snoozed = findings[findings["snoozed_until"].notna()] if not findings.empty else findings
    rr = b.run_rate(last, ["cost", "value", "net", "maintenance_hours"]).reindex(apps.index).fillna(0.0)
    quarters = full_months(last, 6)
    recent = b.sum_months(quarters[3], quarters[5], ["value"], cut=last)["value"].reindex(apps.index).fillna(0.0)
    earlier = b.sum_months(quarters[0], quarters[2], ["value"], cut=last)["value"].reindex(apps.index).fillna(0.0)
    trend = (recent / earlier.where(earlier > 0) - 1.0).astype("float64")
    months = full_months(last, 3)
    maint = b.maintenance(last)
    maint = maint[(maint["month"] >= pd.Timestamp(months[0])) & (maint["month"] <= pd.Timestamp(months[-1]))]
    incidents = (maint.groupby("app_id")["incidents"].sum().astype("float64") / len(months)).reindex(apps.index).fillna(0.0)

    # each app's findings and figures looked up in dicts built once (not a filter per app)
    active_of: dict[str, list[tuple[str, str]]] = {}
    for a, rule, reason in zip(active["app_id"], active["rule"], active["reason"], strict=True):
        active_of.setdefault(str(a), []).append((rule, reason))
    snoozed_of: dict[str, list[tuple[str, Any]]] = {}
    for a, rule, until in zip(snoozed["app_id"], snoozed["rule"], snoozed["snoozed_until"], strict=True):
        snoozed_of.setdefault(str(a), []).append((rule, until))
    cost_of, value_of, hours_of = rr["cost"].to_dict(), rr["value"].to_dict(), rr["maintenance_hours"].to_dict()
    incidents_of, trend_of = incidents.to_dict(), trend.to_dict()

    rows: list[dict[str, Any]] = []
    for app_id, name, team in zip(apps.index, apps["name"], apps["team"], strict=True):
        a = str(app_id)
        mine = active_of.get(a, [])
        rules = [rule for rule, _ in mine]
        reasons_by_rule = dict(mine)
        savings, at_risk = float(cost_of[a]), float(value_of[a])
        effect = savings - at_risk
        per_month = float(incidents_of[a])
        growth = float(trend_of[a]) if pd.notna(trend_of[a]) else float("nan")
        effect_words = (
            f"retiring it would raise portfolio net by {_money(effect, cur)} a year "
            f"(saves {_money(savings, cur)}, loses {_money(at_risk, cur)} of value)"
            if effect >= 0
            else f"it makes {_money(-effect, cur)} a year net: retiring it would lower portfolio net by that much"
        )
        reasons: list[str] = []
        retire_hits = [r for r in rules if r in RETIRE_RULES]
        if retire_hits and effect >= 0:
            action = "retire"
            reasons = [effect_words, *(reasons_by_rule[r] for r in rules)]
        elif rules and effect < 0 and ("unreliable" in rules or "maintenance_sink" in rules or per_month >= HARDEN_INCIDENTS_PER_MONTH):
            action = "harden"
            why = [reasons_by_rule[r] for r in ("unreliable", "maintenance_sink") if r in rules]
            if per_month >= HARDEN_INCIDENTS_PER_MONTH:
                why.append(f"{per_month:.1f} incidents a month over {months[0]:%Y-%m}..{months[-1]:%Y-%m}")
            reasons = [effect_words, *why, *(reasons_by_rule[r] for r in rules if r not in ("unreliable", "maintenance_sink"))]
        elif rules:
            action = "review"
            reasons = [*(reasons_by_rule[r] for r in rules), effect_words]
        elif effect > 0:
            action = "review"
            reasons = [f"no retirement rule fires, but it costs more than it brings at run-rate: {effect_words}"]
        elif per_month >= HARDEN_INCIDENTS_PER_MONTH:
            action = "harden"
            reasons = [f"{per_month:.1f} incidents a month over {months[0]:%Y-%m}..{months[-1]:%Y-%m}", effect_words]
        elif effect < 0 and pd.notna(growth) and growth >= INVEST_GROWTH:
            action = "invest"
            reasons = [f"value grew {growth:.0%} quarter over quarter and no rule fires", effect_words]
        else:
            action = "keep"
            reasons = ["no retirement rule fires", effect_words]
        mine_snoozed = snoozed_of.get(a, [])
        until = None
        if mine_snoozed:
            until = mine_snoozed[0][1]
            reasons.append(f"a recorded decision snoozes {', '.join(rule for rule, _ in mine_snoozed)} until {until}")
        rows.append(
            {
                "app_id": a, "name": name, "team": team, "action": action, "reason": "; ".join(reasons),
                "rules": ", ".join(rules), "net_effect": effect, "annual_savings": savings, "value_at_risk": at_risk,
                "freed_hours": float(hours_of[a]), "incidents_per_month": per_month,
                "value_trend": growth, "snoozed_until": until,
            }
        )  # fmt: skip
    out = pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)
    return out.sort_values(["net_effect", "app_id"], ascending=[False, True]).reset_index(drop=True)


def retire_all(recs: pd.DataFrame) -> dict[str, float]:
    """Totals over the apps whose action is retire and over all retirement candidates.

    Keys: retire_savings, retire_value_at_risk, retire_net_effect (the apps recommended for
    retirement), candidates_savings, candidates_value_at_risk, candidates_net_effect (every app with
    an active finding, whatever its recommendation).
    """
    retire = recs[recs["action"] == "retire"]
    cands = recs[recs["rules"] != ""]
    return {
        "retire_savings": float(retire["annual_savings"].sum()),
        "retire_value_at_risk": float(retire["value_at_risk"].sum()),
        "retire_net_effect": float(retire["net_effect"].sum()),
        "candidates_savings": float(cands["annual_savings"].sum()),
        "candidates_value_at_risk": float(cands["value_at_risk"].sum()),
        "candidates_net_effect": float(cands["net_effect"].sum()),
    }


def render_text(recs: pd.DataFrame, currency: str, app_ids: list[str] | None = None) -> str:
    """The recommendations as plain text for the CLI: one block per app, no wide table."""
    if app_ids is not None:
        recs = recs[recs["app_id"].isin(app_ids)]
    if recs.empty:
        return "recommendations: (no apps)\n"
    width = max(len(str(a)) for a in recs["app_id"])
    lines = ["recommendation per app (net effect = change of annual portfolio net if retired):"]
    for app_id, action, effect, reason in zip(recs["app_id"], recs["action"], recs["net_effect"], recs["reason"], strict=True):
        lines.append(f"  {app_id!s:<{width}}  {action:<7} net effect {_money(float(effect), currency):>18}")
        lines += textwrap.wrap(str(reason), 110, initial_indent=" " * (width + 4), subsequent_indent=" " * (width + 4))
    return "\n".join(lines) + "\n"
