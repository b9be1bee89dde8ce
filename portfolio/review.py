"""The quarterly portfolio review: the document a director takes to the meeting.

``mlportfolio report review --quarter 2026Q3 --format html|md`` and the dashboard's download
render the same :class:`Review`. The portfolio comes first: its totals against the previous
quarter (hard and soft value apart), the same by team, the retirement candidates and decisions in a
few lines. Details follow: the P&L by app with the change against the previous quarter, retirement
candidates with reasons and savings, the decisions taken in the quarter, the retirements carried
out in it (projected against realised savings, leftover spend), proposals pending, plan against
actual and value lost to downtime, each capped at :data:`DETAIL_ROWS` rows and a last row "and K
other apps" (which, in the P&L and the candidates, sums the rest, so every money column still adds
up to the summary's totals, and a 1,000-app portfolio's review stays a document, not a listing).

Without ``--quarter`` it is the last **complete** quarter (:func:`last_complete_quarter`). A
quarter still in progress can be asked for, and then the document says so at its top: its numbers
stop at the last complete day and are not comparable with a whole quarter. Amounts are written in
the reporting currency (:mod:`portfolio.money`).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from portfolio import lifecycle, money, plan, pnl, retirement, safe, verify
from portfolio.books import of as books_of
from portfolio.config import Config
from portfolio.facts import Facts
from portfolio.periods import Period

_QUARTER = re.compile(r"^(\d{4})\s*-?\s*Q([1-4])$", re.I)


def quarter_period(quarter: str, today: date) -> Period:
    """``"2026Q3"`` -> Period(2026-07-01, 2026-09-30), cut at the last complete day."""
    m = _QUARTER.match(quarter.strip())
    if not m:
        raise ValueError(f"quarter {quarter!r}: expected YYYYQn, e.g. 2026Q3")
    year, q = int(m.group(1)), int(m.group(2))
    start = date(year, 3 * q - 2, 1)
    end = (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)
    last = today - timedelta(days=1)
    if start > last:
        raise ValueError(f"quarter {quarter}: has not started yet (last complete day {last})")
    return Period(start, min(end, last))


def last_complete_quarter(today: date) -> str:
    """``"2026Q3"``: the latest quarter whose every day is complete by the last complete day (today - 1)."""
    last = today - timedelta(days=1)
    year, q = last.year, (last.month - 1) // 3 + 1
    q_end = (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)
    if last < q_end:
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return f"{year}Q{q}"


def _quarter_end(quarter: str) -> date:
    m = _QUARTER.match(quarter.strip())
    assert m is not None
    year, q = int(m.group(1)), int(m.group(2))
    return (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)


@dataclass(frozen=True)
class Review:
    quarter: str
    period: Period
    currency: str
    kpis: dict[str, float]
    apps: pd.DataFrame  # app_pnl of the quarter (prev_* = previous quarter)
    candidates: pd.DataFrame  # retirement.candidates
    decisions: pd.DataFrame  # decisions taken in the quarter
    active_apps: int = 0
    retired_apps: int = 0
    # issue 13: retirements carried out in the quarter (retirement ledger rows), their leftover spend,
    # proposals waiting, plan against actual as of the quarter's end, value lost to downtime in it
    retirements: pd.DataFrame | None = None
    leftover: pd.DataFrame | None = None
    proposals: pd.DataFrame | None = None
    plan: pd.DataFrame | None = None
    plan_error: str | None = None
    downtime: pd.DataFrame | None = None

    @property
    def in_progress(self) -> bool:
        """The quarter has not ended by the last complete day: its numbers are partial."""
        return self.period.end < _quarter_end(self.quarter)

    @property
    def notice(self) -> str | None:
        """What the top of the document says about a quarter in progress (None for a complete one)."""
        if not self.in_progress:
            return None
        return (
            f"{self.quarter} is in progress: these numbers run from {self.period.start} to {self.period.end} "
            f"(the last complete day), not to {_quarter_end(self.quarter)}, and are not comparable with a whole "
            "quarter."
        )

    def money(self, value: object) -> str:
        return money.fmt(value, self.currency)


def build(facts: Facts, cfg: Config, quarter: str | None = None) -> Review:
    """The review of ``quarter`` (``"2026Q3"``; default: the last complete quarter)."""
    quarter = quarter or last_complete_quarter(facts.today)
    period = quarter_period(quarter, facts.today)
    apps = pnl.app_pnl(facts, cfg, period)
    kpis = pnl.kpis(facts, cfg, period)
    findings = retirement.retirement_findings(facts, cfg)
    cands = retirement.candidates(findings)
    dec = facts.decisions
    if not dec.empty:
        days = pd.to_datetime(dec["decided_at"], utc=True).dt.date
        dec = dec[(days >= period.start) & (days <= period.end)].sort_values("decided_at")
    inventory = pnl.inventory(facts, cfg)
    inventory = inventory[inventory["app_id"] != pnl.UNALLOCATED]
    retired = int((inventory["stage"] == "retired").sum())
    books = books_of(facts, cfg)
    ledger = verify.retirement_ledger(books)
    if not ledger.empty:
        ledger = ledger[[d is not None and period.start <= d <= period.end for d in ledger["retired_on"]]]
    left = verify.leftover_spend(books)
    left = left[left["app_id"].isin(set(ledger["app_id"]))] if not left.empty else left
    try:
        plan_frame, plan_error = plan.plan_vs_actual(books, period.end), None
    except plan.PlanError as exc:
        plan_frame, plan_error = None, str(exc)
    return Review(
        quarter.upper().replace(" ", "").replace("-", ""), period, cfg.currency,
        {k: float(v) for k, v in kpis.items()}, apps, cands, dec, len(inventory) - retired, retired,
        retirements=ledger.reset_index(drop=True), leftover=left, proposals=lifecycle.open_proposals(facts),
        plan=plan_frame, plan_error=plan_error, downtime=verify.downtime_loss(books, period.start, period.end),
    )  # fmt: skip


def _pct(x: object) -> str:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if pd.isna(v) else f"{v:.0%}"


class _Untrusted(str):
    """Text from the data (app ids, teams, reasons, who decided, rationales): escaped where it is rendered."""


def _u(value: object) -> str:
    return _Untrusted(value)


#: rows per app (or team) a details table lists before one "and K others" row that sums the rest
DETAIL_ROWS = 25

Table = tuple[str, list[str], list[list[str]]]


def _others(count: int, noun: str) -> _Untrusted:
    return _Untrusted(f"and {count:,} other {noun}")  # plain text either way; marked so it is escaped like names


def _team_rows(r: Review) -> list[list[str]]:
    """Per team: apps, value, cost, net and the previous quarter's net, largest net first (capped, then the rest)."""
    if r.apps.empty:
        return []
    apps = r.apps[r.apps["app_id"] != pnl.UNALLOCATED] if "app_id" in r.apps.columns else r.apps
    teams = (
        apps.assign(team=apps["team"].fillna("").astype(str))
        .groupby("team", as_index=False)
        .agg(apps=("app_id", "nunique"), value=("value", "sum"), cost=("cost", "sum"), net=("net", "sum"),
             prev_net=("prev_net", lambda s: s.sum(min_count=1)))  # fmt: skip
        .sort_values(["net", "team"], ascending=[False, True])
    )
    _m = r.money
    rows: list[list[str]] = [
        [_u(t["team"]), f"{t['apps']:,}", _m(t["value"]), _m(t["cost"]), _m(t["net"]), _m(t["prev_net"])]
        for t in teams.head(DETAIL_ROWS).to_dict("records")
    ]
    rest = teams.iloc[DETAIL_ROWS:]
    if not rest.empty:
        rows.append([_others(len(rest), "teams"), f"{int(rest['apps'].sum()):,}", _m(rest["value"].sum()),
                     _m(rest["cost"].sum()), _m(rest["net"].sum()), _m(rest["prev_net"].sum(min_count=1))])  # fmt: skip
    return rows


