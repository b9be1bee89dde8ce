"""FOCUS connector against real FOCUS files: the FinOps Foundation's FOCUS 1.0 sample, the FOCUS 1.2
commitment-discount worked examples, and small hand-written exports (tests/fixtures/focus/) whose
expected figures are computed by hand in the tables below.

Everything goes through ``portfolio.sync.sync`` into a real database (SQLite, and PostgreSQL on the
second pass), so the transaction, Replace windows and reconciliation anchors are exercised as in
production.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import config, records, rollup, storage, sync
from portfolio.facts import load_facts

NOT_ISO = "not an ISO 8601 date/time (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
OUT_OF_RANGE = "date before 2000 or more than a year ahead"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "focus"
D = Decimal
Q6 = Decimal("0.000001")


def make_config(tmp_path: Path, engine: Engine, body: str, apps: str = ""):
    text = f'database_url = "{engine.url}"\n{apps}\n[connectors.bill]\ntype = "focus"\n{body}\n'
    return config.loads(text, base_dir=str(tmp_path))


def run(cfg, engine: Engine, **kw) -> records.SyncRun:
    outcome = sync.sync(cfg, engine, only=["bill"], **kw)
    return outcome.runs[0]


def costs(engine: Engine) -> dict[Any, Any]:
    frame = storage.read_frame(engine, records.CostRecord)
    return {
        (r.app_id, r.day, r.category, r.service): (r.amount, r.currency, r.billing_period)
        for r in frame.itertuples()
    }


def totals(engine: Engine) -> dict[Any, Any]:
    frame = storage.read_frame(engine, records.BillingTotal)
    return {(r.billing_period, r.currency): r.total for r in frame.itertuples()}


def recorded(engine: Engine) -> dict[tuple[str | None, str], Decimal]:
    out: dict[tuple[str | None, str], Decimal] = defaultdict(Decimal)
    for amount, currency, bp in costs(engine).values():
        out[(bp, currency)] += amount
    return dict(out)


# ----------------------------------------------------------------------------- the FOCUS 1.0 sample


def sample_expectations(path: Path, cost_column: str):
    """Independent of DuckDB: the sample read with the csv module and summed with Decimal."""
    by_period: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    by_app: dict[str, Decimal] = defaultdict(Decimal)
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            amount = D(row[cost_column])
            by_period[(row["BillingPeriodStart"][:7], row["BillingCurrency"])] += amount
            tags = json.loads(row["Tags"]) if row["Tags"] not in ("NULL", "") else {}
            by_app[tags.get("application") or records.UNALLOCATED] += amount
    return by_period, by_app


@pytest.mark.parametrize("cost_column", ["EffectiveCost", "BilledCost", "ListCost"])
def test_sample_every_dollar_lands_and_reconciles(tmp_path, engine, shared_data, cost_column):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    cfg = make_config(
        tmp_path, engine, f'path = "{sample}"\ncost_column = "{cost_column}"\napp_tag_keys = ["application"]'
    )
    result = run(cfg, engine)
    assert result.status == "success", result.error
    by_period, by_app = sample_expectations(sample, cost_column)

    # reconciliation: rows add up to the file's own total, to the cent (here: exactly, to 6 places)
    expected = {k: v.quantize(Q6, ROUND_HALF_UP) for k, v in by_period.items()}
    assert totals(engine) == expected
    assert recorded(engine) == {k: v for k, v in expected.items() if v}

    # every dollar lands with the app named by its `application` tag, or in _unallocated
    got: dict[str, Decimal] = defaultdict(Decimal)
    for (app, *_), (amount, _, _) in costs(engine).items():
        got[app] += amount
    assert set(got) <= set(by_app)
    for app, exact in by_app.items():
        assert abs(got.get(app, D(0)) - exact) <= D("0.00001"), app


def test_sample_late_charge_keeps_its_billing_period(tmp_path, engine, shared_data):
    """The one Oracle line billed in 2024-10 for a 2024-09-30 charge keeps its own row and period."""
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    cfg = make_config(tmp_path, engine, f'path = "{sample}"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    row = costs(engine)[("SafeGridVault", date(2024, 9, 30), "infra", "COMPUTE (billed 2024-10)")]
    assert row == (D("0.240000"), "USD", "2024-10")
    assert totals(engine)[("2024-10", "USD")] == D("0.240000")


def test_sample_sync_twice_same_rows(tmp_path, engine, shared_data):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    cfg = make_config(tmp_path, engine, f'path = "{sample}"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]')
    first = run(cfg, engine)
    assert first.status == "success" and first.rows_written > 0
    before = (storage.read_frame(engine, records.CostRecord), totals(engine))
    second = run(cfg, engine, full=True)
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    after = (storage.read_frame(engine, records.CostRecord), totals(engine))
    assert before[0].equals(after[0]) and before[1] == after[1]


def _corrupt(src: Path, dst: Path, row: int, column: str, value: str) -> None:
    """Copy the sample with one cell replaced (row = 1-based data row)."""
    with src.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    idx = rows[0].index(column)
    rows[row][idx] = value
    with dst.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_MINIMAL).writerows(rows)


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        pytest.param("EffectiveCost", 537, "12,50", "not a number", id="non-numeric-cost"),
        pytest.param("ChargePeriodStart", 998, "2024-13-45 25:00:00", "not a date/time", id="bad-date"),
        pytest.param("BillingPeriodStart", 12, "next month", "not a date/time", id="bad-billing-period"),
        pytest.param("BillingCurrency", 3, "", "empty currency", id="empty-currency"),
        pytest.param("Tags", 40, "{application: oops", "not a JSON object", id="broken-tags-json"),
        # issue 12: a spreadsheet's two-digit year was read as the year 0004 and the bill vanished
        pytest.param("ChargePeriodStart", 998, "9/1/24", NOT_ISO, id="two-digit-year"),
        pytest.param("BillingPeriodStart", 7, "9/1/24", NOT_ISO, id="two-digit-year-billing-period"),
        pytest.param("ChargePeriodStart", 20, "24-09-18 22:00:00", NOT_ISO, id="two-digit-year-first"),
        pytest.param("ChargePeriodStart", 300, "1999-09-18 22:00:00", OUT_OF_RANGE, id="before-2000"),
        pytest.param("BillingPeriodStart", 301, "2099-09-01 00:00:00", OUT_OF_RANGE, id="far-future"),
        pytest.param("ChargePeriodStart", 5, "9/18/2024 22:00", "not a date/time", id="four-digit-us-date"),
        pytest.param("EffectiveCost", 6, "$10,000.00", "not a number", id="dollar-amount"),
    ],
)
def test_corrupted_copy_clear_error_nothing_lost(tmp_path, engine, shared_data, column, row, value, message):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(sample, folder / "focus.csv")
    cfg = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "EffectiveCost"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    before = (storage.read_frame(engine, records.CostRecord), totals(engine))

    _corrupt(sample, folder / "focus.csv", row, column, value)
    result = run(cfg, engine, full=True)
    assert result.status == "failed"
    assert result.error == (
        f"bill: file {folder / 'focus.csv'}, row {row} (line {row + 1}), column {column!r}: {message}"
        + (f" {value!r}" if value else "")
    )
    after = (storage.read_frame(engine, records.CostRecord), totals(engine))
    assert before[0].equals(after[0]) and before[1] == after[1]


def test_missing_used_column_is_refused_by_name(tmp_path, engine, shared_data):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    with sample.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    drop = rows[0].index("BillingCurrency")
    bad = tmp_path / "no_currency.csv"
    with bad.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([r[:drop] + r[drop + 1 :] for r in rows])
    cfg = make_config(tmp_path, engine, 'path = "no_currency.csv"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "failed"
    assert result.error == f"bill: file {bad}, column 'BillingCurrency': missing FOCUS column (needed for the currency)"
    assert storage.read_frame(engine, records.CostRecord).empty


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("broken.parquet", b"PAR1 this is not a parquet file", id="garbage-parquet"),
        pytest.param("truncated.csv.gz", None, id="truncated-gzip"),
    ],
)
def test_unreadable_file_is_named(tmp_path, engine, shared_data, name, content):
    if content is None:
        content = gzip.compress((shared_data / "focus" / "focus-1.0-sample.csv").read_bytes())[:20_000]
    (tmp_path / name).write_bytes(content)
    cfg = make_config(tmp_path, engine, f'path = "{name}"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "failed"
    assert str(result.error).startswith(f"bill: file {tmp_path / name}")
    assert "cannot be read" in str(result.error)


# ----------------------------------------------------------------------------- formats


def _sync_rows(tmp_path: Path, engine: Engine, path: str, extra: str = "") -> dict:
    cfg = make_config(tmp_path, engine, f'path = "{path}"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]\n{extra}')
    result = run(cfg, engine)
    assert result.status == "success", result.error
    return costs(engine)


def test_gzip_csv_equals_plain_csv(tmp_path, shared_data, make_db_url):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(sample, tmp_path / "a" / "export.csv")
    (tmp_path / "b" / "export.csv.gz").write_bytes(gzip.compress(sample.read_bytes()))
    plain = _sync_rows(tmp_path, storage.make_engine(make_db_url("plain")), "a/export.csv")
    zipped = _sync_rows(tmp_path, storage.make_engine(make_db_url("gzip")), "b/*.csv.gz")
    assert len(plain) > 300
    assert plain == zipped


def test_parquet_with_map_tags_equals_csv(tmp_path, shared_data, make_db_url):
    """Parquet exports hold Tags as a MAP and timestamps as TIMESTAMP: same figures as the CSV."""
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    out = tmp_path / "export.parquet"
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT * REPLACE (
                CAST(BilledCost AS DECIMAL(38,12)) AS BilledCost,
                CAST(ChargePeriodStart AS TIMESTAMP) AS ChargePeriodStart,
                CAST(BillingPeriodStart AS TIMESTAMP) AS BillingPeriodStart,
                CAST(CAST(Tags AS JSON) AS MAP(VARCHAR, VARCHAR)) AS Tags)
              FROM read_csv('{sample}', all_varchar = true, nullstr = 'NULL'))
            TO '{out}' (FORMAT parquet)"""
    )
    assert "MAP" in str(con.execute(f"DESCRIBE SELECT Tags FROM '{out}'").fetchall()[0][1])
    con.close()
    csv_rows = _sync_rows(tmp_path, storage.make_engine(make_db_url("csv")), str(sample))
    pq_rows = _sync_rows(tmp_path, storage.make_engine(make_db_url("parquet")), "export.parquet")
    assert len(csv_rows) > 300
    assert pq_rows == csv_rows


