"""LiteLLM connector against LiteLLM's real spend-log table in the real PostgreSQL the tests run
(tests/servers.Postgres), created from LiteLLM's own schema.prisma (tests/fixtures/litellm/
spendlogs.sql); the portfolio database is the pass's backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import config, records, storage, sync
from tests.servers import Postgres

DDL = (Path(__file__).resolve().parents[1] / "fixtures" / "litellm" / "spendlogs.sql").read_text()
U = records.UNALLOCATED
D = Decimal
TODAY = datetime.now(UTC).date()
DAY1, DAY2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
MINI, SONNET = "gpt-4o-mini", "claude-sonnet-4-20250514"


def at(day: Any, hh: int, mm: int = 0, ss: int = 0, ms: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, ms * 1000)


# request_id, startTime, model, spend, prompt, completion, request_tags, metadata, team_id
LOGS: list[tuple[Any, ...]] = [
    ("r1", at(DAY1, 10), MINI, 0.1, 1000, 200, ["support", "prod"], {"user_api_key_alias": "other"}, None),
    ("r2", at(DAY1, 23, 59, 59, 999), MINI, 0.2, 500, 100, ["support"], {}, None),
    ("r3", at(DAY1, 0), SONNET, 1.5, 3000, 300, [], {"user_api_key_alias": "docs-key"}, None),
    ("r4", at(DAY1, 12), SONNET, 0.25, 100, 50, [], {}, "team-42"),
    ("r5", at(DAY1, 13), "gpt-4o", 0.05, 40, 4, ["unknown"], {}, "team-x"),
    ("r6", at(DAY1, 14), MINI, 0.3, 10, 10, ["support"], {"user_api_key_alias": "docs-key"}, None),  # the tag wins
    ("r7", at(DAY2, 9), SONNET, 0.7, 700, 70, [], {"user_api_key_team_alias": "Docs Team"}, "team-77"),
    ("r8", at(TODAY, 1), MINI, 9.0, 9, 9, ["support"], {}, None),  # today: not complete, not read
    ("r9", at(TODAY - timedelta(days=10), 1), MINI, 7.0, 7, 7, ["support"], {}, None),  # before the window
]


@pytest.fixture
def litellm_db(postgres: Postgres) -> str:
    url = postgres.create_database("litellm")
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql(DDL)
        insert(conn, LOGS)
    eng.dispose()
    return url


def insert(conn: Any, logs: list[tuple[Any, ...]]) -> None:
    for rid, start, model, spend, prompt, completion, tags, meta, team in logs:
        conn.execute(
            sa.text(
                'INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, spend, total_tokens, prompt_tokens, completion_tokens, '
                '"startTime", "endTime", model, request_tags, metadata, team_id) VALUES (:rid, \'acompletion\', :spend, :total, '
                ':prompt, :completion, :start, :end, :model, CAST(:tags AS jsonb), CAST(:meta AS jsonb), :team)'
            ),
            {"rid": rid, "spend": spend, "total": prompt + completion, "prompt": prompt, "completion": completion,
             "start": start, "end": start + timedelta(seconds=1), "model": model, "tags": json.dumps(tags),
             "meta": json.dumps(meta), "team": team},
        )


def make_config(engine: Engine, extra: str = "") -> config.Config:
    return config.loads(f"""database_url = "{engine.url}"
[[apps]]
id = "support-bot"
team = "cx"
[[apps]]
id = "docs-qa"
team = "core"

