"""Issue 13's dashboard sections (Streamlit AppTest on the real demo database, as of DEMO_AS_OF):
each number on the page is the domain's (portfolio.verify, portfolio.plan), written by the same formatter."""

from __future__ import annotations

from portfolio import plan, verify
from portfolio.books import Books
from portfolio.dashboard import fmt
from portfolio.periods import default_period
from tests.dashboard.test_pages import (  # noqa: F401 (fixtures)
    TODAY,
    app_test,
    assert_clean,
    demo_cfg,
    demo_url,
    domain_facts,
    golden_db,
    metrics,
    open_page,
)


def _books(url: str) -> Books:
    return Books(domain_facts(url), demo_cfg(url))


def test_app_page_shows_the_retirement_verified_on_the_bill(demo_url: str) -> None:  # noqa: F811
    at = app_test()
    at.query_params["app"] = "visual-search-v1"
    open_page("app", at)
    assert_clean(at)
    assert "Retirement verified on the bill" in [s.value for s in at.subheader]
    books = _books(demo_url)
    left = verify.leftover_spend(books)
    warnings = " ".join(w.value for w in at.warning)
    assert f"Leftover spend: {fmt.money(left['leftover_spend'].sum(), decimals=2)} billed after the grace period" in warnings
    ledger = next(d.value for d in at.dataframe if "realised_annual_savings" in d.value.columns)
    row = verify.retirement_ledger(books).set_index("app_id").loc["visual-search-v1"]
    assert float(ledger["realised_annual_savings"].iloc[0]) == float(row["realised_annual_savings"])
    assert ledger["status"].iloc[0] == "verified"
    services = next(d.value for d in at.dataframe if "daily_rate" in d.value.columns)
    assert list(services["service"]) == ["gpu"]


def test_app_page_shows_plan_versus_actual(demo_url: str) -> None:  # noqa: F811
    at = app_test()
    at.query_params["app"] = "support-copilot"
    open_page("app", at)
    assert_clean(at)
    assert "Plan versus actual" in [s.value for s in at.subheader]
    p = plan.plan_vs_actual(_books(demo_url)).set_index("app_id").loc["support-copilot"]
    m = metrics(at)
    assert m["Value a year"] == (fmt.money(p["actual_annual_value"]), fmt.money_delta(p["value_variance"]))
    assert m["Status"][0] == "behind plan"


def test_portfolio_page_shows_hard_and_soft_value_downtime_and_savings(demo_url: str) -> None:  # noqa: F811
    from portfolio import pnl

    f = domain_facts(demo_url)
    period = default_period(TODAY)
    k = pnl.kpis(f, demo_cfg(demo_url), period)
    at = app_test().run()
    assert_clean(at)
    m = metrics(at)
    assert m["Hard value"][0] == fmt.money_short(k["hard_value"]) and m["Soft value"][0] == fmt.money_short(k["soft_value"])
    assert k["hard_value"] + k["soft_value"] == k["value"]
    books = _books(demo_url)
    loss = verify.downtime_loss(books, period.start, period.end)["value_lost"].sum()
    assert m["Value lost to downtime"][0] == fmt.money_short(loss) and loss > 0
    t = verify.year_totals(verify.retirement_ledger(books), 2026)
    assert m["Savings realised 2026"][0] == fmt.money_short(t["realised"]) and t["realised"] > 0


def test_retirement_page_shows_the_ledger_and_leftover_spend(demo_url: str) -> None:  # noqa: F811
    at = open_page("retirement")
    assert_clean(at)
    subheaders = [s.value for s in at.subheader]
    assert "Retirement ledger: savings verified on the bill" in subheaders and "Leftover spend" in subheaders
    table = next(d.value for d in at.dataframe if "realised_annual_savings" in d.value.columns)
    assert set(table["name"]) == {"Spam filter v1", "Visual search v1"}
    assert any("1 retired app(s) still bill" in w.value for w in at.warning)


def test_finance_page_shows_plan_and_flags_the_expired_assumption(demo_url: str) -> None:  # noqa: F811
    at = open_page("finance")
    assert_clean(at)
    subheaders = [s.value for s in at.subheader]
    for section in ("Plan versus actual (business cases)", "Soft value and its assumptions", "Value lost to downtime"):
        assert section in subheaders
    table = next(d.value for d in at.dataframe if "net_variance" in d.value.columns)
    assert list(table["status"]) == ["ahead of plan", "behind plan"]
    assert any("send-time-uplift" in w.value and "expired, unapproved or undeclared" in w.value for w in at.warning)
