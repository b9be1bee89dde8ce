"""``mlportfolio``: exit codes, reports, config checks and syncs, in-process and as real processes.

The demo database is built once per session by ``mlportfolio demo --no-serve``, and every test that
touches a database gets its own (``db_url``): SQLite files in temporary folders, or databases of a
real PostgreSQL on the suite's PostgreSQL pass (tests/conftest.py). Sync sources are the real
``github_issues`` connector against a real local HTTP server.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from portfolio import cli, config, maintenance, pnl, records, storage
from portfolio.errors import ConfigError
from portfolio.facts import load_facts
from tests.servers import PayloadServer, Reply, free_port

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 15)
RULES = {"zombie", "underwater", "decaying", "maintenance_sink", "unreliable", "orphaned"}
SECRET = "s3cr3t-token-value-4242"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def cli_demo(make_db_url: Callable[[str], str]) -> Iterator[tuple[str, str]]:
    """(url, printed stdout) of the demo database built by ``mlportfolio demo --no-serve`` as of TODAY,
    on the pass's backend. Tests read it; none writes to it."""
    url = make_db_url("cli_demo")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("PORTFOLIO_")]:
            mp.delenv(key)
        mp.setenv("PORTFOLIO_TODAY", TODAY.isoformat())
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["demo", "--no-serve", "--db", url])
    assert code == 0, err.getvalue()
    yield url, out.getvalue()
    storage.dispose_all()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


ISSUE = {
    "number": 7,
    "title": "Retrain on October data",
    "labels": [{"name": "app:churn"}, {"name": "hours:3"}],
    "created_at": "2026-10-12T08:00:00Z",
    "closed_at": "2026-10-12T11:00:00Z",
    "updated_at": "2026-10-12T11:00:00Z",
    "state": "closed",
}