def _summary(r: Review) -> list[Table]:
    """The portfolio first: totals against the previous quarter, by team, candidates and decisions in a line each."""
    k = r.kpis
    _m = r.money
    cands = r.candidates
    summary = [
        ["Value", _m(k.get("value")), _m(k.get("prev_value"))],
        ["Hard value (experiment, observational)", _m(k.get("hard_value")), ""],
        ["Soft value (estimates)", _m(k.get("soft_value")), ""],
        ["Cost", _m(k.get("cost")), _m(k.get("prev_cost"))],
        ["Net", _m(k.get("net")), _m(k.get("prev_net"))],
        ["ROI", _pct(k.get("roi")), _pct(k.get("prev_roi"))],
        ["Apps", f"{r.active_apps} active apps ({r.retired_apps} retired)", ""],
        ["Retirement candidates", f"{k.get('candidates', 0):.0f}", ""],
    ]
    retire = []
    if not cands.empty:
        retire = [
            ["Candidates", f"{len(cands):,}"],
            ["Annual savings if all retired", _m(cands["annual_savings"].sum())],
            ["Value at risk a year", _m(cands["value_at_risk"].sum())],
            ["Net effect a year if all retired", _m(cands["annual_savings"].sum() - cands["value_at_risk"].sum())],
        ]
        by_rule = pd.Series([rule.strip() for rules in cands["rules"] for rule in str(rules).split(",")]).value_counts()
        retire += [[_u(f"Apps the rule {rule} fires for"), f"{int(n):,}"] for rule, n in sorted(by_rule.items())]
    return [
        ("Summary (this quarter vs previous)", ["", "This quarter", "Previous quarter"], summary),
        ("By team", ["Team", "Apps", "Value", "Cost", "Net", "Net prev. quarter"], _team_rows(r)),
        ("Retirement candidates in short", ["", ""], retire),
        ("Decisions in short", ["", ""], [["Decisions taken this quarter", f"{len(r.decisions):,}"]] if len(r.decisions) else []),
    ]


