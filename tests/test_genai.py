"""Issue 14 end to end: ``mlportfolio sync`` over OpenAI's and Anthropic's documented payloads (real
local servers) and a LiteLLM spend table (real PostgreSQL), then ``mlportfolio report tokens``:
each app's vendor cost as the P&L counts it (portfolio.genai.pnl_costs) equals a hand computation
to the cent, tokens and cost per 1M tokens per app and model are shown, the billed-against-estimated
drift is shown and flagged, and every vendor's daily total reconciles with the vendor's own."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from portfolio import cli, genai, pnl
from portfolio.facts import load_facts
from tests.connectors import test_anthropic as anth
from tests.connectors import test_litellm as lite
from tests.connectors import test_openai as oai

D1, D2 = oai.DAY1, oai.DAY2


@pytest.fixture
def setup(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres) -> Path:
    litellm_url = postgres.create_database("litellm")
    import sqlalchemy as sa

    eng = sa.create_engine(litellm_url)
    with eng.begin() as conn:
        conn.exec_driver_sql(lite.DDL)
        lite.insert(conn, lite.LOGS)
    eng.dispose()
    monkeypatch.setenv("OPENAI_ADMIN_KEY", oai.KEY)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", anth.KEY)
    monkeypatch.setenv("LITELLM_DATABASE_URL", litellm_url)
    return tmp_path


def write_config(path: Path, engine: Engine, oai_url: str, anth_url: str) -> Path:
    cfg = path / "portfolio.toml"
    cfg.write_text(f"""database_url = "{engine.url}"
[[apps]]
id = "support-bot"
team = "cx"
[[apps]]
id = "docs-qa"
team = "core"
[[apps]]
id = "search"
team = "core"

[genai]
drift_threshold = 0.5

[connectors.oai]
type = "openai"
url = "{oai_url}/v1"
admin_key_env = "OPENAI_ADMIN_KEY"
days = 2
retries = 0
projects = {{ proj_sup = "support-bot", proj_srch = "search" }}

[connectors.claude]
type = "anthropic"
url = "{anth_url}"
admin_key_env = "ANTHROPIC_ADMIN_KEY"
days = 3
retries = 0
workspaces = {{ {anth.WS_SUP} = "support-bot", {anth.WS_DOC} = "docs-qa" }}

[connectors.gateway]
type = "litellm"
database_url_env = "LITELLM_DATABASE_URL"
days = 3
tags = {{ support = "support-bot" }}
key_aliases = {{ docs-key = "docs-qa" }}
teams = {{ team-42 = "docs-qa", "Docs Team" = "docs-qa" }}
""")
    return cfg


def test_sync_then_report_tokens(engine: Engine, setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with oai.serve() as o, anth.serve() as a:
        cfg = write_config(setup, engine, o.url, a.url)
        assert cli.main(["sync", "--config", str(cfg)]) == 0, capsys.readouterr()
    capsys.readouterr()
    facts = load_facts(engine)
    kept = genai.pnl_costs(facts.costs)
    per_app = {k: round(v, 2) for k, v in kept[kept.category == "vendor"].groupby("app_id")["amount"].sum().items()}
    # by hand: support = OpenAI 0.1 + 0.2 + 2.000001 + Anthropic 1.2378912 + 0.50 + 0.01 = 4.05 (its LiteLLM
    # estimate of day 1, 0.60, is covered by those bills and dropped); docs-qa = Anthropic 10.00 + the
    # day-2 estimate 0.70 that no bill covers = 10.70; search = 1.25; unallocated = 0.05 + 0.07 = 0.12
    assert per_app == {"support-bot": 4.05, "docs-qa": 10.70, "search": 1.25, "_unallocated": 0.12}
    rec = pnl.reconciliation(facts)
    assert set(rec[rec.source.isin(["oai", "claude"])].status) == {"ok"} and len(rec[rec.source.isin(["oai", "claude"])]) == 4

    # reports cover full months only: as of the 1st of next month, the month holding the synced days is full
    as_of = (facts.today.replace(day=1) + timedelta(days=32)).replace(day=1).isoformat()
    assert cli.main(["report", "tokens", "--config", str(cfg), "--today", as_of, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {(r["app_id"], r["model"]): r for r in out["tokens"]}
    mini = rows[("support-bot", "gpt-4o-mini-2024-07-18")]
    assert (mini["tokens"], mini["requests"]) == (500 + 400 + 100 + 500 + 2000 + 1000 + 700, 14)
    assert Decimal(str(mini["cost"])).quantize(Decimal("0.01")) == Decimal("2.30")
    assert mini["cost_per_1m_tokens"] == pytest.approx(2.300001 / 5200 * 1_000_000)
    drift = {(d["app_id"], d["day"]): d for d in out["drift"]}
    sup = drift[("support-bot", D1.isoformat())]
    assert sup["billed"] == pytest.approx(0.3 + 1.737891) and sup["estimated"] == pytest.approx(0.6)
    assert sup["drift"] == pytest.approx(0.6 / 2.037891 - 1) and sup["flagged"] is True  # -70.6% vs threshold 50%
    assert cli.main(["report", "tokens", "--config", str(cfg), "--today", as_of]) == 0
    table = capsys.readouterr().out
    assert "tokens and cost per app and model" in table and "gpt-4o-mini-2024-07-18" in table
    assert "billed against estimated" in table and "-70.6%" in table and "FLAG" in table
