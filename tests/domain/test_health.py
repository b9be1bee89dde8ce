from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

import connectors
from portfolio import health

from .build import TODAY, app, config, cost, facts, requests

LAST = TODAY - timedelta(days=1)


def run(connector, status, day, rows=0, error=None, type_name="focus"):
    started = datetime(2026, 7, day, 6, tzinfo=UTC)
    return {"connector": connector, "connector_type": type_name, "started": started,
            "finished": started + timedelta(minutes=1), "status": status, "rows_written": rows, "error": error}  # fmt: skip


def test_connector_status(monkeypatch):
    monkeypatch.setitem(connectors.REGISTRY, "periods_doc", "portfolio.periods")  # a real module with a docstring
    cfg = config('[connectors.bill]\ntype = "periods_doc"\n[connectors.never]\ntype = "no-such-type"\n')
    runs = [run("bill", "success", 1, 10), run("bill", "failed", 2, error="HTTP 500"), run("bill", "failed", 3, error="HTTP 503"),
            run("bill", "running", 4), run("old", "success", 2, 5, type_name="jira")]  # fmt: skip
    for i, r in enumerate(runs):
        r["id"] = i + 1
    status = health.connector_status(facts(runs=runs), cfg, connectors.describe)
    assert list(status.columns) == health.STATUS_COLUMNS
    assert list(status["connector"]) == ["bill", "never", "old"]
    bill = status.iloc[0]
    assert bill["description"] == "Reporting periods: whole calendar months, compared like with like."
    assert (bill["status"], bill["failures_in_a_row"], bill["rows_written"]) == ("running", 2, 0)
    assert bill["last_success"] == datetime(2026, 7, 1, 6, 1, tzinfo=UTC)
    assert bill["last_run"] == datetime(2026, 7, 4, 6, tzinfo=UTC)
    never = status.iloc[1]
    assert (never["status"], never["description"], never["failures_in_a_row"]) == ("never run", "", 0)
    assert pd.isna(never["last_run"]) and pd.isna(never["last_success"])
    old = status.iloc[2]
    assert (old["type"], old["status"], old["rows_written"], old["failures_in_a_row"]) == ("jira", "success", 5, 0)


def test_connector_status_empty():
    assert list(health.connector_status(facts()).columns) == health.STATUS_COLUMNS
    assert health.connector_status(facts()).empty


@pytest.mark.parametrize(
    "cost_day, usage_day, stage, stale",
    [
        pytest.param(LAST - timedelta(days=3), LAST, "production", False, id="cost-three-days-old-is-fresh"),
        pytest.param(LAST - timedelta(days=4), LAST, "production", True, id="cost-four-days-old-is-stale"),
        pytest.param(LAST, LAST - timedelta(days=4), "production", True, id="usage-four-days-old-is-stale"),
        pytest.param(LAST, None, "production", True, id="no-usage-at-all-is-stale"),
        pytest.param(LAST - timedelta(days=40), None, "retired", False, id="retired-never-stale"),
    ],
)
def test_freshness(cost_day, usage_day, stage, stale):
    f = facts(
        apps=[app("a", stage=stage)],
        costs=[cost("a", cost_day, 1), cost("a", cost_day - timedelta(days=9), 1, service="older")],
        usage=[requests("a", usage_day, 5)] if usage_day else [],
        outcomes=[{"source": "l", "app_id": "a", "month": date(2026, 6, 1), "kind": "cost_avoidance", "amount": 1}],
    )
    fresh = health.freshness(f)
    assert list(fresh.columns) == health.FRESHNESS_COLUMNS
    r = fresh.iloc[0]
    assert r["last_cost_day"] == cost_day and r["last_usage_day"] == usage_day
    assert r["last_outcome_month"] == date(2026, 6, 1) and r["last_uptime_day"] is None
    assert bool(r["stale"]) is stale


@pytest.mark.parametrize(
    ("type_name", "expected_start"),
    [
        pytest.param("upload", "The outcomes ledger", id="dashboard-ledger-upload"),
        pytest.param("demo", "", id="registered-connector"),
        pytest.param("no-such-type", "", id="unknown-type"),
    ],
)
def test_describe(type_name: str, expected_start: str) -> None:
    text = connectors.describe(type_name)
    if type_name == "no-such-type":
        assert text == ""
    else:
        assert text.startswith(expected_start) and text


@pytest.mark.parametrize(
    "module", ["pnl", "maintenance", "retirement", "decisions", "health", "facts", "periods", "review", "auth"]
)
def test_the_domain_does_not_import_connectors(module: str) -> None:
    """DESIGN's direction of imports: dashboard -> domain <- connectors. Read from the source, so a
    lazy import inside a function counts too."""
    import ast
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "portfolio" / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "connectors" not in imported and "streamlit" not in imported and "requests" not in imported