def _details(r: Review) -> list[Table]:
    """Row by row, after the summary: each table lists at most DETAIL_ROWS rows, then one row for the rest.

    P&L by app: the apps with the largest net first; the last row sums the others, so every money
    column still adds up to the summary's totals. Candidates: by net effect of retiring them.
    """
    _m = r.money
    apps = r.apps.sort_values(["net", "app_id"], ascending=[False, True]) if not r.apps.empty else r.apps
    app_rows = [
        [
            _u(a["app_id"]),
            _u(a["team"]),
            _m(a["value"]),
            _m(a["cost"]),
            _m(a["net"]),
            _m(a["prev_net"]),
            "–" if pd.isna(a["prev_net"]) else _m(a["net"] - a["prev_net"]),
            _pct(a["roi"]),
        ]
        for a in apps.head(DETAIL_ROWS).to_dict("records")
    ]
    rest = apps.iloc[DETAIL_ROWS:]
    if not rest.empty:
        prev = rest["prev_net"].sum(min_count=1)
        app_rows.append([
            _others(len(rest), "apps"), "", _m(rest["value"].sum()), _m(rest["cost"].sum()), _m(rest["net"].sum()),
            _m(prev), "–" if pd.isna(prev) else _m(rest["net"].sum() - prev), "",
        ])  # fmt: skip
    cands = r.candidates
    cand_rows = [
        [_u(c["app_id"]), _u(c["team"]), _u(c["rules"]), _u(c["reasons"]), _m(c["annual_savings"]), _m(c["value_at_risk"])]
        for c in cands.head(DETAIL_ROWS).to_dict("records")
    ]
    crest = cands.iloc[DETAIL_ROWS:]
    if not crest.empty:
        cand_rows.append([_others(len(crest), "candidates"), "", "", "", _m(crest["annual_savings"].sum()),
                          _m(crest["value_at_risk"].sum())])  # fmt: skip
    decisions = r.decisions
    dec_rows = [
        [
            f"{d['decided_at']:%Y-%m-%d}",
            _u(d["app_id"]),
            _u(d["decision"]),
            _u(d["decided_by"]),
            _u(d["rationale"]),
            str(d["next_review"] or ""),
        ]
        for d in decisions.head(DETAIL_ROWS).to_dict("records")
    ]
    if len(decisions) > DETAIL_ROWS:
        dec_rows.append(["", _others(len(decisions) - DETAIL_ROWS, "decisions"), "", "", "", ""])
    return [
        (f"P&L by app (largest net first, {DETAIL_ROWS} at most)",
         ["App", "Team", "Value", "Cost", "Net", "Net prev. quarter", "Change", "ROI"], app_rows),
        (f"Retirement candidates (by net effect of retiring them, {DETAIL_ROWS} at most)",
         ["App", "Team", "Rules", "Reasons", "Annual savings", "Value at risk"], cand_rows),
        ("Decisions taken this quarter", ["Date", "App", "Decision", "By", "Rationale", "Next review"], dec_rows),
        *_savings_tables(r),
    ]  # fmt: skip


def _tables(r: Review) -> list[tuple[int, str, list[str], list[list[str]]]]:
    """Every section in order, with its heading level: the summary first, then "Details" row by row."""
    return [(2, *t) for t in _summary(r)] + [(2, "Details", [], [])] + [(3, *t) for t in _details(r)]


def _opt(frame: pd.DataFrame | None) -> list[dict[Any, Any]]:
    return [] if frame is None or frame.empty else frame.to_dict("records")


def _capped(rows: list[list[str]], what: str) -> list[list[str]]:
    """At most DETAIL_ROWS rows, then one row saying how many more there are (see the CLI reports)."""
    if len(rows) <= DETAIL_ROWS:
        return rows
    width = len(rows[0])
    return [*rows[:DETAIL_ROWS], [_u(f"and {len(rows) - DETAIL_ROWS:,} other {what} (mlportfolio report)"), *[""] * (width - 1)]]