def github(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
    """GitHub's issues endpoint: one issue for acme/ok; acme/broken answers 401 and echoes the token."""
    if path.startswith("/repos/acme/ok/issues"):
        return Reply(200, [ISSUE])
    if path.startswith("/repos/acme/broken/issues"):
        return Reply(401, {"message": f"Bad credentials ({headers.get('Authorization')})"})
    return Reply(404, {"message": "Not Found"})


@pytest.fixture
def github_server() -> Iterator[PayloadServer]:
    with PayloadServer(github) as server:
        yield server


def write_config(tmp_path: Path, body: str, db: str | None = None) -> Path:
    """A portfolio.toml with one app and ``body``, on the database ``db`` (a test's ``db_url``).

    Without ``db`` it names a SQLite file that is never created: for tests that stop at the config.
    """
    db = db or f"sqlite:///{tmp_path / 'never-opened.db'}"
    path = tmp_path / "portfolio.toml"
    path.write_text(
        f"""
database_url = "{db}"
currency = "USD"
[teams.search]
hourly_rate = 100
capacity_hours = 160
[[apps]]
id = "churn"
name = "Churn predictor"
team = "search"
owner = "jane@example.com"
launched = 2026-01-01
{body}
""",
        encoding="utf-8",
    )
    return path


# ----------------------------------------------------------------------------- demo + reports


def test_demo_no_serve_prints_the_database_path(cli_demo: tuple[str, str]) -> None:
    url, out = cli_demo
    printed = out.strip().splitlines()[-1]
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        assert printed == str(path)
        assert path.is_file()
    else:  # a server's database: its URL, the user name masked like any credential
        assert printed == re.sub(r"://[^@/]+@", "://***@", url)
        assert "***@" in printed
    apps = storage.read_frame(storage.make_engine(url), records.App)
    assert len(apps) >= 20
    runs = storage.read_frame(storage.make_engine(url), records.SyncRun)
    assert runs[["connector", "status"]].values.tolist() == [["demo", "success"]]
    # PORTFOLIO_TODAY is the demo's as-of date: its data ends at the last complete day
    costs = storage.read_frame(storage.make_engine(url), records.CostRecord)
    assert costs.day.max() == date(2026, 11, 14)


def test_demo_database_defaults_to_the_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert cli.demo_database_url() == f"sqlite:///{tmp_path / 'data' / 'ml-portfolio' / 'demo.db'}"
    monkeypatch.setenv("PORTFOLIO_DB_URL", "sqlite:////elsewhere/x.db")
    assert cli.demo_database_url() == "sqlite:////elsewhere/x.db"
    assert cli.demo_database_url("sqlite:////given.db") == "sqlite:////given.db"


def test_report_retirement_csv_lists_all_six_rules(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = cli_demo
    code, out, err = run_cli(capsys, "report", "retirement", "--demo", "--db", url, "--today", TODAY.isoformat(), "--format", "csv")
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    for col in ("app_id", "rule", "reason", "annual_savings", "value_at_risk"):
        assert col in frame.columns
    assert set(frame.rule) == RULES
    assert frame.reason.str.len().min() > 10
    # money in cents
    assert (frame.annual_savings.round(2) == frame.annual_savings).all()
    # numbers behind each finding are JSON objects
    assert all(isinstance(json.loads(n), dict) for n in frame.numbers)


def test_report_pnl_csv_is_monthly_pnl_of_the_period(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = cli_demo
    code, out, err = run_cli(
        capsys, "report", "pnl", "--demo", "--db", url, "--today", TODAY.isoformat(), "--from", "2026-05", "--to", "2026-10", "--format", "csv"
    )
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out))
    cfg = config.demo_config(url)
    expected = pnl.monthly_pnl(load_facts(storage.make_engine(url), today=TODAY), cfg)
    expected = expected[expected.month.map(lambda m: pd.Timestamp(m).strftime("%Y-%m")).between("2026-05", "2026-10")]
    assert list(got.columns) == list(expected.columns)
    for col in ("app_id", "month", "revenue_capture", "cost_avoidance", "value", "value_low", "value_high",
                "infra_cost", "people_cost", "other_cost", "cost", "net", "roi"):  # fmt: skip
        assert col in got.columns
    assert sorted(set(got.month)) == ["2026-05-01", "2026-06-01", "2026-07-01", "2026-08-01", "2026-09-01", "2026-10-01"]
    assert "_unallocated" in set(got.app_id)
    assert len(got) == len(expected)
    exp = expected.reset_index(drop=True)
    # issue 10: exact decimal amounts (not each cell rounded to cents), and every row foots exactly
    for col in ("value", "value_low", "value_high", "infra_cost", "other_cost", "people_cost", "cost", "net"):
        assert got[col].tolist() == pytest.approx(exp[col].astype(float).tolist(), abs=1e-6), col
    assert got.roi.fillna(-999).tolist() == pytest.approx(exp.roi.astype(float).fillna(-999).tolist(), abs=1e-6)
    exact = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)
    for row in exact.to_dict("records"):
        d = {c: Decimal(row[c]) for c in ("value", "infra_cost", "other_cost", "people_cost", "cost", "net")}
        assert d["cost"] == d["infra_cost"] + d["other_cost"] + d["people_cost"], row
        assert d["net"] == d["value"] - d["cost"], row
    cells = [c for row in exact.itertuples(index=False) for c in row]
    assert not [c for c in cells if c in ("None", "nan") or re.fullmatch(r"-0(\.0*)?|.*\de[-+]?\d+", c)]


def test_report_pnl_team_filter_drops_other_teams_and_shared_spend(
    cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = cli_demo
    code, out, _ = run_cli(capsys, "report", "pnl", "--demo", "--db", url, "--today", TODAY.isoformat(), "--team", "risk", "--format", "csv")
    assert code == 0
    got = pd.read_csv(io.StringIO(out))
    assert len(got) > 0
    assert set(got.team) == {"risk"}


def test_report_maintenance_csv(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = cli_demo
    code, out, err = run_cli(
        capsys, "report", "maintenance", "--demo", "--db", url, "--today", TODAY.isoformat(), "--from", "2026-10", "--format", "csv"
    )
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out))
    for col in ("app_id", "month", "klo_hours", "incidents", "mttr_hours", "people_cost"):
        assert col in got.columns
    assert set(got.month) == {"2026-10-01"}  # issue 10: 2026-11 is in progress on 2026-11-15 (month to date)
    expected = maintenance.maintenance_monthly(load_facts(storage.make_engine(url), today=TODAY), config.demo_config(url))
    expected = expected[expected.month.map(lambda m: pd.Timestamp(m) == pd.Timestamp("2026-10-01"))]
    assert got.people_cost.sum() == pytest.approx(expected.people_cost.sum(), abs=0.01 * len(got))
    assert got.klo_hours.sum() == pytest.approx(expected.klo_hours.sum(), abs=0.01 * len(got))


