"""Issue 10 on the pages: one recommendation per app on every surface (Retirement, Maintenance, App,
CLI), since-launch figures on the App page, unregistered spend on Finance and Data health.

Real demo database (both backends through the fixtures of test_pages), Streamlit AppTest, and the
real ``mlportfolio report`` for the CLI.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from decimal import Decimal

import pytest

from portfolio import cli, pnl, recommend, records, storage
from portfolio.dashboard import fmt
from portfolio.facts import load_facts
from portfolio.periods import default_period
from tests.dashboard.test_pages import (  # noqa: F401 - fixtures golden_db, demo_url, own_demo_url
    TODAY,
    app_test,
    assert_clean,
    demo_cfg,
    demo_url,
    domain_facts,
    golden_db,
    metrics,
    open_page,
    own_demo_url,
)


def test_the_same_recommendation_on_every_surface(demo_url: str) -> None:  # noqa: F811 - the fixture
    f = domain_facts(demo_url)
    cfg = demo_cfg(demo_url)
    recs = recommend.recommendations(f, cfg).set_index("app_id")
    names = dict(zip(recs.index, recs["name"], strict=True))
    by_name = {names[a]: recs.at[a, "action"] for a in recs.index}

    retirement_page = open_page("retirement")
    assert_clean(retirement_page)
    shown = retirement_page.dataframe[0].value
    assert {n: a for n, a in zip(shown["name"], shown["action"], strict=True)} == {n: by_name[n] for n in shown["name"]}

    maintenance_page = open_page("maintenance")
    assert_clean(maintenance_page)
    ranked = maintenance_page.dataframe[1].value
    ranked = ranked[ranked["recommendation"].notna()]  # a retired app with hours in the period has none
    assert len(ranked) > 5
    assert {n: a for n, a in zip(ranked["name"], ranked["recommendation"], strict=True)} == {n: by_name[n] for n in ranked["name"]}

    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["report", "retirement", "--demo", "--db", demo_url, "--today", TODAY.isoformat()]) == 0
    text = out.getvalue()
    cands = [a for a in recs.index if recs.at[a, "rules"]]
    assert cands
    for a in cands:
        assert any(line.split()[:2] == [a, recs.at[a, "action"]] for line in text.splitlines()), a
    total = recommend.retire_all(recs.reset_index())
    assert f"net effect {total['candidates_net_effect']:+,.0f} USD/yr" in text

    # the apps where the two old pages contradicted each other, each with one answer everywhere
    for app_id in ("legacy-image-tagger", "eta-predictor"):
        at = app_test()
        at.query_params["app"] = app_id
        open_page("app", at)
        assert_clean(at)
        info = " ".join(i.value for i in at.info)
        assert f"Recommendation: {recs.at[app_id, 'action']}" in info
    assert recs.at["legacy-image-tagger", "action"] == "retire"
    assert recs.at["eta-predictor", "action"] != "retire"  # it makes money: harden or review, never "drop"


def test_app_page_counts_from_launch_with_a_build_cost(demo_url: str) -> None:  # noqa: F811 - the fixture
    f = domain_facts(demo_url)
    cfg = demo_cfg(demo_url)
    row = pnl.app_pnl(f, cfg, default_period(TODAY)).set_index("app_id").loc["search-ranking"]
    assert row["cumulative_since"] == "launch"  # demo.toml gives it a build cost
    at = app_test()
    at.query_params["app"] = "search-ranking"
    open_page("app", at)
    assert_clean(at)
    m = metrics(at)
    assert m["Cumulative net since launch"][0] == fmt.money(row["cumulative_net"])
    assert m["Payback month"][0] == fmt.month(row["payback_month"], missing="not yet")


@pytest.mark.parametrize("page", ["finance", "health"])
def test_unregistered_spend_has_its_own_line(own_demo_url: str, page: str) -> None:  # noqa: F811 - the fixture
    engine = storage.make_engine(own_demo_url)
    day = TODAY.replace(day=1)
    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, [  # the writers' path: it keeps the monthly rollup too
            records.CostRecord(source="demo", app_id="BrightPathMatrix", day=day, category="infra", service="ec2",
                               amount=Decimal("1234.5"), currency="USD", billing_period=day.strftime("%Y-%m")),
        ])  # fmt: skip
    at = open_page(page)
    assert_clean(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "Unregistered spend:" in warnings and "1,23" in warnings and "1 tag value(s)" in warnings
    table = next(d.value for d in at.dataframe if "tag_value" in d.value.columns)
    assert list(table[["tag_value", "amount"]].itertuples(index=False, name=None)) == [("BrightPathMatrix", 1234.5)]
    if page == "health":
        assert any('id = "BrightPathMatrix"' in c.value for c in at.code)
    # never an app: the App picker does not offer it
    fresh = load_facts(engine, today=TODAY)
    assert "BrightPathMatrix" not in set(pnl.inventory(fresh, demo_cfg(own_demo_url))["app_id"])
    assert "BrightPathMatrix" not in at.selectbox(key="app_pick").options if page == "app" else True
