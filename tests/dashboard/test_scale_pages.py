"""Issue 15, usable at 1,000 apps, on the pages themselves (Streamlit AppTest on the demo database).

Charts keyed by app id (two apps renamed to share a name stay two bars) with the top N and one
"all others" bar whose hours add up to the page's totals; long tables searched and paged; the
Retirement page filtered by team and by rule, its what-if taking every candidate shown at once.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from portfolio import maintenance, records, retirement, storage
from portfolio.dashboard import fmt, views
from portfolio.periods import default_period
from tests.dashboard import test_pages
from tests.dashboard.test_pages import (
    TODAY,
    app_test,
    assert_clean,
    demo_cfg,
    domain_facts,
    metrics,
    open_page,
)

# the demo database fixtures of the page tests (the read-only demo, a private copy), shared, not redefined
golden_db = test_pages.golden_db
demo_url = test_pages.demo_url
own_demo_url = test_pages.own_demo_url


def charts_of(at: AppTest) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(spec, the rows it plots) of every Altair chart on the page (single-view charts: their one dataset)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for e in at.main:
        if type(e).__name__ == "UnknownElement" and e.type == "vega_lite_chart":
            spec = json.loads(e.proto.spec)
            frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in e.proto.datasets]
            out.append((spec, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()))
    return out


def klo_chart(at: AppTest) -> pd.DataFrame:
    return next(rows for spec, rows in charts_of(at) if spec.get("title") == "Where the hours go: KLO vs new work")


def test_two_apps_sharing_a_name_stay_two_bars_on_the_maintenance_chart(own_demo_url: str) -> None:
    """The bug of issue 15: the KLO chart keyed bars by display name, so two apps named alike merged into one bar."""
    f = domain_facts(own_demo_url)
    load = maintenance.maintenance_load(f, demo_cfg(own_demo_url), default_period(TODAY))
    first, second = load.sort_values("klo_hours", ascending=False)["app_id"].head(2)
    engine = storage.make_engine(own_demo_url)
    apps = storage.table_of(records.App)
    with engine.begin() as conn:
        conn.execute(sa.update(apps).where(apps.c.app_id.in_([first, second])).values(name="Twin model"))
    at = open_page("maintenance")
    assert_clean(at)
    rows = klo_chart(at)
    klo = rows[rows["kind"] == "KLO (incl. incidents)"].set_index("app_id")
    expected = load.set_index("app_id")["klo_hours"]
    assert klo.loc[first, "label"] == f"Twin model ({first})" and klo.loc[second, "label"] == f"Twin model ({second})"
    assert klo.loc[first, "hours"] == pytest.approx(expected[first])  # not the two apps' hours added up
    assert klo.loc[second, "hours"] == pytest.approx(expected[second])
    ranking = at.dataframe[1].value  # the table names the id too, so the two rows can be told apart
    assert set(ranking[ranking["name"] == "Twin model"]["app_id"]) == {first, second}


def test_the_klo_chart_shows_the_top_15_and_all_others_adding_up_to_the_page_totals(demo_url: str) -> None:
    f = domain_facts(demo_url)
    load = maintenance.maintenance_load(f, demo_cfg(demo_url), default_period(TODAY))
    assert len(load) > views.TOP_N + 1  # the demo has more apps than the chart names
    at = open_page("maintenance")
    assert_clean(at)
    rows = klo_chart(at)
    klo = rows[rows["kind"] == "KLO (incl. incidents)"]
    assert len(klo) == views.TOP_N + 1
    assert f"All others ({len(load) - views.TOP_N} apps)" in set(klo["label"])
    assert klo["hours"].sum() == pytest.approx(load["klo_hours"].sum())
    assert metrics(at)["KLO hours"][0] == fmt.hours(klo["hours"].sum())
    improvement = rows[rows["kind"] == "Improvement"]
    assert improvement["hours"].sum() == pytest.approx(load["improvement_hours"].sum())


def test_the_portfolio_apps_table_is_searched_sorted_and_paged(demo_url: str) -> None:
    at = app_test().run()
    everything = at.dataframe[0].value
    assert len(everything) > 20
    at.selectbox(key="portfolio_apps_size").set_value(10).run()
    assert len(at.dataframe[0].value) == 10
    pages = -(-len(everything) // 10)
    at.number_input(key="portfolio_apps_page").set_value(pages).run()
    last = at.dataframe[0].value
    assert len(last) == len(everything) - 10 * (pages - 1)
    assert list(last["app_id"]) == list(everything["app_id"].iloc[10 * (pages - 1) :])  # same order, last page
    assert any(f"page {pages} of {pages}" in c.value for c in at.caption)

    at.selectbox(key="portfolio_apps_sort").set_value("cost").run()  # over the whole table, not one page
    assert at.number_input(key="portfolio_apps_page").value == pages
    at.number_input(key="portfolio_apps_page").set_value(1).run()
    assert list(at.dataframe[0].value["app_id"]) == list(everything.sort_values("cost", ascending=False)["app_id"].head(10))

    at.text_input(key="portfolio_apps_search").set_value("FRAUD").run()  # a narrower search: back to its pages
    found = at.dataframe[0].value
    assert 0 < len(found) < 10
    assert all("fraud" in (str(r["name"]) + " " + str(r["app_id"])).lower() for _, r in found.iterrows())
    assert at.number_input(key="portfolio_apps_page").value == 1
    assert_clean(at)


def test_open_one_app_lists_every_app_once_sorted_by_name(own_demo_url: str) -> None:
    engine = storage.make_engine(own_demo_url)
    apps = storage.table_of(records.App)
    with engine.begin() as conn:
        conn.execute(sa.update(apps).where(apps.c.app_id.in_(["card-fraud", "kyc-doc-check"])).values(name="Twin model"))
    at = app_test().run()
    assert_clean(at)
    box = at.selectbox(key="portfolio_open_app")
    labels = list(box.options)
    assert labels == sorted(labels, key=str.lower) or labels == sorted(labels)
    assert {"Twin model (card-fraud)", "Twin model (kyc-doc-check)"} <= set(labels)
    box.set_value("kyc-doc-check").run()
    at.button[0].click().run()
    assert at.query_params["app"] == "kyc-doc-check"


def _candidates(url: str) -> pd.DataFrame:
    return retirement.candidates(retirement.retirement_findings(domain_facts(url), demo_cfg(url)))


def test_retirement_filters_candidates_by_team_and_rule(demo_url: str) -> None:
    cands = _candidates(demo_url)
    team = cands["team"].value_counts().index[0]
    at = open_page("retirement")
    at.multiselect(key="retirement_teams").set_value([team]).run()
    assert_clean(at)
    shown = at.dataframe[0].value
    assert list(shown["app_id"]) == list(cands[cands["team"] == team]["app_id"])
    rule = "zombie"
    with_rule = cands[cands["rules"].str.split(", ").map(lambda rules: rule in rules)]
    at.multiselect(key="retirement_teams").set_value([]).run()
    at.multiselect(key="retirement_rules").set_value([rule]).run()
    assert_clean(at)
    assert list(at.dataframe[0].value["app_id"]) == list(with_rule["app_id"])
    assert 0 < len(with_rule) < len(cands)
    assert any(f"{len(with_rule)} of {len(cands)} candidates" in c.value for c in at.caption)


def test_what_if_retires_every_candidate_shown_at_once(demo_url: str) -> None:
    f = domain_facts(demo_url)
    cands = _candidates(demo_url)
    team = cands["team"].value_counts().index[0]
    ids = list(cands[cands["team"] == team]["app_id"])
    assert len(ids) >= 2
    expected = retirement.what_if(f, demo_cfg(demo_url), default_period(TODAY), sorted(ids))
    at = open_page("retirement")
    at.multiselect(key="retirement_teams").set_value([team]).run()
    at.radio(key="what_if_scope").set_value("shown").run()
    assert_clean(at)
    m = metrics(at)
    assert m["Net"] == (fmt.money(expected["after"]["net"]), fmt.money_delta(expected["delta"]["net"]))
    assert m["Cost"] == (fmt.money(expected["after"]["cost"]), fmt.money_delta(expected["delta"]["cost"]))
    assert m["Freed maintenance hours"][0] == fmt.hours(-expected["delta"]["maintenance_hours"])
    # and several chosen apps at once, from a list sorted with the candidates first
    at.radio(key="what_if_scope").set_value("chosen").run()
    options = list(at.multiselect(key="what_if_apps").options)
    assert len(options) == len(set(options))
    at.multiselect(key="what_if_apps").set_value(ids).run()
    assert metrics(at)["Net"] == (fmt.money(expected["after"]["net"]), fmt.money_delta(expected["delta"]["net"]))