def test_report_formats_agree(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = cli_demo
    base = ["report", "pnl", "--demo", "--db", url, "--today", TODAY.isoformat(), "--from", "2026-10"]
    _, csv_out, _ = run_cli(capsys, *base, "--format", "csv")
    code, json_out, _ = run_cli(capsys, *base, "--format", "json")
    assert code == 0
    rows = json.loads(json_out)
    frame = pd.read_csv(io.StringIO(csv_out))
    assert len(rows) == len(frame) > 0
    assert [(r["app_id"], r["month"]) for r in rows] == list(zip(frame.app_id, frame.month, strict=True))
    assert [r["net"] for r in rows] == pytest.approx(frame.net.tolist(), abs=0.005)
    code, table, _ = run_cli(capsys, *base)
    assert code == 0
    lines = table.splitlines()
    assert lines[0] == "P&L per app and month, 2026-10 (USD)"  # issue 10: full months only
    # header, blank, column names, rule, one line per row, totals, the comparison, month to date
    assert lines[2].split()[:3] == ["app_id", "month", "team"]
    assert len(lines) == 4 + len(frame) + 3
    total = lines[4 + len(frame)]
    assert total.startswith("total: value ")
    assert lines[-2].startswith("compared with 2025-10: value ")
    assert lines[-1] == "2026-11 is in progress (month to date, to 2026-11-14): not included"
    # issue 10: the total is the exact sum of the rows (the CSV's), rounded once for display
    exact = pd.read_csv(io.StringIO(csv_out), dtype=str, keep_default_na=False)
    for key in ("value", "cost", "net"):
        shown = Decimal(total.split(f"{key} ")[1].split()[0].replace(",", ""))
        assert shown == sum(map(Decimal, exact[key])).quantize(Decimal("0.01")), key


# ----------------------------------------------------------------------------- hand-computed P&L


def seed_small_portfolio(tmp_path: Path, capsys: pytest.CaptureFixture[str], db: str) -> Path:
    cfg_path = write_config(tmp_path, "", db)
    code, out, err = run_cli(capsys, "sync", "--config", str(cfg_path))  # writes the app inventory
    assert code == 0, err
    engine = storage.make_engine(db)

    def cost(app: str, day: date, category: str, amount: str) -> records.CostRecord:
        return records.CostRecord(source="bill", app_id=app, day=day, category=category, service="svc", amount=Decimal(amount))

    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, [
            cost("churn", date(2026, 8, 1), "infra", "999"),       # before the period
            cost("churn", date(2026, 9, 10), "infra", "300"),
            cost("churn", date(2026, 10, 5), "infra", "200.004"),
            cost("churn", date(2026, 10, 6), "vendor", "50.003"),
            cost("_unallocated", date(2026, 10, 1), "infra", "70"),
        ])  # fmt: skip
        storage.upsert(conn, records.OutcomeRecord, [
            records.OutcomeRecord(source="ledger", app_id="churn", month=date(2026, 10, 1), kind="revenue_capture",
                                  amount=Decimal("1000"), attribution=0.5, evidence="experiment",
                                  low=Decimal("800"), high=Decimal("1200")),
            records.OutcomeRecord(source="ledger", app_id="churn", month=date(2026, 9, 1), kind="cost_avoidance",
                                  amount=Decimal("600"), attribution=1.0, evidence="estimate"),
        ])  # fmt: skip
        storage.upsert(conn, records.MaintenanceRecord, [
            records.MaintenanceRecord(source="tickets", app_id="churn", day=date(2026, 10, 12), ref="T-1", hours=3, kind="klo"),
        ])  # fmt: skip
    return cfg_path