def test_parquet_map_tag_keys_are_case_and_space_tolerant(tmp_path, engine):
    out = tmp_path / "tags.parquet"
    duckdb.sql(
        f"""COPY (SELECT * FROM (VALUES
              (TIMESTAMP '2024-05-01', TIMESTAMP '2024-05-02 10:00', 'USD', 1.25::DECIMAL(18,6), 'S3', MAP {{'application': 'a1'}}),
              (TIMESTAMP '2024-05-01', TIMESTAMP '2024-05-02 11:00', 'USD', 2.50::DECIMAL(18,6), 'S3', MAP {{' Application ': 'a2', 'env': 'dev'}}),
              (TIMESTAMP '2024-05-01', TIMESTAMP '2024-05-02 12:00', 'USD', 4.00::DECIMAL(18,6), 'S3', MAP {{'env': 'prod'}}))
            AS t(BillingPeriodStart, ChargePeriodStart, BillingCurrency, EffectiveCost, ServiceName, Tags))
           TO '{out}' (FORMAT parquet)"""
    )
    cfg = make_config(tmp_path, engine, 'path = "tags.parquet"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    day = date(2024, 5, 2)
    assert costs(engine) == {
        ("a1", day, "infra", "S3"): (D("1.250000"), "USD", "2024-05"),
        ("a2", day, "infra", "S3"): (D("2.500000"), "USD", "2024-05"),
        (records.UNALLOCATED, day, "infra", "S3"): (D("4.000000"), "USD", "2024-05"),
    }


# ----------------------------------------------------------------------------- mapping rules

MAPPING = """
app_tag_keys = ["ml-app", "application"]
sub_accounts = { "111" = "search-ranker", "Recs Prod" = "recsys" }
resource_patterns = [
  { glob = "arn:aws:sagemaker:*:endpoint/vision*", app = "vision" },
  { regex = "gpu-train$", app = "trainer" },
]
"""
APPS = """
[[apps]]
id = "churn-predictor"
team = "growth"
cost_tags = ["churn"]
"""
S1, S2 = date(2024, 9, 1), date(2024, 9, 2)


@pytest.mark.parametrize(
    ("cost_column", "expected"),
    [
        pytest.param(
            "EffectiveCost",
            {
                # 10.00 + 5.25 (" ML-App ": "Churn" -> cost_tags) - 1.00 credit
                ("churn-predictor", S1, "infra", "Amazon SageMaker"): "14.25",
                ("churn-predictor", S1, "infra", "Amazon EC2"): "1.00",  # ml-app wins over application
                ("churn-predictor", S1, "other", "Amazon EC2"): "0.90",  # Tax -> other
                ("fraud", S1, "infra", "Amazon EC2"): "3.10",  # second tag key; value is the app id
                ("search-ranker", S1, "infra", "Amazon S3"): "2.00",  # SubAccountId
                ("recsys", S1, "infra", "Amazon S3"): "0.50",  # SubAccountName
                ("vision", S1, "infra", "Amazon SageMaker"): "4.00",  # glob on ResourceId
                ("vision", S2, "infra", "Amazon SageMaker"): "1.00",  # empty tag value; 23:30-01:00 is the 2nd UTC
                ("trainer", S1, "infra", "Amazon EC2"): "7.00",  # regex on ResourceId
                (records.UNALLOCATED, S1, "infra", "Amazon EC2"): "0.75",
            },
            id="effective-cost",
        ),
        pytest.param(
            "ListCost",
            {
                ("churn-predictor", S1, "infra", "Amazon SageMaker"): "17.00",
                ("churn-predictor", S1, "infra", "Amazon EC2"): "1.00",
                ("churn-predictor", S1, "other", "Amazon EC2"): "0.90",
                ("fraud", S1, "infra", "Amazon EC2"): "3.10",
                ("search-ranker", S1, "infra", "Amazon S3"): "2.00",
                ("recsys", S1, "infra", "Amazon S3"): "0.50",
                ("vision", S1, "infra", "Amazon SageMaker"): "4.00",
                ("vision", S2, "infra", "Amazon SageMaker"): "1.00",
                ("trainer", S1, "infra", "Amazon EC2"): "7.00",
                (records.UNALLOCATED, S1, "infra", "Amazon EC2"): "0.75",
            },
            id="list-cost",
        ),
    ],
)
def test_mapping_rules_in_order(tmp_path, engine, cost_column, expected):
    shutil.copy(FIXTURES / "mapping_rules.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, f'path = "bill.csv"\ncost_column = "{cost_column}"\n{MAPPING}', apps=APPS)
    result = run(cfg, engine)
    assert result.status == "success", result.error
    got = {k: v[0] for k, v in costs(engine).items()}
    assert got == {k: D(v).quantize(Q6) for k, v in expected.items()}
    assert totals(engine) == {("2024-09", "USD"): sum((D(v) for v in expected.values()), D(0)).quantize(Q6)}


def test_focus_13_aliases_and_case_insensitive_columns(tmp_path, engine):
    shutil.copy(FIXTURES / "focus13_aliases.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    assert costs(engine) == {
        ("atlas", date(2025, 1, 3), "infra", "Contoso Cloud"): (D("3.750000"), "EUR", "2025-01"),
        (records.UNALLOCATED, date(2025, 1, 4), "infra", "Fabrikam AI"): (D("0.400000"), "EUR", "2025-01"),
    }
    assert totals(engine) == {("2025-01", "EUR"): D("4.150000")}


def test_focus_05_billed_currency_and_charge_type_aliases(tmp_path, engine):
    """FOCUS 0.5 spells BillingCurrency ``BilledCurrency``, EffectiveCost ``AmortizedCost`` and
    ChargeCategory ``ChargeType``; an export in those names loads like a 1.x one (issue 12)."""
    shutil.copy(FIXTURES / "focus05_aliases.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "success", result.error
    assert costs(engine) == {
        ("atlas", date(2023, 11, 5), "infra", "Compute"): (D("7.250000"), "GBP", "2023-11"),
        ("atlas", date(2023, 11, 5), "other", "Compute"): (D("1.100000"), "GBP", "2023-11"),
        (records.UNALLOCATED, date(2023, 11, 6), "infra", "Storage"): (D("2.500000"), "GBP", "2023-11"),
    }
    assert totals(engine) == {("2023-11", "GBP"): D("10.850000")}


def test_multi_currency_kept_apart_and_rounding_adds_up(tmp_path, engine):
    shutil.copy(FIXTURES / "multi_currency.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    d5, d6 = date(2024, 11, 5), date(2024, 11, 6)
    got = costs(engine)
    assert got[("alpha", d5, "infra", "Compute")] == (D("100.000000"), "USD", "2024-11")
    assert got[("beta", d5, "infra", "Compute")] == (D("80.000000"), "EUR", "2024-11")
    thirds = {k[3]: v for k, v in got.items() if k[1] == d6}
    assert set(thirds) == {"Compute", "Network", "Storage"} and len(got) == 5
    assert {v[1:] for v in thirds.values()} == {("EUR", "2024-11")}
    # 0.333333333 + 0.333333333 + 0.333333334 = 1: rounded one by one they would add up to 0.999999;
    # cumulative rounding gives one of them the missing millionth, so the bill adds up
    assert sorted(v[0] for v in thirds.values()) == [D("0.333333"), D("0.333333"), D("0.333334")]
    assert totals(engine) == {("2024-11", "USD"): D("100.000000"), ("2024-11", "EUR"): D("81.000000")}


def test_same_key_in_two_currencies_is_an_error_not_a_sum(tmp_path, engine):
    shutil.copy(FIXTURES / "currency_clash.csv", tmp_path / "bill.csv")
    cfg = make_config(tmp_path, engine, 'path = "bill.csv"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "failed"
    assert "app 'alpha', day 2024-11-05, infra/'Compute' has spend in currencies EUR, USD" in str(result.error)
    assert storage.read_frame(engine, records.CostRecord).empty


# ----------------------------------------------------------------------------- commitment discounts

CDF = "commitment_discount_flexibility"
PATTERNS = """
default_currency = "USD"   # the worked examples carry no BillingCurrency column
resource_patterns = [
  { glob = "<my-large-vm-id>", app = "large-vm" },
  { glob = "<my-medium-vm-id>", app = "medium-vm" },
]
"""
J1 = date(2023, 1, 1)


@pytest.mark.parametrize(
    ("example", "cost_column", "expected", "total"),
    [
        pytest.param(
            "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_1_resource.csv",
            "EffectiveCost",
            {("large-vm", J1, "infra", "unknown"): "2.75"},  # 0.50 amortised + 2.25 on demand
            "2.75",
            id="flex-1-resource",
        ),
        pytest.param(
            "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources.csv",
            "EffectiveCost",
            {("medium-vm", J1, "infra", "unknown"): "2.00"},  # 1.00 + 1.00 amortised, purchase not again
            "2.00",
            id="flex-2-resources",
        ),
        pytest.param(
            "one_hundred_percent_utilization_without_commitment_discount_flexibility.csv",
            "EffectiveCost",
            {("large-vm", J1, "infra", "unknown"): "1.50"},
            "1.50",
            id="no-flex-full",
        ),
        pytest.param(
            "zero_percent_utilization_without_commitment_discount_flexibility.csv",
            "EffectiveCost",
            {
                (records.UNALLOCATED, J1, "infra", "unused commitment"): "1.50",
                ("medium-vm", J1, "infra", "unknown"): "2.00",
            },
            "3.50",
            id="no-flex-unused",
        ),
        pytest.param(
            "zero_percent_utilization_without_commitment_discount_flexibility.csv",
            "BilledCost",
            {
                (records.UNALLOCATED, J1, "infra", "unknown"): "1.50",  # the purchase as billed
                ("medium-vm", J1, "infra", "unknown"): "2.00",
            },
            "3.50",
            id="no-flex-unused-billed",
        ),
    ],
)
def test_commitment_discount_examples(tmp_path, engine, shared_data, example, cost_column, expected, total):
    path = shared_data / "focus" / "spec-1.2-examples" / CDF / example
    cfg = make_config(tmp_path, engine, f'path = "{path}"\ncost_column = "{cost_column}"\n{PATTERNS}')
    result = run(cfg, engine)
    assert result.status == "success", result.error
    assert {k: v[0] for k, v in costs(engine).items()} == {k: D(v).quantize(Q6) for k, v in expected.items()}
    assert totals(engine) == {("2023-01", "USD"): D(total).quantize(Q6)}


def test_commitment_purchase_set_aside_is_recorded(tmp_path, engine, shared_data):
    path = shared_data / "focus" / "spec-1.2-examples" / CDF
    cfg = make_config(tmp_path, engine, f'path = "{path / "one_hundred_percent_utilization_without_commitment_discount_flexibility.csv"}"\n{PATTERNS}')
    assert run(cfg, engine).status == "success"
    detail = storage.read_frame(engine, records.BillingTotal).detail.iloc[0]
    assert "1 commitment purchase line(s) (0) set aside: amortised in usage" in detail


# ----------------------------------------------------------------------------- folders and restatement


def _split_sample(sample: Path, root: Path) -> dict[str, Path]:
    """The sample as AWS lays exports out: one BILLING_PERIOD=YYYY-MM folder per period."""
    with sample.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    bp = rows[0].index("BillingPeriodStart")
    files: dict[str, Path] = {}
    for period in sorted({r[bp][:7] for r in rows[1:]}):
        folder = root / f"BILLING_PERIOD={period}"
        folder.mkdir(parents=True)
        files[period] = folder / "export-00001.csv.gz"
        with gzip.open(files[period], "wt", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([rows[0]] + [r for r in rows[1:] if r[bp][:7] == period])
    return files


def test_billing_period_folders_and_restatement(tmp_path, engine, shared_data):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    files = _split_sample(sample, tmp_path / "exports" / "data")
    cfg = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    before = costs(engine)
    by_period, _ = sample_expectations(sample, "BilledCost")
    assert totals(engine) == {k: v.quantize(Q6, ROUND_HALF_UP) for k, v in by_period.items()}

    # AWS re-exports 2024-09: every BrightLensMatrix line is gone, every other line doubled
    with gzip.open(files["2024-09"], "rt", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    cost, tags = head.index("BilledCost"), head.index("Tags")
    restated = [head]
    for r in rows[1:]:
        if "BrightLensMatrix" in r[tags]:
            continue
        restated.append(r[:cost] + [str(D(r[cost]) * 2)] + r[cost + 1 :])
    with gzip.open(files["2024-09"], "wt", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(restated)

    result = run(cfg, engine)
    assert result.status == "success", result.error
    after = costs(engine)
    gone = {k for k in before if k[0] == "BrightLensMatrix" and before[k][2] == "2024-09"}
    # (rows of a few cents' fractions may also move by 0.000001: cumulative rounding of the restated bill)
    assert gone and result.rows_deleted >= len(gone)
    assert not any(k in after for k in gone)
    for key, (amount, currency, bp) in before.items():
        if key in gone:
            continue
        if bp == "2024-10":
            assert after[key] == (amount, currency, bp)  # the other period is untouched
    new_total = sum((D(r[cost]) for r in restated[1:]), D(0)).quantize(Q6, ROUND_HALF_UP)
    assert totals(engine)[("2024-09", "USD")] == new_total
    assert recorded(engine)[("2024-09", "USD")] == new_total
    # issue 15: the monthly rollups the reports read followed the restatement, to the micro-unit
    with engine.connect() as conn:
        assert rollup.differences(conn) == []
    monthly = load_facts(engine, today=date(2025, 6, 1)).costs  # every month whole: read from the rollup
    by_bp = monthly[monthly["billing_period"] == "2024-09"]
    assert round(float(by_bp["amount"].sum()), 6) == float(new_total)
    assert int(by_bp["rows"].sum()) == sum(1 for v in after.values() if v[2] == "2024-09")


def test_restated_period_drops_its_late_charge_and_old_currency(tmp_path, engine, shared_data):
    """A re-export of 2024-10 whose only line (a 2024-09-30 charge billed in October) is corrected
    to 2024-10-01 and billed in EUR: the late-charge row, dated outside October, and the October
    USD total both go; September, whose export has since been deleted, keeps its figures."""
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    files = _split_sample(sample, tmp_path / "exports")
    cfg = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    late = ("SafeGridVault", date(2024, 9, 30), "infra", "COMPUTE (billed 2024-10)")
    assert late in costs(engine)
    september = {k: v for k, v in costs(engine).items() if v[2] == "2024-09"}

    with gzip.open(files["2024-10"], "rt", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    head, line = rows[0], list(rows[1])
    assert len(rows) == 2, "the sample bills exactly one line in 2024-10"
    for col in ("ChargePeriodStart", "ChargePeriodEnd"):
        line[head.index(col)] = line[head.index(col)].replace("2024-09-30", "2024-10-01")
    line[head.index("BillingCurrency")] = "EUR"
    with gzip.open(files["2024-10"], "wt", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([head, line])
    files["2024-09"].unlink()  # exports past retention are deleted: their figures stay

    result = run(cfg, engine)
    assert result.status == "success", result.error
    after = costs(engine)
    assert late not in after
    assert after[("SafeGridVault", date(2024, 10, 1), "infra", "COMPUTE")] == (D("0.240000"), "EUR", "2024-10")
    assert ("2024-10", "USD") not in totals(engine)
    assert totals(engine)[("2024-10", "EUR")] == D("0.240000")
    assert {k: v for k, v in after.items() if v[2] == "2024-09"} == september
    assert run(cfg, engine).rows_written == 0, "the restated files synced again change nothing"


def _export_run(sample: Path, folder: Path, factor: int, account: str | None = None, mtime: float | None = None) -> Path:
    """One export run's folder (Azure's layout: a folder per run) holding the sample with every
    cost multiplied by ``factor`` (and, optionally, another BillingAccountId)."""
    import os

    with sample.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    money = [head.index(c) for c in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")]
    acct = head.index("BillingAccountId")
    out = [head]
    for r in rows[1:]:
        r = list(r)
        for i in money:
            if r[i] not in ("", "NULL"):
                r[i] = str(D(r[i]) * factor)
        if account:
            r[acct] = account
        out.append(r)
    folder.mkdir(parents=True)
    target = folder / "part_0_0001.csv"
    with target.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(out)
    if mtime is not None:
        os.utime(target, (mtime, mtime))
    return target


def test_duplicate_export_folders_keep_the_newest_and_say_so(tmp_path, engine, shared_data):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    by_period, _ = sample_expectations(sample, "BilledCost")
    root = tmp_path / "exports"
    _export_run(sample, root / "run-b-old", 1, mtime=1_700_000_000)
    _export_run(sample, root / "run-a-new", 3, mtime=1_800_000_000)  # written last, though it sorts first
    cfg = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "success", result.error
    assert totals(engine) == {k: (v * 3).quantize(Q6, ROUND_HALF_UP) for k, v in by_period.items()}
    assert recorded(engine) == totals(engine)
    assert result.warnings and "billing period 2024-09" in result.warnings
    assert "run-a-new" in result.warnings and "ignored" in result.warnings and "run-b-old" in result.warnings

    # policy "error": the sync fails naming the folders, and the database keeps what it had
    before = costs(engine)
    strict = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]\nduplicate_exports = "error"')
    failed = run(strict, engine)
    assert failed.status == "failed"
    assert "billing period 2024-09" in failed.error and "run-a-new" in failed.error and "run-b-old" in failed.error
    assert costs(engine) == before

    # policy "sum": the folders are taken as different charges
    summed = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]\nduplicate_exports = "sum"')
    assert run(summed, engine).status == "success"
    assert totals(engine) == {k: (v * 4).quantize(Q6, ROUND_HALF_UP) for k, v in by_period.items()}


def test_two_accounts_in_two_folders_both_count(tmp_path, engine, shared_data):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    by_period, _ = sample_expectations(sample, "BilledCost")
    _export_run(sample, tmp_path / "exports" / "payer-1", 1)
    _export_run(sample, tmp_path / "exports" / "payer-2", 1, account="999999999999")
    cfg = make_config(tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]')
    result = run(cfg, engine)
    assert result.status == "success", result.error
    assert not result.warnings
    assert totals(engine) == {k: (v * 2).quantize(Q6, ROUND_HALF_UP) for k, v in by_period.items()}


def test_unknown_duplicate_policy_is_refused_by_key(tmp_path, engine, shared_data):
    # issue 12: refused when the config loads (the settings model), no longer at the first sync
    with pytest.raises(config.SettingsError) as exc:
        make_config(tmp_path, engine, f'path = "{shared_data / "focus" / "focus-1.0-sample.csv"}"\nduplicate_exports = "latest"')
    assert (exc.value.connector, exc.value.key) == ("bill", "duplicate_exports")
    assert "connectors.bill.duplicate_exports: input should be 'newest', 'error' or 'sum'" in str(exc.value)


def _counting_builds(monkeypatch) -> list[tuple[str, int]]:
    """The (billing period, rows) of every frame of cost rows the connector builds from now on."""
    from connectors.focus import aggregate

    built: list[tuple[str, int]] = []
    real_rows = aggregate._rows

    def counting(reader):
        for item in real_rows(reader):
            built.append((str(item.frame["billing_period"].iloc[0]), len(item.frame)))
            yield item

    monkeypatch.setattr(aggregate, "_rows", counting)
    return built


def _counting_reads(monkeypatch) -> list[int]:
    """One entry per DuckDB session the FOCUS connector opens to read the files."""
    from connectors.focus import files

    opened: list[int] = []
    real_duck = files._duck

    def counting(config, threads=None):
        opened.append(1)
        return real_duck(config, threads)

    monkeypatch.setattr(files, "_duck", counting)
    return opened


def test_a_re_sync_of_unchanged_exports_reads_nothing(tmp_path, engine, shared_data, caplog, monkeypatch):
    """Issue 15: the daily re-read of the same exports hashes the files, finds the inputs (content,
    settings, connector code) as they were at the last successful run and every period's rows
    still held, and stops: no DuckDB session, nothing built, written or deleted; the notices of
    that run are this run's too."""
    import logging

    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    root = tmp_path / "exports"
    _export_run(sample, root / "run-b-old", 1, mtime=1_700_000_000)
    _export_run(sample, root / "run-a-new", 3, mtime=1_800_000_000)
    cfg = make_config(
        tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]'
    )
    first = run(cfg, engine)
    assert first.status == "success", first.error
    assert first.warnings and "ignored" in first.warnings
    before, before_totals = costs(engine), totals(engine)
    built, opened = _counting_builds(monkeypatch), _counting_reads(monkeypatch)
    with caplog.at_level(logging.INFO, logger="portfolio.sync"):
        again = run(cfg, engine)
    assert (again.status, again.rows_written, again.rows_deleted) == ("success", 0, 0)
    assert f"inputs unchanged since its last successful run ({len(before)} rows held)" in caplog.text
    assert (opened, built) == ([], [])
    assert again.warnings == first.warnings  # said again, word for word
    assert (costs(engine), totals(engine)) == (before, before_totals)

    # the newest folder wins, so its time is an input: touching the old one makes it the newest
    os.utime(root / "run-b-old" / "part_0_0001.csv", (1_900_000_000, 1_900_000_000))
    swapped = run(cfg, engine)
    assert swapped.status == "success" and swapped.rows_written > 0
    assert len(opened) == 1
    sample_totals, _ = sample_expectations(sample, "BilledCost")
    assert totals(engine) == {k: v.quantize(Q6, ROUND_HALF_UP) for k, v in sample_totals.items()}


def test_rows_removed_behind_the_sync_or_a_full_sync_read_the_exports_again(
    tmp_path, engine, shared_data, monkeypatch
):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    _split_sample(sample, tmp_path / "exports")
    cfg = make_config(
        tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]'
    )
    assert run(cfg, engine).status == "success"
    before = costs(engine)
    periods = sorted({bp for _, _, bp in before.values()})
    assert len(periods) == 2
    built, opened = _counting_builds(monkeypatch), _counting_reads(monkeypatch)

    # sync --full never trusts the inputs' fingerprint; the periods' own still hold: nothing built
    full = run(cfg, engine, full=True)
    assert (full.status, full.rows_written, full.rows_deleted) == ("success", 0, 0)
    assert (len(opened), built) == (1, [])

    # rows of one period deleted behind the sync's back: the same files are read again and only
    # that period is rounded, built and written
    table = storage.table_of(records.CostRecord)
    with engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.billing_period == periods[0]))
    mended = run(cfg, engine)
    assert mended.status == "success"
    assert mended.rows_written == sum(1 for *_, bp in before.values() if bp == periods[0])
    assert len(opened) == 2
    assert {bp for bp, _ in built} == {periods[0]}
    assert costs(engine) == before

    # another setting is another input: the files are read again and every period rewritten
    other = make_config(
        tmp_path, engine, 'path = "exports"\ncost_column = "EffectiveCost"\napp_tag_keys = ["application"]'
    )
    earlier = len(built)
    assert run(other, engine).rows_written > 0
    after = costs(engine)
    rewritten = {v[2] for k, v in after.items() if before.get(k) != v}
    # a period whose EffectiveCost equals its BilledCost is not rebuilt; 2024-10's one late charge
    # has no EffectiveCost: that period is rebuilt into no rows, and its old row deleted
    assert len(opened) == 3 and {bp for bp, _ in built[earlier:]} == rewritten == {"2024-09"}
    assert not any(v[2] == "2024-10" for v in after.values())
    assert recorded(engine) == {k: v for k, v in totals(engine).items() if v} and totals(engine)[("2024-10", "USD")] == 0


def test_a_changed_export_rebuilds_only_the_periods_whose_sums_changed(
    tmp_path, engine, shared_data, caplog, monkeypatch
):
    """Each billing period is fingerprinted on its exact line sums, before the cumulative rounding:
    new files whose periods sum as before build nothing; a restated period is the only one
    rounded, built and written."""
    import logging

    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    files = _split_sample(sample, tmp_path / "exports")
    cfg = make_config(
        tmp_path, engine, 'path = "exports"\ncost_column = "BilledCost"\napp_tag_keys = ["application"]'
    )
    assert run(cfg, engine).status == "success"
    before = costs(engine)
    built = _counting_builds(monkeypatch)
    # an empty extra part (header only): the inputs differ, every period's sums do not
    with gzip.open(files[min(files)], "rt", encoding="utf-8") as fh:
        head = fh.readline()
    (files[min(files)].parent / "export-00002.csv").write_text(head, encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="portfolio.sync"):
        again = run(cfg, engine)
    # written: only the two periods' BillingTotal rows, whose detail lists the files read
    assert (again.status, again.rows_written, again.rows_deleted) == ("success", 2, 0)
    assert f"{len(before)} rows of 2 unchanged partition(s) skipped" in caplog.text
    assert built == []
    assert costs(engine) == before

    # the later period restated (every cost doubled): only its rows are built and rewritten
    later = max(files)
    with gzip.open(files[later], "rt", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("BilledCost")
    for r in rows[1:]:
        if r[col] not in ("", "NULL"):
            r[col] = str(Decimal(r[col]) * 2)
    with gzip.open(files[later], "wt", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    restated = run(cfg, engine)
    assert restated.status == "success", restated.error
    assert {bp for bp, _ in built} == {later}
    after = costs(engine)
    assert {k: v for k, v in after.items() if v[2] != later} == {
        k: v for k, v in before.items() if v[2] != later
    }
    assert recorded(engine) == totals(engine)
    assert sum(v[0] for v in after.values() if v[2] == later) == totals(engine)[(later, "USD")]


def _rollup_rows(conn: Any) -> list[tuple[Any, ...]]:
    """The cost rollup as stored: every column, and on SQLite each value's storage class too."""
    m = records.COST_MONTH
    cols = [m.c[c.name] for c in m.columns]
    if conn.dialect.name == "sqlite":
        cols += [sa.func.typeof(m.c[c.name]) for c in m.columns]
    return sorted(conn.execute(sa.select(*cols)).all(), key=repr)


def test_first_sync_rollup_summed_from_the_frames_equals_the_daily_rows(tmp_path, engine, shared_data, monkeypatch):
    """Issue 15: a source's first bill has its cost rollup summed from the frames it writes (on
    SQLite), not by a GROUP BY over the rows just written; it must be row for row, value for value
    and storage class for storage class what that GROUP BY gives."""
    replaced: list[int] = []
    original = rollup.FirstSyncCost.rows  # what rollup.refresh stores instead of its GROUP BY

    def spy(self):
        rows = original(self)
        replaced.append(len(rows))
        return rows

    monkeypatch.setattr(rollup.FirstSyncCost, "rows", spy)
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    cfg = make_config(tmp_path, engine, f'path = "{sample}"\ncost_column = "EffectiveCost"\napp_tag_keys = ["application"]')
    assert run(cfg, engine).status == "success"
    with engine.begin() as conn:
        summed = _rollup_rows(conn)
        rollup.refresh(conn, records.CostRecord, "bill")  # the GROUP BY over the daily rows
        grouped = _rollup_rows(conn)
        assert rollup.differences(conn) == []
    assert summed == grouped and len(summed) == 8  # 357 daily rows of the sample
    # SQLite takes the frames' sums; PostgreSQL (NUMERIC, rounded by the server) the GROUP BY
    assert replaced == ([len(summed)] if engine.dialect.name == "sqlite" else [])
    # the second sync of a changed export restates through the daily table, and still agrees
    changed = tmp_path / "changed.csv"
    _corrupt(sample, changed, 3, "EffectiveCost", "123.456789")
    cfg2 = make_config(tmp_path, engine, f'path = "{changed}"\ncost_column = "EffectiveCost"\napp_tag_keys = ["application"]')
    assert run(cfg2, engine).status == "success"
    with engine.begin() as conn:
        after = _rollup_rows(conn)
        rollup.refresh(conn, records.CostRecord, "bill")
        assert _rollup_rows(conn) == after != summed
    assert len(replaced) == (1 if engine.dialect.name == "sqlite" else 0)


#: the cumulative rounding as DuckDB's window function defines it (the code before issue 15's
#: numpy running sums): the oracle the numpy version must equal, row for row
_WINDOW_ROUNDING = """
SELECT app_id, day, category, service, amount, currency, billing_period FROM (
  SELECT app_id, day, category, service, currency, billing_period,
         CAST(round(cum, 6) - round(cum - amount, 6) AS DECIMAL(38,6)) AS amount
  FROM (SELECT *, SUM(amount) OVER (PARTITION BY bp_start, currency
                                    ORDER BY hash(app_id, day, category, service), app_id, day, category, service
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum
        FROM agg WHERE billing_period = ?) AS w
) AS r WHERE amount <> 0 ORDER BY app_id, day, category, service
"""


def test_cumulative_rounding_equals_the_window_definition():
    """Half-way cases both signs, credits that take a running sum below zero, two currencies and
    two bill starts in one billing period, amounts that round to zero, and 3,000 random amounts
    with 12 decimals: the numpy running sums give exactly the rows of the window definition."""
    import random

    from connectors.focus import aggregate

    rng = random.Random(15)
    rows = []
    hand = ["0.0000005", "-0.0000005", "0.0000025", "-0.0000025", "-3.0000015", "0.0000004999", "-0.0000004999",
            "1000000000.123456500000", "-1000000000.123456500001", "0.000000000001", "0"]  # fmt: skip
    for i, a in enumerate(hand):
        rows.append(("2026-01-01", "2026-01", "USD", f"app-{i}", f"2026-01-{1 + i:02d}", "infra", "s", a))
    for i in range(3000):
        start, cur = rng.choice([("2026-02-01", "USD"), ("2026-02-01", "EUR"), ("2026-02-15", "USD")])
        amount = Decimal(rng.randint(-10**15, 10**15)).scaleb(-12) if i % 3 else Decimal(rng.randint(-10**6, 10**6)).scaleb(-12)
        rows.append((start, "2026-02", cur, f"app-{i % 97}", f"2026-02-{1 + i % 28:02d}", rng.choice(["infra", "vendor"]), f"s{i}", str(amount)))
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE agg (bp_start DATE, billing_period VARCHAR, currency VARCHAR, app_id VARCHAR, day DATE, "
        "category VARCHAR, service VARCHAR, amount DECIMAL(38,12))"
    )
    con.executemany("INSERT INTO agg VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS DECIMAL(38,12)))", rows)
    wanted = {bp: con.execute(_WINDOW_ROUNDING, [bp]).fetchall() for bp in ("2026-01", "2026-02")}
    sums = {  # bill -> its exact total
        (bp, cur, str(start)): Decimal(total)
        for bp, cur, start, total in con.execute("SELECT billing_period, currency, bp_start, SUM(amount) FROM agg GROUP BY ALL").fetchall()
    }
    by_period = dict(aggregate._rounded(con, ["2026-01", "2026-02"]))
    assert list(by_period) == ["2026-01", "2026-02"]
    for bp in ("2026-01", "2026-02"):
        want = wanted[bp]
        got = [tuple(r.values()) for r in by_period[bp].to_pylist()]
        assert got == want and len(got) > 5
        # and every bill still adds up to its exact total rounded once, half away from zero
        for cur in ("USD", "EUR"):
            for start in ("2026-01-01", "2026-02-01", "2026-02-15"):
                exact = sum((Decimal(r[7]) for r in rows if r[1] == bp and r[2] == cur and r[0] == start), Decimal(0))
                if not any(r[1] == bp and r[2] == cur and r[0] == start for r in rows):
                    continue
                rounded = exact.quantize(Decimal("0.000001"), rounding="ROUND_HALF_UP")
                assert sums[(bp, cur, start)] == exact
                # the rows of this bill (identified by their keys) sum to the rounded total
                keys = {(r[3], r[4], r[5], r[6]) for r in rows if r[1] == bp and r[2] == cur and r[0] == start}
                total = sum((g[4] for g in got if (g[0], str(g[1]), g[2], g[3]) in keys and g[5] == cur), Decimal(0))
                assert total == rounded, (bp, cur, start)
