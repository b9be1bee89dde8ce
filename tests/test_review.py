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
    assert "## Retirements carried out this quarter" in md
    line = next(x for x in md.splitlines() if x.startswith("| visual-search-v1 | 2026-04-01"))
    assert r.money(row["projected_annual_savings"]) in line and r.money(row["realised_annual_savings"]) in line
    assert r.money(row["leftover_spend"]) in line
    assert "## Leftover spend of those retirements" in md and "| visual-search-v1 | demo | infra | gpu |" in md
    waiting = lifecycle.open_proposals(facts).iloc[0]
    assert "| email-send-time | retire | nina.petrova" in md and r.money(waiting["projected_annual_savings"]) in md
    for p in plan.plan_vs_actual(books, r.period.end).itertuples():
        assert f"| {p.app_id} | {r.money(p.expected_annual_value)} | {r.money(p.actual_annual_value)} |" in md
    assert "ahead of plan" in md and "behind plan" in md
    loss = verify.downtime_loss(books, r.period.start, r.period.end)
    assert not loss.empty and all(r.money(v) in md for v in loss["value_lost"])
    assert f"| Hard value (experiment, observational) | {r.money(r.kpis['hard_value'])} |" in md
    html_doc = review.to_html(r)
    assert "<h2>Proposals pending approval</h2>" in html_doc and "nina.petrova@example.com" in html_doc
