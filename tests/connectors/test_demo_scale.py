"""The demo at any size: ``mlportfolio demo --apps N --months M`` and the connector's ``apps`` key.

A larger demo adds derived variants of the written specs (own ids, 20 teams, varied sizes); the
default stays exactly the shipped demo. The sized portfolio is built through the real CLI into a real
database (SQLite file, or PostgreSQL on the suite's PostgreSQL pass) and read back as the reports do.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest

from connectors import demo
from connectors.demo.generate import _generate, portfolio_specs
from portfolio import cli, config, pnl, records, retirement, storage
from portfolio.config import SettingsError
from portfolio.facts import Facts, load_facts

AS_OF = date(2026, 11, 23)
N_APPS = 4 * len(demo.APPS)  # four cycles of the written specs: every team and its three regional siblings
MONTHS = 14
RULES = ("zombie", "underwater", "decaying", "maintenance_sink", "unreliable", "orphaned")


@pytest.fixture(scope="module")
def sized(make_db_url: Callable[[str], str]) -> Iterator[tuple[config.Config, Facts]]:
    url = make_db_url("demo_sized")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("PORTFOLIO_")]:
            mp.delenv(key)
        mp.setenv("PORTFOLIO_TODAY", AS_OF.isoformat())
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["demo", "--no-serve", "--db", url, "--apps", str(N_APPS), "--months", str(MONTHS)])
    assert code == 0, err.getvalue()
    facts = load_facts(storage.make_engine(url), today=AS_OF, aggregate=False)  # the rows as generated
    yield config.demo_config(url), facts
    storage.dispose_all()


def test_default_size_is_the_shipped_demo() -> None:
    assert portfolio_specs(None, 7) == list(demo.APPS)
    assert portfolio_specs(len(demo.APPS), 7) == list(demo.APPS)
    assert demo.Params().apps is None and demo.Params().months == 24
    start = date(2026, 10, 1)
    default = _generate(7, AS_OF, 2, start)
    explicit = _generate(7, AS_OF, 2, start, len(demo.APPS))
    assert [a.app_id for a in default[2]] == [a.app_id for a in demo.APPS]
    assert default[0].costs == explicit[0].costs and default[1] == explicit[1]


def test_sized_inventory_ids_teams_names(sized: tuple[config.Config, Facts]) -> None:
    _, facts = sized
    apps = facts.apps
    assert len(apps) == N_APPS and apps.app_id.is_unique
    assert set(demo.APPS[i].app_id for i in range(len(demo.APPS))) <= set(apps.app_id)
    assert apps.team.nunique() == 20
    shared_names = apps.name.duplicated(keep=False)
    assert 0 < shared_names.sum() < N_APPS / 2, "some derived apps share a display name, most do not"
    # the facts span the requested months, ending at the last complete day
    assert facts.costs.day.min() == date(2025, 10, 1) and facts.costs.day.max() == AS_OF - timedelta(days=1)
    # sizes vary: the derived copies of one spec do not cost the same
    infra = facts.costs[facts.costs.app_id.str.startswith("search-ranking")].groupby("app_id").amount.sum()
    assert len(infra) == 4 and infra.nunique() == 4


def test_every_rule_trips_among_the_derived_apps(sized: tuple[config.Config, Facts]) -> None:
    cfg, facts = sized
    findings = retirement.retirement_findings(facts, cfg)
    written = {a.app_id for a in demo.APPS}
    derived = findings[~findings.app_id.isin(written)]
    for rule in RULES:
        assert (derived.rule == rule).any(), f"no derived app trips {rule}"
    # a derived winner stays clean
    assert not findings.app_id.str.startswith("search-ranking").any()


def test_sized_demo_reconciles_to_the_cent(sized: tuple[config.Config, Facts]) -> None:
    _, facts = sized
    rec = pnl.reconciliation(facts)
    assert len(rec) == MONTHS and rec.ok.astype(bool).all()
    ours = facts.costs[facts.costs.app_id != records.UNALLOCATED]
    assert ours.app_id.nunique() == N_APPS  # every app has spend in the window (retired ones before retiring)


def test_same_seed_same_portfolio_at_any_size() -> None:
    start = date(2026, 11, 1)
    a = _generate(7, AS_OF, 1, start, 60)
    b = _generate(7, AS_OF, 1, start, 60)
    c = _generate(8, AS_OF, 1, start, 60)
    assert a[0].costs == b[0].costs and [x.name for x in a[2]] == [x.name for x in b[2]]
    assert a[0].costs != c[0].costs
    refs = [(m.app_id, m.ref) for m in a[0].maintenance]
    assert len({r for _, r in refs}) == len(refs), "every ticket ref names one app's ticket"


def test_apps_key_in_the_connector_table() -> None:
    cfg = config.loads("[connectors.demo]\ntype = 'demo'\napps = 40\nmonths = 3\n")
    assert demo.Params.of(cfg.connectors["demo"]).apps == 40
    with pytest.raises(SettingsError) as exc:
        config.loads("[connectors.demo]\ntype = 'demo'\napps = 0\n")
    assert (exc.value.connector, exc.value.key) == ("demo", "apps")


def test_cli_rejects_a_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--no-serve", "--db", "sqlite://", "--apps", "0"]) == 2
    assert "--apps" in capsys.readouterr().err