# (app, month) -> revenue_capture, cost_avoidance, value, value_low, value_high, infra, other, people, cost, net, roi
# people = 3 h x 100/h; other = vendor; net = value - cost; roi = net / cost (6 decimals in CSV)
# issue 10: exact amounts (the old CSV wrote infra 200.00 + other 50.00 + people 300 as a cost of 550.01)
EXPECTED_PNL = [
    pytest.param(("churn", "2026-09-01"), (0, 600, 600, 600, 600, 300, 0, 0, 300, 300, 1.0), id="churn-sep"),
    pytest.param(("churn", "2026-10-01"), (500, 0, 500, 400, 600, 200.004, 50.003, 300, 550.007, -50.007, -0.090921), id="churn-oct-exact"),
    pytest.param(("_unallocated", "2026-10-01"), (0, 0, 0, 0, 0, 70, 0, 0, 70, -70, -1.0), id="unallocated-oct"),
]
PNL_COLUMNS = ["revenue_capture", "cost_avoidance", "value", "value_low", "value_high", "infra_cost", "other_cost",
               "people_cost", "cost", "net", "roi"]  # fmt: skip


@pytest.mark.parametrize(("key", "expected"), EXPECTED_PNL)
def test_report_pnl_hand_computed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str, key: tuple[str, str], expected: tuple[float, ...]
) -> None:
    cfg_path = seed_small_portfolio(tmp_path, capsys, db_url)
    code, out, err = run_cli(
        capsys, "report", "pnl", "--config", str(cfg_path), "--from", "2026-09", "--to", "2026-10", "--today", "2026-11-15", "--format", "csv"
    )
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out))
    assert set(got.month) <= {"2026-09-01", "2026-10-01"}
    row = got[(got.app_id == key[0]) & (got.month == key[1])]
    assert len(row) == 1
    assert row[PNL_COLUMNS].iloc[0].tolist() == pytest.approx(list(expected), abs=1e-9)
    # rows of apps/months without facts carry no money
    others = got[~got.set_index(["app_id", "month"]).index.isin([p.values[0] for p in EXPECTED_PNL])]
    assert (others[["value", "cost"]].abs().sum().sum()) == 0


