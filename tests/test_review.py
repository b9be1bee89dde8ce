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
