"""The quarterly review renders from the demo portfolio with the domain's own numbers."""

from __future__ import annotations

from datetime import date

import pytest

from portfolio import config, pnl, review, storage
from portfolio.facts import load_facts
from portfolio.periods import Period
from tests.conftest import DEMO_AS_OF

TODAY = date.fromisoformat(DEMO_AS_OF)


@pytest.mark.parametrize(
    ("quarter", "start", "end"),
    [
        pytest.param("2026Q1", date(2026, 1, 1), date(2026, 3, 31), id="q1"),
        pytest.param("2025q4", date(2025, 10, 1), date(2025, 12, 31), id="q4-lowercase"),
        pytest.param("2026Q2", date(2026, 4, 1), date(2026, 6, 14), id="current-quarter-cut-at-last-complete-day"),
    ],
)
def test_quarter_period(quarter, start, end):
    assert review.quarter_period(quarter, TODAY) == Period(start, end)


@pytest.mark.parametrize("bad", ["2026Q5", "Q3", "2026-07", "2027Q1"])
def test_bad_quarter_is_refused(bad):
    with pytest.raises(ValueError, match="quarter"):
        review.quarter_period(bad, TODAY)


def test_review_renders_the_domain_numbers(demo_copy_url):
    url = demo_copy_url
    cfg = config.demo_config(url)
    facts = load_facts(storage.make_engine(url), TODAY)
    md = review.render(facts, cfg, "2026Q1", "md")
    html_doc = review.render(facts, cfg, "2026Q1", "html")
    apps = pnl.app_pnl(facts, cfg, Period(date(2026, 1, 1), date(2026, 3, 31)))
    best = apps.sort_values("net", ascending=False).iloc[0]
    net = f"${best.net:,.0f}"
    assert f"| {best.app_id} |" in md and net in md
    assert f"<td>{best.app_id}</td>" in html_doc and net in html_doc
    for section in ("P&L by app", "Retirement candidates", "Decisions taken this quarter"):
        assert section in md
    assert html_doc.startswith("<!doctype html>")


def test_review_adds_retirements_proposals_plan_and_downtime(demo_copy_url):
    """Issue 13: the review's sections come from portfolio.verify, portfolio.plan and portfolio.lifecycle."""
    from portfolio import lifecycle, plan, verify
    from portfolio.books import Books

    url = demo_copy_url
    cfg = config.demo_config(url)
    facts = load_facts(storage.make_engine(url), TODAY)
    r = review.build(facts, cfg, "2026Q2")
    books = Books(facts, cfg)
    assert list(r.retirements["app_id"]) == ["visual-search-v1"]  # retired 2026-04-01, in Q2; spam-filter-v1 was 2025
    row = verify.retirement_ledger(books).set_index("app_id").loc["visual-search-v1"]
    md = review.to_markdown(r)
    assert "### Retirements carried out this quarter" in md  # under Details (issue 15: the portfolio first)
    line = next(x for x in md.splitlines() if x.startswith("| visual-search-v1 | 2026-04-01"))
    assert r.money(row["projected_annual_savings"]) in line and r.money(row["realised_annual_savings"]) in line
    assert r.money(row["leftover_spend"]) in line
    assert "### Leftover spend of those retirements" in md and "| visual-search-v1 | demo | infra | gpu |" in md
    waiting = lifecycle.open_proposals(facts).iloc[0]
    assert "| email-send-time | retire | nina.petrova" in md and r.money(waiting["projected_annual_savings"]) in md
    for p in plan.plan_vs_actual(books, r.period.end).itertuples():
        assert f"| {p.app_id} | {r.money(p.expected_annual_value)} | {r.money(p.actual_annual_value)} |" in md
    assert "ahead of plan" in md and "behind plan" in md
    loss = verify.downtime_loss(books, r.period.start, r.period.end)
    assert not loss.empty and all(r.money(v) in md for v in loss["value_lost"])
    assert f"| Hard value (experiment, observational) | {r.money(r.kpis['hard_value'])} |" in md
    html_doc = review.to_html(r)
    assert "<h3>Proposals pending approval</h3>" in html_doc and "nina.petrova@example.com" in html_doc


def test_review_puts_the_portfolio_first_and_caps_the_rows_per_app(demo_copy_url, monkeypatch):
    """Issue 15: a 1,000-app review was 1,759 lines, a row per app. The summary (totals, by team,
    candidates and decisions in short) comes first; each details table lists DETAIL_ROWS rows and
    one "and K others" row that sums the rest, so the money columns still add up to the totals."""
    from portfolio import money, retirement

    monkeypatch.setattr(review, "DETAIL_ROWS", 5)
    url = demo_copy_url
    cfg = config.demo_config(url)
    facts = load_facts(storage.make_engine(url), TODAY)
    md = review.render(facts, cfg, "2026Q1", "md")
    html_doc = review.render(facts, cfg, "2026Q1", "html")
    lines = md.split("\n")
    headings = [line for line in lines if line.startswith("#")]
    details = headings.index("## Details")
    assert headings[1:details] == [
        "## Summary (this quarter vs previous)", "## By team", "## Retirement candidates in short", "## Decisions in short",
    ]
    assert [h.split(" (")[0] for h in headings[details + 1 :]] == [
        "### P&L by app", "### Retirement candidates", "### Decisions taken this quarter",
        "### Retirements carried out this quarter", "### Leftover spend of those retirements",
        "### Proposals pending approval", "### Plan versus actual", "### Value lost to downtime",
    ]

    apps = pnl.app_pnl(facts, cfg, Period(date(2026, 1, 1), date(2026, 3, 31))).sort_values(
        ["net", "app_id"], ascending=[False, True]
    )
    start = lines.index(next(h for h in headings if h.startswith("### P&L by app")))
    rows = [line for line in lines[start + 1 :] if line.startswith("| ")][1:]  # no header
    rows = rows[: next(i for i, r in enumerate(rows) if r.startswith("| and "))]
    shown = [r.split(" | ")[0][2:] for r in rows]
    assert shown == list(apps["app_id"].head(5))
    rest = apps.iloc[5:]
    others = f"| and {len(rest)} other apps |  | {money.fmt(rest['value'].sum())} | {money.fmt(rest['cost'].sum())} | {money.fmt(rest['net'].sum())} |"
    assert others in md, [line for line in lines if line.startswith("| and")]
    assert f"<td>and {len(rest)} other apps</td>" in html_doc

    cands = retirement.candidates(retirement.retirement_findings(facts, cfg))
    assert len(cands) > 5
    crest = cands.iloc[5:]
    assert (f"| and {len(crest)} other candidates |  |  |  | {money.fmt(crest['annual_savings'].sum())} | "
            f"{money.fmt(crest['value_at_risk'].sum())} |") in md  # fmt: skip
    teams = apps[apps["app_id"] != pnl.UNALLOCATED].groupby("team")["net"].sum()
    best = teams.sort_values(ascending=False).index[0]
    assert f"| {best} | " in md.split("## By team")[1].split("##")[0]