def test_report_pnl_period_defaults_to_twelve_months_ending_yesterday(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    cfg_path = seed_small_portfolio(tmp_path, capsys, db_url)
    # as of 2026-09-01 the last complete day is 2026-08-31: only August's 999 of infra is in
    code, out, _ = run_cli(capsys, "report", "pnl", "--config", str(cfg_path), "--today", "2026-09-01", "--format", "json")
    assert code == 0
    rows = [r for r in json.loads(out) if r["cost"] or r["value"]]
    assert [(r["app_id"], r["month"], r["infra_cost"]) for r in rows] == [("churn", "2026-08-01", 999.0)]


# ----------------------------------------------------------------------------- check


def test_check_lists_apps_and_connectors_and_what_they_would_sync(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github_server: PayloadServer, db_url: str
) -> None:
    cfg_path = write_config(
        tmp_path,
        f"""
[connectors.tickets]
type = "github_issues"
schedule = "0 6 * * 1-5"
api_url = "{github_server.url}"
repos = ["acme/ok"]
lookback_days = 2
""",
        db_url,
    )
    code, out, err = run_cli(capsys, "check", "--config", str(cfg_path))
    assert code == 0, err
    assert "churn" in out and "team=search" in out
    assert "tickets" in out and "type=github_issues" in out and '"0 6 * * 1-5"' in out
    assert "would sync: full history" in out
    assert run_cli(capsys, "sync", "--config", str(cfg_path))[0] == 0
    code, out, _ = run_cli(capsys, "check", "--config", str(cfg_path))
    assert code == 0
    assert "would sync: since " in out and "2 d look-back" in out


def test_check_compares_the_monthly_rollups_with_the_daily_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    """Issue 15: reports read whole months from rollups the writers keep; check says when a row
    written past them (by hand, here) leaves them out of step, and --rebuild-rollups mends it."""
    cfg_path = seed_small_portfolio(tmp_path, capsys, db_url)
    code, out, err = run_cli(capsys, "check", "--config", str(cfg_path))
    assert code == 0, err
    assert "monthly rollups: in step with the daily rows" in out
    before = run_cli(capsys, "report", "pnl", "--config", str(cfg_path), "--from", "2026-09", "--to", "2026-10",
                     "--today", "2026-11-15", "--format", "csv")[1]  # fmt: skip
    engine = storage.make_engine(db_url)
    with engine.begin() as conn:  # past every writer: a raw INSERT
        conn.execute(sa.insert(storage.table_of(records.CostRecord)), [
            {"source": "bill", "app_id": "churn", "day": date(2026, 9, 20), "category": "infra", "service": "svc",
             "amount": Decimal("10.5"), "currency": "USD", "billing_period": "2026-09", "model": "", "estimated": False},
        ])  # fmt: skip
    code, out, err = run_cli(capsys, "check", "--config", str(cfg_path))
    assert code == 2
    assert "monthly rollup out of step: costrecord of source 'bill': the monthly rollup holds 5 rows summing 1619.007000" in err
    assert "the daily table 6 rows summing 1629.507000" in err and "--rebuild-rollups" in err
    code, out, err = run_cli(capsys, "check", "--config", str(cfg_path), "--rebuild-rollups")
    assert code == 0, err
    assert "monthly rollups rebuilt" in out and "in step" in out
    after = run_cli(capsys, "report", "pnl", "--config", str(cfg_path), "--from", "2026-09", "--to", "2026-10",
                    "--today", "2026-11-15", "--format", "csv")[1]  # fmt: skip
    churn_sep = [line for line in after.splitlines() if line.startswith("churn,2026-09-01")]
    assert churn_sep and ",310.50," in churn_sep[0] and before != after


def test_check_says_when_the_database_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing checked is never said as if it were fine: a database that does not answer is named."""
    cfg_path = write_config(tmp_path, "", f"postgresql+psycopg://user:secret@127.0.0.1:{free_port()}/portfolio")
    code, out, err = run_cli(capsys, "check", "--config", str(cfg_path))
    assert code == 0, err  # the config itself is fine
    assert "warning: monthly rollups not checked: cannot read the database" in err
    assert "warning: unregistered spend not checked: cannot read the database" in err
    assert "secret" not in out + err


BAD_CONFIGS = [
    pytest.param('colour = "blue"\n', "colour", id="unknown-top-level-key"),
    pytest.param('[[apps]]\nid = "x"\nteam = "search"\nstage = "beta"\n', "apps.1.stage", id="bad-stage"),
    pytest.param('[rules]\nunderwater_months = 0\n', "rules.underwater_months", id="rule-out-of-range"),
    pytest.param('[connectors.c]\ntype = "nope"\n', "connectors.c.type", id="unknown-connector-type"),
    pytest.param('[connectors.c]\ntype = "github_issues"\nrepos = ["a/b"]\nschedule = "daily"\n', "connectors.c.schedule", id="bad-cron"),
    pytest.param('[connectors.c]\ntype = "outcomes_file"\npath = "missing.csv"\n', "connectors.c.path", id="missing-file"),
    pytest.param('currency = \n', "not valid TOML", id="not-toml"),
]


@pytest.mark.parametrize(("body", "key"), BAD_CONFIGS)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, key: str) -> None:
    cfg_path = write_config(tmp_path, body)
    code, _, err = run_cli(capsys, "check", "--config", str(cfg_path))
    assert code == 2
    assert key in err
    assert "Traceback" not in err


def test_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "sync", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    assert "nope.toml" in err and "not found" in err


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        pytest.param(["--today", "2026-02-30"], {}, "--today", id="bad-today-flag"),
        pytest.param([], {"PORTFOLIO_TODAY": "yesterday"}, "PORTFOLIO_TODAY", id="bad-today-env"),
        pytest.param(["--from", "2026-11", "--to", "2026-10"], {}, "after the period end", id="from-after-to"),
        pytest.param(["--from", "26-1"], {}, "YYYY-MM", id="bad-month"),
    ],
)
def test_bad_report_arguments_exit_2(
    cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], env: dict[str, str], needle: str,
) -> None:  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = run_cli(capsys, "report", "pnl", "--demo", "--db", cli_demo[0], *argv)
    assert code == 2
    assert needle in err


# ----------------------------------------------------------------------------- sync


def test_sync_one_failing_connector_exits_1_and_the_other_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, github_server: PayloadServer,
    db_url: str,
) -> None:
    monkeypatch.setenv("BROKEN_GH_TOKEN", SECRET)
    cfg_path = write_config(
        tmp_path,
        f"""
[connectors.broken]
type = "github_issues"
api_url = "{github_server.url}"
repos = ["acme/broken"]
token_env = "BROKEN_GH_TOKEN"
[connectors.tickets]
type = "github_issues"
api_url = "{github_server.url}"
repos = ["acme/ok"]
""",
        db_url,
    )
    code, out, err = run_cli(capsys, "sync", "--config", str(cfg_path))
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["broken"].split()[1] == "failed" and "401" in lines["broken"]
    assert lines["tickets"].split()[1] == "success" and "1 rows written" in lines["tickets"]
    assert SECRET not in out + err
    engine = storage.make_engine(db_url)
    rows = storage.read_frame(engine, records.MaintenanceRecord)
    assert rows[["source", "app_id", "hours"]].values.tolist() == [["tickets", "churn", 3.0]]
    # only the one named runs; a second sync writes nothing new
    code, out, _ = run_cli(capsys, "sync", "tickets", "--config", str(cfg_path))
    assert code == 0
    assert out.split()[:2] == ["tickets", "success"] and "0 rows written" in out


def test_sync_unknown_connector_name_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    cfg_path = write_config(tmp_path, "", db_url)
    code, out, err = run_cli(capsys, "sync", "nosuch", "--config", str(cfg_path))
    assert code == 1
    assert "nosuch" in err and "Traceback" not in err


def table_names(url: str) -> list[str]:
    """The tables of the database at ``url``, without creating it (a SQLite file not there has none)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_global_options_work_before_and_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str, make_db_url: Callable[[str], str]
) -> None:
    cfg_path = write_config(tmp_path, "", db_url)
    other = make_db_url("other")
    assert run_cli(capsys, "--config", str(cfg_path), "--db", other, "sync")[0] == 0
    assert run_cli(capsys, "sync", "--config", str(cfg_path), "--db", other)[0] == 0
    assert storage.read_frame(storage.make_engine(other), records.App).app_id.tolist() == ["churn"]
    assert table_names(db_url) == [], "the config's database was used despite --db"


