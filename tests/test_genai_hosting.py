"""``mlportfolio report tokens``' self-hosted-against-API section over a real portfolio database
(both backends): OpenCost inference cost (infra, model set) and a vendor bill in one app; figures by hand."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from portfolio import cli, records, storage

DAY = date(2026, 10, 5)
LLAMA, MINI = "meta-llama/Llama-3.1-8B-Instruct", "gpt-4o-mini"


def seed(engine: Engine) -> None:
    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, [
            records.CostRecord(source="k8s", app_id="support-bot", day=DAY, category="infra", service=f"inference {LLAMA}",
                               amount=Decimal("1.20"), model=LLAMA),
            records.CostRecord(source="oai", app_id="support-bot", day=DAY, category="vendor", service=f"{MINI}, input",
                               amount=Decimal("4.50"), billing_period="2026-10", model=MINI),
        ])
        storage.upsert(conn, records.UsageRecord, [
            records.UsageRecord(source="k8s", app_id="support-bot", day=DAY, metric="input_tokens", model=LLAMA, value=5_000_000.0),
            records.UsageRecord(source="k8s", app_id="support-bot", day=DAY, metric="output_tokens", model=LLAMA, value=1_000_000.0),
            records.UsageRecord(source="oai", app_id="support-bot", day=DAY, metric="input_tokens", model=MINI, value=3_000_000.0),
        ])


def test_report_tokens_self_hosted_against_api(engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(engine)
    cfg = tmp_path / "portfolio.toml"
    cfg.write_text(f'database_url = "{engine.url}"\n[[apps]]\nid = "support-bot"\nteam = "cx"\n')
    args = ["report", "tokens", "--config", str(cfg), "--today", "2026-11-15", "--from", "2026-10", "--to", "2026-10"]
    assert cli.main([*args, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)["self_hosted_vs_api"]
    assert [(r["scope"], r["key"]) for r in out] == [("app", "support-bot")]
    # self-hosted: 1.20 / 6M tokens = 0.20 per 1M; API: 4.50 / 3M tokens = 1.50 per 1M
    assert out[0]["self_hosted_per_1m"] == pytest.approx(0.2) and out[0]["api_per_1m"] == pytest.approx(1.5)
    assert (out[0]["self_hosted_tokens"], out[0]["api_tokens"]) == (6_000_000, 3_000_000)
    assert cli.main(args) == 0
    table = capsys.readouterr().out
    assert "self-hosted against API" in table
    line = next(x for x in table.splitlines() if x.startswith("app ") and "support-bot" in x)
    assert "0.2000" in line and "3,000,000" in line and "1.5000" in line
