"""Issue 10, "Exports and figures that foot": exact decimal CSV/JSON on a real FOCUS bill, rows
that foot and add up to the totals shown, and the reporting currency on every surface (a EUR
portfolio's review, charts, alerts and CLI). Hand-computed expectations; both backends.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from portfolio import alerts, cli, config, money, pnl, records, report, review, storage, sync
from portfolio.dashboard import charts
from portfolio.facts import load_facts
from portfolio.periods import preset_period

D = Decimal
Q6 = D("0.000001")


# ----------------------------------------------------------------------------- the money formatter


@pytest.mark.parametrize(
    ("value", "currency", "decimals", "expected"),
    [
        pytest.param(1234567.4, "EUR", 0, "€1,234,567", id="euro"),
        pytest.param(-1234.4, "EUR", 0, "-€1,234", id="euro-negative"),
        pytest.param(-0.4, "EUR", 0, "€0", id="no-negative-zero"),
        pytest.param(12.5, "CHF", 2, "12.50 CHF", id="code-suffix"),
        pytest.param(1234.56, "JPY", 2, "¥1,235", id="yen-no-minor-unit"),
        pytest.param(None, "EUR", 0, "–", id="missing"),
    ],
)
def test_money_fmt(value: Any, currency: str, decimals: int, expected: str) -> None:
    assert money.fmt(value, currency, decimals) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(2329329.9099999997, "2329329.91", id="float-noise"),
        pytest.param(-0.0, "0.00", id="negative-zero"),
        pytest.param(275.12800000000004, "275.128", id="micro-units-kept"),
        pytest.param(D("200.004000"), "200.004", id="decimal"),
        pytest.param(1e-7, "0.00", id="below-a-micro-unit"),
        pytest.param(None, "", id="missing-is-empty"),
        pytest.param(float("nan"), "", id="nan-is-empty"),
    ],
)
def test_money_plain_is_exact_text(value: Any, expected: str) -> None:
    assert money.plain(value) == expected


@pytest.mark.parametrize(
    ("value", "compact", "expected"),
    [
        pytest.param(0.2, False, None, id="zero-change-has-no-green-plus"),
        pytest.param(1500.0, False, "+€1,500", id="up"),
        pytest.param(-2_353_030.0, True, "-€2.35M", id="down-compact"),
    ],
)
def test_money_delta(value: float, compact: bool, expected: str | None) -> None:
    assert money.delta(value, "EUR", compact=compact) == expected


# ----------------------------------------------------------------------------- a FOCUS bill that foots


def _sync_focus(tmp_path: Path, engine: Engine, sample: Path) -> config.Config:
    text = (
        f'database_url = "{engine.url}"\n[connectors.bill]\ntype = "focus"\npath = "{sample}"\n'
        'cost_column = "BilledCost"\napp_tag_keys = ["application"]\n'
    )
    cfg = config.loads(text, base_dir=str(tmp_path))
    outcome = sync.sync(cfg, engine, only=["bill"])
    assert outcome.runs[0].status == "success", outcome.runs[0].error
    return cfg


def _bill(sample: Path) -> Decimal:
    """The FOCUS sample's BilledCost, read with the csv module and summed with Decimal (per billing period,
    stored to the micro-unit, as the bill's own total)."""
    by_period: dict[str, Decimal] = defaultdict(Decimal)
    with sample.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by_period[row["BillingPeriodStart"][:7]] += D(row["BilledCost"])
    return sum((v.quantize(Q6, ROUND_HALF_UP) for v in by_period.values()), D(0))


def test_pnl_csv_of_a_real_focus_bill_foots_to_the_cent(tmp_path: Path, engine: Engine, shared_data: Path) -> None:
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    cfg = _sync_focus(tmp_path, engine, sample)
    facts = load_facts(engine, today=date(2024, 10, 15))
    period = preset_period("last-month", facts.today)
    assert period.label == "2024-09"
    frame = report.pnl_report(facts, cfg, period)
    text = report.to_csv(frame)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(r["month"] == "2024-09-01" for r in rows)
    bill = _bill(sample)  # 20.280227 (billing period 2024-09) + 0.240000 (2024-10, charged in September)
    assert bill == D("20.520227")
    # the rows add up to the bill exactly (the old CSV rounded each cell to cents first)
    assert sum(D(r["cost"]) for r in rows) == bill
    assert sum(D(r["infra_cost"]) + D(r["other_cost"]) + D(r["people_cost"]) for r in rows) == bill
    assert sum(D(r["cost"]) for r in rows).quantize(D("0.01")) == bill.quantize(D("0.01"))
    for r in rows:  # every row foots
        assert D(r["cost"]) == D(r["infra_cost"]) + D(r["other_cost"]) + D(r["people_cost"]), r
        assert D(r["net"]) == D(r["value"]) - D(r["cost"]), r
    # the reconciliation export foots too: allocated + unallocated = recorded; recorded - billed = difference
    for r in csv.DictReader(io.StringIO(report.to_csv(pnl.reconciliation(facts)))):
        assert D(r["recorded"]) == D(r["allocated"]) + D(r["unallocated"]), r
        assert D(r["difference"]) == D(r["recorded"]) - D(r["billed"]) == 0, r
    # JSON carries the same exact numbers
    data = json.loads(report.to_json(frame), parse_float=D)
    assert sum(r["cost"] for r in data) == bill


