"""Since launch means since launch (issue 10): build cost, opening net, payback month, lifetime ROI, NPV.

The app launched 2024-01-15; its facts begin in 2025-01: value 150 and cost 50 every month of
2025, so net +100 a month. The discount rate is chosen so that the monthly rate is exactly 1 %:
(1 + r) = 1.01 ** 12. The facts go through a real database on both backends.
"""

from __future__ import annotations

from datetime import date

import pytest

from portfolio import pnl
from portfolio.books import Books, monthly_rate
from portfolio.errors import ConfigError
from portfolio.periods import Period

from .build import app, config, cost, facts, outcome, stored

RATE = 1.01**12 - 1  # monthly 1 %
YEAR_2025 = [date(2025, m, 1) for m in range(1, 13)]
PERIOD = Period(date(2026, 1, 1), date(2026, 6, 30))


def v(k: int) -> float:
    """The discount factor k months after the first month."""
    return 1.01**-k


def rows() -> dict:
    return {
        "apps": [app("a", launched=date(2024, 1, 15))],
        "outcomes": [outcome("a", m, 150) for m in YEAR_2025],
        "costs": [cost("a", m.replace(day=10), 50) for m in YEAR_2025],
    }


def cfg_with(opening: str):
    top = f"[finance]\ndiscount_rate = {RATE!r}\n"
    app_entry = f'[[apps]]\nid = "a"\nteam = "ml"\nlaunched = 2024-01-15\n{opening}' if opening else ""
    return config(app_entry + "\n" + top)


@pytest.mark.parametrize(
    "opening, since, cumulative, payback, lifetime_cost, npv",
    [
        # no opening figures: counted from the first month with data, no payback claimed, NPV to 2025-01
        pytest.param("", "2025-01", 1200.0, None, 600.0, sum(100 * v(k) for k in range(12)), id="no-opening-figures"),
        # build cost 1,000 at launch (k = 0); 2025-01 is k = 12; running sum: -1000 + 100 x 10 = 0 in 2025-10
        pytest.param("build_cost = 1000\n", "launch", 200.0, date(2025, 10, 1), 1000.0 + 600.0,
                     -1000 + sum(100 * v(k) for k in range(12, 24)), id="build-cost-pays-back-in-october"),
        # plus a net of -300 from launch to 2024-12-31 (booked in 2024-12, k = 11): never pays back
        pytest.param("build_cost = 1000\nopening_net = -300\nopening_net_until = 2024-12-31\n", "launch", -100.0, None,
                     1000.0 + 600.0, -1000 - 300 * v(11) + sum(100 * v(k) for k in range(12, 24)), id="opening-net-loss"),
        # opening net 500 covers launch..2025-06-30: Jan..Jun 2025 are not counted again; -1000 + 500 + 100 x 5 = 0 in 2025-11
        pytest.param("build_cost = 1000\nopening_net = 500\nopening_net_until = 2025-06-30\n", "launch", 100.0,
                     date(2025, 11, 1), 1000.0 + 300.0, -1000 + 500 * v(17) + sum(100 * v(k) for k in range(18, 24)),
                     id="opening-net-overlaps-the-facts"),
    ],
)  # fmt: skip
def test_since_launch(engine, opening, since, cumulative, payback, lifetime_cost, npv):
    cfg = cfg_with(opening)
    assert monthly_rate(cfg.finance.discount_rate) == pytest.approx(0.01, abs=1e-15)
    f = stored(engine, **rows())
    r = pnl.app_pnl(f, cfg, PERIOD).set_index("app_id").loc["a"]
    assert r["cumulative_since"] == since
    assert r["cumulative_net"] == pytest.approx(cumulative, abs=1e-9)
    assert r["payback_month"] == payback
    assert r["lifetime_roi"] == pytest.approx(cumulative / lifetime_cost, abs=1e-12)
    assert r["npv"] == pytest.approx(npv, abs=1e-9)
    s = Books(f, cfg).since_launch().set_index("app_id").loc["a"]
    assert s["lifetime_cost"] == pytest.approx(lifetime_cost, abs=1e-9)


def test_hand_computed_npv_literal():
    # -1000 + 100 x (1.01^-12 + ... + 1.01^-23) = -1000 + 100 x 1.01 x (1.01^-12 - 1.01^-24) / 0.01
    assert -1000 + sum(100 * v(k) for k in range(12, 24)) == pytest.approx(8.8193, abs=1e-4)


def test_build_cost_takes_the_inventory_launch_date_and_without_any_the_figure_is_since_data(engine):
    f = stored(engine, **rows())
    cfg = config('[[apps]]\nid = "a"\nteam = "ml"\nbuild_cost = 1000\n')  # launched only in the App table
    r = pnl.app_pnl(f, cfg, PERIOD).set_index("app_id").loc["a"]
    assert (r["cumulative_since"], r["cumulative_net"], r["payback_month"]) == ("launch", 200.0, date(2025, 10, 1))
    bare = facts(apps=[app("a", launched=None)], outcomes=rows()["outcomes"], costs=rows()["costs"])
    r = pnl.app_pnl(bare, cfg, PERIOD).set_index("app_id").loc["a"]
    assert (r["cumulative_since"], r["cumulative_net"], r["payback_month"]) == ("2025-01", 1200.0, None)


def test_opening_figures_of_an_app_from_an_inventory_connector(engine):
    """An app the config does not declare (the App table holds it) takes [finance.opening.<id>]."""
    f = stored(engine, **rows())
    cfg = config(f"[finance]\ndiscount_rate = {RATE!r}\n[finance.opening.a]\nbuild_cost = 1000\n")
    assert cfg.apps == []
    r = pnl.app_pnl(f, cfg, PERIOD).set_index("app_id").loc["a"]
    assert (r["cumulative_since"], r["cumulative_net"], r["payback_month"]) == ("launch", 200.0, date(2025, 10, 1))
    assert r["npv"] == pytest.approx(-1000 + sum(100 * v(k) for k in range(12, 24)), abs=1e-9)


def test_the_demo_gives_some_apps_a_build_cost():
    from portfolio.config import demo_config

    cfg = demo_config("sqlite://")
    assert cfg.apps == []  # the demo's inventory comes from its connector, never from [[apps]]
    assert {a for a, o in cfg.finance.opening.items() if o.build_cost} >= {"search-ranking", "card-fraud"}
    assert cfg.finance.discount_rate == 0.10


def test_default_discount_rate_is_ten_percent():
    assert config().finance.discount_rate == 0.10
    assert monthly_rate(0.10) == pytest.approx(1.1 ** (1 / 12) - 1)


@pytest.mark.parametrize(
    "entry, message",
    [
        pytest.param('opening_net = 5\nopening_net_until = 2024-12-31\n', "needs `launched`", id="opening-net-without-launch"),
        pytest.param('launched = 2024-01-01\nopening_net = 5\n', "go together", id="opening-net-without-until"),
        pytest.param('launched = 2024-01-01\nopening_net = 5\nopening_net_until = 2023-12-31\n', "before launched",
                     id="until-before-launch"),
        pytest.param('launched = 2024-01-01\nbuild_cost = -1\n', "build_cost", id="negative-build-cost"),
    ],
)  # fmt: skip
def test_bad_opening_figures_are_refused_by_name(entry, message):
    with pytest.raises(ConfigError, match=message):
        config(f'[[apps]]\nid = "a"\nteam = "ml"\n{entry}')