# ----------------------------------------------------------------------------- real processes


def test_subprocess_report_and_config_error(cli_demo: tuple[str, str], tmp_path: Path) -> None:
    url, _ = cli_demo
    env = subprocess_env(PORTFOLIO_DB_URL=url, PORTFOLIO_TODAY=TODAY.isoformat())
    done = subprocess.run(
        [sys.executable, "-m", "portfolio.cli", "report", "retirement", "--demo", "--format", "csv"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(pd.read_csv(io.StringIO(done.stdout)).rule) == RULES

    bad = write_config(tmp_path, '[[apps]]\nid = "x"\nteam = "search"\nslo_availability = 2\n')
    done = subprocess.run(
        [sys.executable, "-m", "portfolio.cli", "check", "--config", str(bad)],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "apps.1.slo_availability" in done.stderr
    assert "Traceback" not in done.stderr


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait(predicate, timeout: float, proc: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited early with {proc.returncode}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.25)
    raise AssertionError(f"condition not met within {timeout}s")


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "portfolio.cli", *argv], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def test_demo_serves_the_dashboard_and_ctrl_c_stops_it(cli_demo: tuple[str, str], tmp_path: Path) -> None:
    url, _ = cli_demo
    port = free_port()
    env = subprocess_env(PORTFOLIO_TODAY=TODAY.isoformat())
    with running(["demo", "--db", url, "--port", str(port), "--no-browser"], env, tmp_path) as proc:
        _wait(lambda: _healthy(port), 120, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out
    assert _port_closed(port), "the dashboard outlived the command"


def test_up_runs_scheduler_and_dashboard_and_sigterm_stops_both(tmp_path: Path, github_server: PayloadServer, db_url: str) -> None:
    cfg_path = write_config(
        tmp_path,
        f"""
[connectors.tickets]
type = "github_issues"
schedule = "0 0 1 1 *"
api_url = "{github_server.url}"
repos = ["acme/ok"]
""",
        db_url,
    )
    port = free_port()
    engine = storage.make_engine(db_url)  # schema first: the child migrates the same database as it starts
    with running(["up", "--config", str(cfg_path), "--port", str(port), "--sync-now"], subprocess_env(), tmp_path) as proc:

        def synced() -> bool:
            runs = storage.read_frame(engine, records.SyncRun)
            return bool(len(runs[runs.status == "success"]))

        _wait(lambda: _healthy(port) and synced(), 120, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "tickets" in out and "next run" in out
    assert _port_closed(port)
    assert storage.read_frame(engine, records.MaintenanceRecord).hours.tolist() == [3.0]


def test_scheduler_without_schedules_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = write_config(tmp_path, '[connectors.c]\ntype = "github_issues"\nrepos = ["a/b"]\n')
    code, _, err = run_cli(capsys, "scheduler", "--config", str(cfg_path))
    assert code == 2
    assert "schedule" in err


def test_headless_scheduler_process_syncs_and_stops_on_sigterm(tmp_path: Path, github_server: PayloadServer, db_url: str) -> None:
    cfg_path = write_config(
        tmp_path,
        f'[connectors.tickets]\ntype = "github_issues"\nschedule = "0 6 * * 1-5"\napi_url = "{github_server.url}"\nrepos = ["acme/ok"]\n',
        db_url,
    )
    engine = storage.make_engine(db_url)  # schema first: the child migrates the same database as it starts
    with running(["scheduler", "--config", str(cfg_path), "--sync-now"], subprocess_env(), tmp_path) as proc:

        def synced() -> bool:
            runs = storage.read_frame(engine, records.SyncRun)
            return bool(len(runs[runs.status == "success"]))

        _wait(synced, 60, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # the job list shows the crontab meaning of 1-5 (Monday to Friday), in UTC
    assert "tickets" in out and "mon,tue,wed,thu,fri" in out
    assert "scheduled sync tickets: success, 1 rows written" in err


# ----------------------------------------------------------------------------- README


def test_readme_quick_start_and_config_example() -> None:
    import re

    import connectors

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert [c.strip() for c in commands] == ["pip install . && mlportfolio demo\nbash scripts/test.sh"]
    example = re.search(r"```toml\n(.*?)```", text, re.S)
    assert example is not None
    cfg = config.loads(example.group(1), where="README.md")
    assert {c.type for c in cfg.connectors.values()} == set(connectors.REGISTRY)
    errors, _ = cli.validate(cfg)
    # only the example's files are missing here; types, schedules and keys are valid
    assert all(".path:" in e for e in errors), errors


def test_up_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    cfg_path = write_config(tmp_path, "", db_url)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run_cli(capsys, "up", "--config", str(cfg_path), "--port", str(port))
    assert code == 1
    assert f"port {port}" in err and "--port" in err


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_review_renders_the_quarter(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    url, _ = cli_demo
    code, out, err = run_cli(
        capsys, "report", "review", "--demo", "--db", url, "--today", TODAY.isoformat(), "--quarter", "2026Q3", "--format", fmt
    )
    assert code == 0, err
    assert "ML portfolio review 2026Q3" in out
    assert "Retirement candidates" in out and ("P&L by app" if fmt == "md" else "P&amp;L by app") in out
    assert ("<table>" in out) is (fmt == "html")


def test_report_review_defaults_to_the_last_complete_quarter(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10: no --quarter is the last complete quarter (2026Q3 on 2026-11-15), not an error; a
    quarter in progress says so at the top of the file."""
    url, _ = cli_demo
    code, out, err = run_cli(capsys, "report", "review", "--demo", "--db", url, "--today", TODAY.isoformat())
    assert code == 0, err
    assert out.startswith("# ML portfolio review 2026Q3 (2026-07-01 – 2026-09-30, USD)\n\n## Summary")
    code, out, err = run_cli(capsys, "report", "review", "--demo", "--db", url, "--today", TODAY.isoformat(), "--quarter", "2026Q4")
    assert code == 0, err
    assert out.splitlines()[2] == (
        "> **In progress.** 2026Q4 is in progress: these numbers run from 2026-10-01 to 2026-11-14 (the last "
        "complete day), not to 2026-12-31, and are not comparable with a whole quarter."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--quarter", "2026Q7"], "--quarter", id="bad-quarter"),
        pytest.param(["--quarter", "2026Q3", "--format", "csv"], "md or html", id="bad-format"),
    ],
)
def test_report_review_bad_arguments(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    url, _ = cli_demo
    code, _out, err = run_cli(capsys, "report", "review", "--demo", "--db", url, "--today", TODAY.isoformat(), *args)
    assert code == 2 and message in err


@pytest.mark.parametrize(
    ("auth", "requested", "expected"),
    [
        pytest.param(False, None, "127.0.0.1", id="no-sign-in-localhost-only"),
        pytest.param(False, "127.0.0.1", "127.0.0.1", id="no-sign-in-explicit-localhost"),
        pytest.param(True, None, "0.0.0.0", id="sign-in-all-interfaces"),
        pytest.param(True, "10.1.2.3", "10.1.2.3", id="sign-in-chosen-address"),
    ],
)
def test_bind_address(auth: bool, requested: str | None, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config.loads(f"[auth]\nenabled = {str(auth).lower()}\n")
    assert cli.bind_address(cfg, requested) == expected
    if not auth:
        assert "localhost (127.0.0.1) only" in capsys.readouterr().err


def test_no_sign_in_refuses_a_public_address() -> None:
    cfg = config.loads("[auth]\nenabled = false\n")
    with pytest.raises(ConfigError, match="localhost only"):
        cli.bind_address(cfg, "0.0.0.0")


# ----------------------------------------------------------------------------- issue 13 reports


def test_report_retirements_and_leftover_are_the_domains(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from decimal import Decimal as D

    from portfolio import verify
    from portfolio.books import Books
    from portfolio.facts import load_facts

    url, _ = cli_demo
    books = Books(load_facts(storage.make_engine(url), today=TODAY), config.demo_config(url))
    ledger = verify.retirement_ledger(books).set_index("app_id")
    code, out, err = run_cli(capsys, "report", "retirements", "--demo", "--db", url, "--today", TODAY.isoformat(), "--format", "csv")
    assert code == 0, err
    rows = {r["app_id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"spam-filter-v1", "visual-search-v1"}
    for app_id, r in rows.items():  # exact, and footed: realised = before - after
        assert D(r["realised_annual_savings"]) == D(r["before_annual_cost"]) - D(r["after_annual_cost"])
        assert D(r["realised_annual_savings"]).quantize(D("0.01")) == ledger.loc[app_id, "realised_annual_savings"].quantize(D("0.01"))
    code, out, err = run_cli(capsys, "report", "leftover", "--demo", "--db", url, "--today", TODAY.isoformat())
    assert code == 0, err
    assert "visual-search-v1" in out and " gpu " in out and "spam-filter-v1" not in out
    left = verify.leftover_spend(books)
    assert f"total: leftover_spend {left['leftover_spend'].sum():,.2f}" in out
    code, out, err = run_cli(capsys, "report", "retirements", "--demo", "--db", url, "--today", TODAY.isoformat())
    assert code == 0, err
    assert "2026: 2 retirement(s) carried out; savings realised $" in out


def test_report_plan_and_downtime(cli_demo: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = cli_demo
    code, out, err = run_cli(capsys, "report", "plan", "--demo", "--db", url, "--today", TODAY.isoformat())
    assert code == 0, err
    assert "ahead of plan" in out and "behind plan" in out
    assert "send-time-uplift" in out and "expired" in out  # the expired assumption, flagged under the table
    code, out, err = run_cli(capsys, "report", "downtime", "--demo", "--db", url, "--today", TODAY.isoformat(), "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and all(r["availability"] < r["slo"] for r in rows)
    # shortfall is written to 6 decimals: value x shortfall agrees within value x 5e-7
    assert all(abs(r["value_lost"] - r["value"] * r["shortfall"]) <= r["value"] * 5e-7 + 0.005 for r in rows)


def test_a_bad_business_case_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    (tmp_path / "cases.csv").write_text("app_id,expected_annual_value\nchurn,12,5\n", encoding="utf-8")
    cfg_path = write_config(tmp_path, '[plan]\nbusiness_case_file = "cases.csv"\n', db_url)
    code, out, err = run_cli(capsys, "report", "plan", "--config", str(cfg_path), "--today", TODAY.isoformat())
    assert code != 0 and out == ""
    assert "cases.csv" in err and "row 2" in err and "Traceback" not in err