def _savings_tables(r: Review) -> list[tuple[str, list[str], list[list[str]]]]:
    """Issue 13's sections: retirements carried out, leftover spend, proposals pending, plan variance, downtime."""
    _m = r.money
    ret_rows = [
        [_u(x["app_id"]), str(x["retired_on"]), _u(x["approved_by"] or "–"), _m(x["projected_annual_savings"]),
         _m(x["realised_annual_savings"]), _pct(x["realised_pct"]), _m(x["leftover_spend"]), _u(x["status"])]
        for x in _opt(r.retirements)
    ]  # fmt: skip
    left_rows = [
        [_u(x["app_id"]), _u(x["source"]), _u(x["category"]), _u(x["service"]), _m(x["leftover_spend"]),
         str(x["last_day"]), _m(x["daily_rate"])]
        for x in _opt(r.leftover)
    ]  # fmt: skip
    prop_rows = [
        [f"{x['at']:%Y-%m-%d}", _u(x["app_id"]), _u(x["action"]), _u(x["actor"]), str(x["planned"] or x["next_review"] or "–"),
         _m(x["projected_annual_savings"]), _m(x["value_at_risk"]), _u(x["rationale"])]
        for x in _opt(r.proposals)
    ]  # fmt: skip
    plan_rows = [
        [_u(x["app_id"]), _m(x["expected_annual_value"]), _m(x["actual_annual_value"]), _pct(x["value_pct_of_plan"]),
         _m(x["expected_annual_run_cost"]), _m(x["actual_annual_run_cost"]), _m(x["net_variance"]), _u(x["status"])]
        for x in _opt(r.plan)
    ]  # fmt: skip
    if r.plan_error:
        plan_rows = [[_u(f"business cases not read: {r.plan_error}"), "", "", "", "", "", "", ""]]
    down_rows = [
        [_u(x["app_id"]), f"{x['month']:%Y-%m}", f"{x['availability']:.2%}", f"{x['slo']:.2%}", _m(x["value"]),
         _m(x["value_lost"])]
        for x in _opt(r.downtime)
    ]  # fmt: skip
    ret_rows, left_rows, prop_rows, plan_rows, down_rows = (
        _capped(rows, what) for rows, what in ((ret_rows, "retirements"), (left_rows, "leftover lines"),
                                               (prop_rows, "proposals"), (plan_rows, "business cases"),
                                               (down_rows, "months below the SLO"))
    )  # fmt: skip
    return [
        ("Retirements carried out this quarter (savings projected at approval against realised on the bill)",
         ["App", "Retired on", "Approved by", "Projected / yr", "Realised / yr", "% of projected", "Leftover spend",
          "Status"], ret_rows),
        ("Leftover spend of those retirements (billing after the grace period)",
         ["App", "Source", "Category", "Service", "Leftover spend", "Last billed", "Per day"], left_rows),
        ("Proposals pending approval",
         ["Proposed", "App", "Action", "By", "Planned / review", "Projected savings / yr", "Value at risk / yr",
          "Rationale"], prop_rows),
        ("Plan versus actual (last 12 full months to the quarter's end, a year)",
         ["App", "Plan value", "Actual value", "% of plan", "Plan run cost", "Actual run cost", "Net variance", "Status"],
         plan_rows),
        ("Value lost to downtime (months below the availability SLO)",
         ["App", "Month", "Availability", "SLO", "Value", "Value lost"], down_rows),
    ]  # fmt: skip


def _title(r: Review) -> str:
    return f"ML portfolio review {r.quarter} ({r.period.start} – {r.period.end}, {r.currency})"


def to_markdown(r: Review) -> str:
    out = [f"# {_title(r)}", ""]
    if r.notice:
        out += [f"> **In progress.** {r.notice}", ""]
    for level, title, header, rows in _tables(r):
        out += [f"{'#' * level} {title}", ""]
        if not header:  # a heading over the sections that follow
            continue
        if not rows:
            out += ["None.", ""]
            continue
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        # text from the data could close the row (a newline), split a cell (|), load an image or
        # carry HTML: safe.md_cell makes it plain text; our own figures are written as they are
        out += ["| " + " | ".join(safe.md_cell(c) if isinstance(c, _Untrusted) else c for c in row) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


def to_html(r: Review) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(_title(r))}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}</style>",
        f"</head><body><h1>{e(_title(r))}</h1>",
    ]
    if r.notice:
        parts.append(f"<p class='in-progress'><strong>In progress.</strong> {e(r.notice)}</p>")
    for level, title, header, rows in _tables(r):
        parts.append(f"<h{level}>{e(title)}</h{level}>")
        if not header:  # a heading over the sections that follow
            continue
        if not rows:
            parts.append("<p>None.</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render(facts: Facts, cfg: Config, quarter: str | None = None, fmt: str = "md") -> str:
    review = build(facts, cfg, quarter)
    if fmt == "html":
        return to_html(review)
    if fmt == "md":
        return to_markdown(review)
    raise ValueError(f"format {fmt!r}: expected html or md")