def test_csv_rows_sum_exactly_to_the_cli_total(tmp_path: Path, engine: Engine, db_url: str, shared_data: Path, capsys) -> None:
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    _sync_focus(tmp_path, engine, sample)
    cfg_path = tmp_path / "portfolio.toml"
    cfg_path.write_text(
        f'database_url = "{db_url}"\n[connectors.bill]\ntype = "focus"\npath = "{sample}"\n'
        'cost_column = "BilledCost"\napp_tag_keys = ["application"]\n',
        encoding="utf-8",
    )
    base = ["report", "pnl", "--config", str(cfg_path), "--today", "2024-10-15", "--period", "last-month"]
    assert cli.main([*base, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert cli.main(base) == 0
    table = capsys.readouterr().out
    total = next(line for line in table.splitlines() if line.startswith("total: "))
    assert f"cost {sum(D(r['cost']) for r in rows).quantize(D('0.01'))}" in total
    assert total == "total: value 0.00  value_hard 0.00  value_soft 0.00  cost 20.52  net -20.52"  # issue 13: hard and soft value in every total


# ----------------------------------------------------------------------------- a EUR portfolio

EUR_CONFIG = """
currency = "EUR"
[teams.search]
hourly_rate = 100
capacity_hours = 160
[[apps]]
id = "churn"
name = "Churn predictor"
team = "search"
launched = 2026-01-01
[[apps]]
id = "old-tagger"
team = "search"
stage = "retired"
"""


@pytest.fixture
def eur(engine: Engine, db_url: str) -> tuple[config.Config, Any]:
    """A EUR portfolio, hand-seeded: Q3 2026 value 5,000.00, cost 1,000.40 + 200.00 (+ a USD row left out)."""
    cfg = config.loads(f'database_url = "{db_url}"\n{EUR_CONFIG}')

    def cost(day: date, amount: str, currency: str = "EUR") -> records.CostRecord:
        return records.CostRecord(source="bill", app_id="churn", day=day, category="infra", service="vm",
                                  amount=D(amount), currency=currency)  # fmt: skip

    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, [
            cost(date(2026, 7, 3), "1000.40"), cost(date(2026, 8, 3), "200.00"), cost(date(2026, 8, 4), "77.00", "USD"),
        ])  # fmt: skip
        storage.upsert(conn, records.OutcomeRecord, [
            records.OutcomeRecord(source="ledger", app_id="churn", month=date(2026, 9, 1), kind="revenue_capture",
                                  amount=D("5000"), attribution=1.0, evidence="experiment", currency="EUR"),
        ])  # fmt: skip
    return cfg, load_facts(engine, today=date(2026, 11, 2))


def test_eur_review_is_written_in_euros(eur: tuple[config.Config, Any]) -> None:
    cfg, facts = eur
    md = review.render(facts, cfg, None, "md")  # default: the last complete quarter
    assert md.startswith("# ML portfolio review 2026Q3 (2026-07-01 – 2026-09-30, EUR)")
    assert "| Value | €5,000 |" in md and "| Cost | €1,200 |" in md and "| Net | €3,800 |" in md
    assert "| churn | search | €5,000 | €1,200 | €3,800 |" in md
    assert "| Apps | 1 active apps (1 retired) |" in md
    assert "$" not in md
    html_doc = review.render(facts, cfg, "2026Q3", "html")
    assert "€3,800" in html_doc and "$" not in html_doc and "in-progress" not in html_doc
    assert "In progress" in review.render(facts, cfg, "2026Q4", "html").split("<h2>")[0]


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        pytest.param(date(2026, 12, 2), "2026Q3", id="q4-in-progress"),
        pytest.param(date(2026, 10, 1), "2026Q3", id="day-after-quarter-end"),
        pytest.param(date(2026, 9, 30), "2026Q2", id="last-day-of-quarter-still-in-progress"),
        pytest.param(date(2026, 2, 10), "2025Q4", id="january-february"),
    ],
)
def test_last_complete_quarter(today: date, expected: str) -> None:
    assert review.last_complete_quarter(today) == expected


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda c: charts.monthly_series(pd.DataFrame(), c), id="monthly"),
        pytest.param(lambda c: charts.value_cost_quadrant(pd.DataFrame(), c), id="quadrant"),
        pytest.param(lambda c: charts.cost_by_category(pd.DataFrame(), c), id="costs"),
        pytest.param(lambda c: charts.value_by_evidence(pd.DataFrame(), c), id="evidence"),
        pytest.param(lambda c: charts.what_if(pd.DataFrame(), c), id="what-if"),
    ],
)
def test_eur_charts_format_money_in_euros(build: Any) -> None:
    spec = build("EUR").to_dict()
    assert spec["config"]["locale"]["number"]["currency"] == ["€", ""]
    formats = _formats(spec)
    assert "$,.0f" in formats  # d3's currency format: its symbol is the locale's, € here
    assert build("CHF").to_dict()["config"]["locale"]["number"]["currency"] == ["", " CHF"]


