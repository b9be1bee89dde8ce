"""FOCUS in a warehouse: the same mapping as one aggregating SQL query inside a real PostgreSQL
(Debian's server, started by tests/conftest.py) holding the FOCUS 1.0 sample.

The warehouse figures must equal the figures the file mode computes from the very same CSV. The
warehouse is PostgreSQL on both passes of the suite (``postgres_url``); the portfolio database the
rows land in follows the pass's backend (``engine``, ``make_db_url``).
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from portfolio import records, storage
from tests.connectors.test_focus import APPS, FIXTURES, MAPPING, Q6, S1, S2, costs, make_config, run, totals

pytestmark = pytest.mark.postgres

TIMESTAMPS = {"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"}
NUMBERS = {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity"}


def load_table(url: str, csv_path: Path, table: str, tags_type: str = "TEXT", drop: str | None = None) -> None:
    """Create ``table`` with FOCUS column types and COPY the CSV into it (``NULL`` literals are NULL)."""
    with csv_path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    cols = []
    for name in header:
        if name == drop:
            continue
        typ = "TIMESTAMPTZ" if name in TIMESTAMPS else "NUMERIC(30,12)" if name in NUMBERS else "TEXT"
        if name == "Tags":
            typ = tags_type
        cols.append(f'"{name}" {typ}')
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(f'CREATE TABLE {table} ({", ".join(cols)})')
        names = ", ".join(f'"{n}"' for n in header if n != drop)
        with csv_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader)
            idx = header.index(drop) if drop else None
            with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in reader:
                    if idx is not None:
                        row = row[:idx] + row[idx + 1 :]
                    copy.write_row([None if v in ("NULL", "") else v for v in row])


@pytest.mark.parametrize(
    ("cost_column", "tags_type"),
    [
        pytest.param("BilledCost", "TEXT", id="billed-tags-text"),
        pytest.param("BilledCost", "JSONB", id="billed-tags-jsonb"),
        pytest.param("EffectiveCost", "JSON", id="effective-tags-json"),
    ],
)
def test_warehouse_equals_file_mode(tmp_path, shared_data, postgres_url, make_db_url, cost_column, tags_type):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    load_table(postgres_url, sample, "focus_export", tags_type)
    mapping = f'cost_column = "{cost_column}"\napp_tag_keys = ["application"]'
    file_db = storage.make_engine(make_db_url("file"))  # the portfolio databases follow the pass's backend
    wh_db = storage.make_engine(make_db_url("wh"))
    assert run(make_config(tmp_path, file_db, f'path = "{sample}"\n{mapping}'), file_db).status == "success"
    cfg = make_config(tmp_path, wh_db, f'database_url = "{postgres_url}"\ntable = "focus_export"\n{mapping}')
    result = run(cfg, wh_db)
    assert result.status == "success", result.error
    assert len(costs(wh_db)) > 30
    assert costs(wh_db) == costs(file_db)
    assert totals(wh_db) == totals(file_db)

    # sync twice, same rows
    again = run(cfg, wh_db, full=True)
    assert (again.status, again.rows_written, again.rows_deleted) == ("success", 0, 0)
    assert costs(wh_db) == costs(file_db)


def test_warehouse_mapping_rules(tmp_path, engine, postgres_url):
    """Tag-key tolerance, sub-accounts, glob and regex resource patterns, in PostgreSQL's SQL."""
    load_table(postgres_url, FIXTURES / "mapping_rules.csv", "billing_focus", "TEXT")
    cfg = make_config(tmp_path, engine, f'database_url = "{postgres_url}"\ntable = "public.billing_focus"\n{MAPPING}', apps=APPS)
    result = run(cfg, engine)
    assert result.status == "success", result.error
    expected = {
        ("churn-predictor", S1, "infra", "Amazon SageMaker"): "14.25",
        ("churn-predictor", S1, "infra", "Amazon EC2"): "1.00",
        ("churn-predictor", S1, "other", "Amazon EC2"): "0.90",
        ("fraud", S1, "infra", "Amazon EC2"): "3.10",
        ("search-ranker", S1, "infra", "Amazon S3"): "2.00",
        ("recsys", S1, "infra", "Amazon S3"): "0.50",
        ("vision", S1, "infra", "Amazon SageMaker"): "4.00",
        ("vision", S2, "infra", "Amazon SageMaker"): "1.00",
        ("trainer", S1, "infra", "Amazon EC2"): "7.00",
        (records.UNALLOCATED, S1, "infra", "Amazon EC2"): "0.75",
    }
    assert {k: v[0] for k, v in costs(engine).items()} == {k: Decimal(v).quantize(Q6) for k, v in expected.items()}
    assert totals(engine) == {("2024-09", "USD"): Decimal("34.500000")}


def test_warehouse_missing_column_clear_error_nothing_lost(tmp_path, engine, shared_data, postgres_url):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    shutil.copy(FIXTURES / "multi_currency.csv", tmp_path / "earlier.csv")
    first = make_config(tmp_path, engine, 'path = "earlier.csv"\napp_tag_keys = ["application"]')
    assert run(first, engine).status == "success"
    before = costs(engine)

    load_table(postgres_url, sample, "no_currency", drop="BillingCurrency")
    cfg = make_config(tmp_path, engine, f'database_url = "{postgres_url}"\ntable = "no_currency"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "failed"
    assert result.error == "bill: file table no_currency, column 'BillingCurrency': missing FOCUS column (needed for the currency)"

    cfg = make_config(tmp_path, engine, f'database_url = "{postgres_url}"\ntable = "nowhere"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "failed"
    assert str(result.error).startswith("bill: file table nowhere")
    assert costs(engine) == before
    assert date(2024, 11, 5) in {k[1] for k in before}


def test_warehouse_token_lines_said_not_dropped_silently(tmp_path, make_db_url, postgres_url):
    """A warehouse table with token lines: the cost is the file mode's to the cent, and the run says
    that the token lines' tokens are not read from a warehouse (file mode reads them)."""
    sample = FIXTURES / "genai_tokens_focus12.csv"
    load_table(postgres_url, sample, "focus_tokens")
    file_db = storage.make_engine(make_db_url("tokfile"))
    wh_db = storage.make_engine(make_db_url("tokwh"))
    shutil.copy(sample, tmp_path / "bill.csv")
    assert run(make_config(tmp_path, file_db, 'path = "bill.csv"\napp_tag_keys = ["application"]'), file_db).status == "success"
    result = run(make_config(tmp_path, wh_db, f'database_url = "{postgres_url}"\ntable = "focus_tokens"\napp_tag_keys = ["application"]'), wh_db)
    assert result.status == "success", result.error
    assert costs(wh_db) == costs(file_db) and totals(wh_db) == {("2025-03", "USD"): Decimal("4.384000")}
    # the fixture has 10 token lines (EC2's hours are not tokens)
    assert "10 token line(s) (ConsumedUnit) in table focus_tokens are not read as token usage" in (result.warnings or ""), result.warnings