[connectors.gateway]
type = "litellm"
database_url_env = "LITELLM_DATABASE_URL"
days = 3
tags = {{ support = "support-bot" }}
key_aliases = {{ docs-key = "docs-qa" }}
teams = {{ team-42 = "docs-qa", "Docs Team" = "docs-qa" }}
{extra}
""")


def run(cfg: config.Config, engine: Engine, **kw: Any) -> records.SyncRun:
    return sync.sync(cfg, engine, only=["gateway"], **kw).runs[0]


@pytest.fixture(autouse=True)
def _url(monkeypatch: pytest.MonkeyPatch, litellm_db: str) -> None:
    # LiteLLM's own DATABASE_URL form (postgresql://), not SQLAlchemy's
    monkeypatch.setenv("LITELLM_DATABASE_URL", litellm_db.replace("postgresql+psycopg://", "postgresql://"))


def test_estimated_cost_and_tokens_per_app_day_and_model(engine: Engine) -> None:
    result = run(make_config(engine), engine)
    assert result.status == "success", result.error
    costs = storage.read_frame(engine, records.CostRecord)
    assert {(r.app_id, r.day, r.model): (r.amount, r.service, r.category, bool(r.estimated), r.billing_period) for r in costs.itertuples()} == {
        ("support-bot", DAY1, MINI): (D("0.6"), MINI, "vendor", True, None),  # r1 + r2 + r6
        ("docs-qa", DAY1, SONNET): (D("1.75"), SONNET, "vendor", True, None),  # r3 (key alias) + r4 (team id)
        (U, DAY1, "gpt-4o"): (D("0.05"), "gpt-4o", "vendor", True, None),  # r5: no rule claims it
        ("docs-qa", DAY2, SONNET): (D("0.7"), SONNET, "vendor", True, None),  # r7 (team alias)
    }
    usage = storage.read_frame(engine, records.UsageRecord)
    assert {(r.app_id, r.day, r.model, r.metric): r.value for r in usage.itertuples()} == {
        ("support-bot", DAY1, MINI, "input_tokens"): 1510, ("support-bot", DAY1, MINI, "output_tokens"): 310,
        ("support-bot", DAY1, MINI, "requests"): 3,
        ("docs-qa", DAY1, SONNET, "input_tokens"): 3100, ("docs-qa", DAY1, SONNET, "output_tokens"): 350,
        ("docs-qa", DAY1, SONNET, "requests"): 2,
        (U, DAY1, "gpt-4o", "input_tokens"): 40, (U, DAY1, "gpt-4o", "output_tokens"): 4, (U, DAY1, "gpt-4o", "requests"): 1,
        ("docs-qa", DAY2, SONNET, "input_tokens"): 700, ("docs-qa", DAY2, SONNET, "output_tokens"): 70,
        ("docs-qa", DAY2, SONNET, "requests"): 1,
    }
    assert "gpt-4o (0.05)" in (result.warnings or "")


def test_sync_twice_same_rows_and_a_changed_day_is_replaced(engine: Engine, litellm_db: str) -> None:
    cfg = make_config(engine)
    assert run(cfg, engine).status == "success"
    before = storage.read_frame(engine, records.CostRecord).drop(columns="id", errors="ignore")
    second = run(cfg, engine, full=True)
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    assert storage.read_frame(engine, records.CostRecord).drop(columns="id", errors="ignore").equals(before)
    eng = sa.create_engine(litellm_db)
    with eng.begin() as conn:  # the unmapped request is gone (e.g. re-tagged and re-logged under support)
        conn.execute(sa.text("DELETE FROM \"LiteLLM_SpendLogs\" WHERE request_id = 'r5'"))
    eng.dispose()
    third = run(cfg, engine, full=True)
    assert third.status == "success" and third.rows_deleted == 4  # its cost row and three usage rows
    assert U not in set(storage.read_frame(engine, records.CostRecord).app_id)


def test_unreachable_database_never_shows_the_password(engine: Engine, monkeypatch: pytest.MonkeyPatch, litellm_db: str) -> None:
    bad = litellm_db.replace("portfolio@", "portfolio:hunter2-secret@").replace("127.0.0.1:", "127.0.0.1:1")
    monkeypatch.setenv("LITELLM_DATABASE_URL", bad[:-1] + "_nope")
    result = run(make_config(engine), engine)
    assert result.status == "failed"
    assert result.error.startswith("gateway: cannot reach the LiteLLM database") and "LITELLM_DATABASE_URL" in result.error
    assert "hunter2" not in result.error


def test_missing_table_is_named(engine: Engine, postgres: Postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_DATABASE_URL", postgres.create_database("empty"))
    result = run(make_config(engine), engine)
    assert result.status == "failed"
    assert 'cannot read table "public"."LiteLLM_SpendLogs"' in result.error


def test_bad_settings_name_key(engine: Engine) -> None:
    # settings are checked when portfolio.toml loads (issue 12), before any sync can start
    with pytest.raises(config.SettingsError) as exc:
        make_config(engine, 'table = "x; drop table y"')
    assert "connectors.gateway.table" in str(exc.value) and "drop" not in str(exc.value)