def _formats(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["format"]} if isinstance(node.get("format"), str) else set()
        return found.union(*(_formats(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_formats(v) for v in node))
    return set()


def test_eur_alert_text_is_in_euros(eur: tuple[config.Config, Any]) -> None:
    cfg, _ = eur
    findings = pd.DataFrame([{"app_id": "churn", "name": "Churn", "team": "search", "rule": "underwater",
                              "reason": "costs more than it earns", "annual_savings": 1200.4, "value_at_risk": 0.0}])  # fmt: skip
    (alert,) = alerts.candidate_alerts(findings, cfg.currency)
    assert "would save €1,200/yr, value at risk €0/yr" in alert.text and "$" not in alert.text


def test_eur_cli_report_says_what_it_left_out(eur: tuple[config.Config, Any], tmp_path: Path, db_url: str, capsys) -> None:
    cfg_path = tmp_path / "portfolio.toml"
    cfg_path.write_text(f'database_url = "{db_url}"\n{EUR_CONFIG}', encoding="utf-8")
    code = cli.main(["report", "pnl", "--config", str(cfg_path), "--today", "2026-11-02", "--period", "last-quarter"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("P&L per app and month, 2026-07 – 2026-09 (EUR)")
    assert "total: value 5,000.00  value_hard 5,000.00  value_soft 0.00  cost 1,200.40  net 3,799.60" in out  # issue 13
    assert "warning: 1 row(s) from bill in USD ($77.00) are left out: this report is in EUR" in err


def test_report_unknown_team_is_an_error_naming_the_teams(eur: tuple[config.Config, Any], tmp_path: Path, db_url: str, capsys) -> None:
    cfg_path = tmp_path / "portfolio.toml"
    cfg_path.write_text(f'database_url = "{db_url}"\n{EUR_CONFIG}', encoding="utf-8")
    code = cli.main(["report", "pnl", "--config", str(cfg_path), "--today", "2026-11-02", "--team", "nope"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "--team 'nope': no such team; known teams: search" in err


def test_sync_prints_each_runs_warnings(tmp_path: Path, db_url: str, shared_data: Path, capsys) -> None:
    """Two export runs of one billing period: the sync keeps the newest and `mlportfolio sync` says so."""
    from tests.connectors.test_focus import _export_run

    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    _export_run(sample, tmp_path / "exports" / "run-b-old", 1, mtime=1_700_000_000)
    _export_run(sample, tmp_path / "exports" / "run-a-new", 3, mtime=1_800_000_000)
    cfg_path = tmp_path / "portfolio.toml"
    cfg_path.write_text(
        f'database_url = "{db_url}"\n[connectors.bill]\ntype = "focus"\npath = "exports"\n'
        'cost_column = "BilledCost"\napp_tag_keys = ["application"]\n',
        encoding="utf-8",
    )
    assert cli.main(["sync", "--config", str(cfg_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("bill      success")
    warnings = [line.strip() for line in lines[1:]]
    assert warnings and all(w.startswith("warning: ") for w in warnings)
    assert any("billing period 2024-09" in w and "run-a-new" in w for w in warnings), warnings
