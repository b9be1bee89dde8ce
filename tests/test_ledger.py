"""The outcomes ledger: validation row by row, exact money, upload commit, and the P&L it feeds.

Ledgers are real CSV / Excel files (tests/fixtures/outcomes_file); expectations are written out
by hand.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import config, facts, ledger, pnl, records, storage, sync

FIXTURES = Path(__file__).parent / "fixtures" / "outcomes_file"

# (app_id, month, kind, amount, attribution, evidence, low, high, note) of ledger_2026q3.*
Q3 = [
    ("churn", date(2026, 7, 1), "revenue_capture", Decimal("120000"), 0.6, "experiment", Decimal("100000"), Decimal("150000"),
     "holdout test Q3: retained customers x margin"),
    ("churn", date(2026, 8, 1), "revenue_capture", Decimal("118500.10"), 0.6, "experiment", Decimal("99000"), Decimal("140000"), None),
    ("churn", date(2026, 9, 1), "revenue_capture", Decimal("125000"), 0.6, "experiment", Decimal("100000"), Decimal("150000"),
     "retained customers x margin, holdout 5%"),
    ("defects", date(2026, 7, 1), "cost_avoidance", Decimal("48250.55"), 0.35, "estimate", None, None,
     "scrap avoided vs same month last year"),
    ("defects", date(2026, 8, 1), "cost_avoidance", Decimal("0.1"), 1.0, "observational", Decimal("0"), Decimal("0.2"), None),
    ("defects", date(2026, 9, 1), "cost_avoidance", Decimal("0.2"), 1.0, "estimate", None, None, None),
]  # fmt: skip


def as_tuples(recs: list[records.OutcomeRecord]) -> list[tuple[object, ...]]:
    return [(r.app_id, r.month, r.kind, r.amount, r.attribution, r.evidence, r.low, r.high, r.note) for r in recs]


def validate_text(text: str, **kw: str) -> tuple[list[records.OutcomeRecord], pd.DataFrame]:
    return ledger.validate_ledger(ledger.read_ledger(io.BytesIO(text.encode())), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["ledger_2026q3.csv", "ledger_2026q3.xlsx"])
def test_good_ledger_csv_and_excel(name: str) -> None:
    recs, errors = ledger.validate_ledger(ledger.read_ledger(FIXTURES / name))
    assert errors.empty
    assert as_tuples(recs) == Q3
    assert {r.source for r in recs} == {"upload"}
    assert {r.currency for r in recs} == {"USD"}


def test_uploaded_file_object() -> None:
    """The upload page passes a file object with a name (streamlit's UploadedFile is a BytesIO)."""
    for name in ("ledger_2026q3.xlsx", "ledger_2026q3.csv"):
        upload = io.BytesIO((FIXTURES / name).read_bytes())
        upload.name = name  # type: ignore[attr-defined]
        recs, errors = ledger.validate_ledger(ledger.read_ledger(upload))
        assert errors.empty and as_tuples(recs) == Q3


def test_money_is_exact_decimal_from_the_text() -> None:
    text = "app_id,month,kind,amount,low,high\na,2026-01,cost_avoidance,123456789012.345678,0.000001,999999999999.999999\n"
    recs, errors = validate_text(text)
    assert errors.empty
    assert (recs[0].amount, recs[0].low, recs[0].high) == (
        Decimal("123456789012.345678"), Decimal("0.000001"), Decimal("999999999999.999999"),
    )
    # what a float would have done: 123456789012.345678 -> 123456789012.34567
    assert float(recs[0].amount) != recs[0].amount


def test_bad_ledger_lists_every_bad_row() -> None:
    recs, errors = ledger.validate_ledger(ledger.read_ledger(FIXTURES / "bad_ledger.csv"))
    assert recs == []
    not_decimal = "not a decimal number (use digits and a dot, no thousands separators or currency symbols)"
    expected = [
        (3, "app_id", "", "empty: every row needs the app's id"),
        (4, "month", "2026/08", "not a month: expected YYYY-MM, e.g. 2026-01"),
        (5, "month", "2026-13", "not a month: expected YYYY-MM, e.g. 2026-01"),
        (6, "kind", "revenue", "expected revenue_capture or cost_avoidance"),
        (7, "amount", "1,000.00", not_decimal),
        (8, "amount", "$12", not_decimal),
        (9, "attribution", "1.5", "expected a share between 0 and 1 (e.g. 0.6 for 60%)"),
        (10, "evidence", "guess", "expected one of experiment, observational, estimate"),
        (11, "low", "13.00", "low bound is above the amount 12.00"),
        (12, "high", "11.99", "high bound is below the amount 12.00"),
        (13, "app_id,month,kind", "churn,2026-07,revenue_capture", "duplicate of row 2: one row per app, month and kind"),
        # row 14 is blank in the file: skipped, and the next row keeps its number
        (15, "amount", "", "empty: expected a decimal amount such as 1250.00"),
    ]
    assert list(errors.itertuples(index=False, name=None)) == expected
    assert list(errors.columns) == ["row", "column", "value", "reason"]


@pytest.mark.parametrize(
    ("text", "kw", "expected"),
    [
        pytest.param("app_id,month,kind\na,2026-01,cost_avoidance\n", {}, [(1, "amount", "")], id="missing-amount-column"),
        pytest.param(
            "app_id,month,kind,amount,attribtion\na,2026-01,cost_avoidance,1,0.5\n", {}, [(1, "attribtion", "attribtion")],
            id="misspelt-column-refused-not-ignored",
        ),
        pytest.param(
            "app_id,month,kind,amount,currency\na,2026-01,cost_avoidance,1,EUR\nb,2026-01,cost_avoidance,1,\n",
            {"currency": "USD"}, [(2, "currency", "EUR")], id="other-currency-refused-empty-takes-reporting",
        ),
        pytest.param(
            "app_id,month,kind,amount,currency\na,2026-01,cost_avoidance,1,dollars\n", {}, [(2, "currency", "dollars")],
            id="currency-not-a-code",
        ),
        pytest.param(
            "app_id,month,kind,amount\na,2026-01,cost_avoidance,1.0000001\n", {}, [(2, "amount", "1.0000001")],
            id="more-than-6-decimals",
        ),
        pytest.param(
            "app_id,month,kind,amount,attribution\na,2026-01,cost_avoidance,1,-0.1\na,2026-02,cost_avoidance,1,nan\n", {},
            [(2, "attribution", "-0.1"), (3, "attribution", "nan")], id="attribution-negative-or-nan",
        ),
        pytest.param(
            "app_id,month,kind,amount\na,2026-1,cost_avoidance,1\na,2026-01-01,cost_avoidance,1\na,Jan 2026,cost_avoidance,1\n", {},
            [(2, "month", "2026-1"), (3, "month", "2026-01-01"), (4, "month", "Jan 2026")], id="month-formats",
        ),
        pytest.param(
            "app_id,month,kind,amount\na,2026-01,cost_avoidance,-250.5\n", {}, [], id="negative-value-allowed",
        ),
    ],
)
def test_validation_cases(text: str, kw: dict[str, str], expected: list[tuple[int, str, str]]) -> None:
    recs, errors = validate_text(text, **kw)
    assert list(errors[["row", "column", "value"]].itertuples(index=False, name=None)) == expected
    assert (recs == []) == bool(expected)


def test_semicolon_export_and_template() -> None:
    recs, errors = ledger.validate_ledger(ledger.read_ledger(FIXTURES / "template_example.csv"))
    assert errors.empty and as_tuples(recs) == [Q3[0][:8] + ("semicolon-separated export",)]
    template, errors = validate_text(ledger.TEMPLATE_CSV)
    assert errors.empty and len(template) == 2
    assert ledger.TEMPLATE_CSV.splitlines()[0].split(",") == ledger.COLUMNS


INVENTORY_TOML = """
[[apps]]
id = "churn"
team = "growth"
[[apps]]
id = "defects"
team = "quality"
"""


@pytest.fixture
def inventory(engine: Engine) -> Engine:
    """``engine`` with the apps the ledger fixtures name in its inventory (value rows must name known apps)."""
    sync.sync_inventory(config.loads(INVENTORY_TOML), engine)
    return engine


def test_commit_upserts_records_a_sync_run_and_says_what_it_replaces(inventory: Engine) -> None:
    engine = inventory
    recs, _ = ledger.validate_ledger(ledger.read_ledger(FIXTURES / "ledger_2026q3.csv"))
    assert set(ledger.replaced_months(engine, recs)["status"]) == {"new"}
    assert ledger.commit(engine, recs) == 6
    assert ledger.commit(engine, recs) == 0  # same ledger again: nothing changes
    assert set(ledger.replaced_months(engine, recs)["status"]) == {"unchanged"}

    corrected = "app_id,month,kind,amount\nchurn,2026-09,revenue_capture,130000.25\nchurn,2026-10,revenue_capture,1\n"
    new, errors = validate_text(corrected)
    assert errors.empty
    # issue 10: the preview is the writer's dry run, one row per app, month and kind, naming the
    # source of the figure it replaces (was: only the replaced rows, without their source)
    replaced = ledger.replaced_months(engine, new)
    assert list(replaced.itertuples(index=False, name=None)) == [
        ("churn", "2026-09", "revenue_capture", "replaces", "upload", Decimal("125000"), "upload", Decimal("130000.25")),
        ("churn", "2026-10", "revenue_capture", "new", None, None, "upload", Decimal("1")),
    ]
    assert ledger.commit(engine, new) == 2

    t = storage.table_of(records.OutcomeRecord)
    with engine.connect() as conn:
        amounts = dict(conn.execute(sa.select(t.c.month, t.c.amount).where(t.c.app_id == "churn")).all())
        sources = set(conn.execute(sa.select(t.c.source)).scalars())
    assert amounts == {
        date(2026, 7, 1): Decimal("120000"), date(2026, 8, 1): Decimal("118500.10"),
        date(2026, 9, 1): Decimal("130000.25"), date(2026, 10, 1): Decimal("1"),
    }  # fmt: skip
    assert sources == {"upload"}
    runs = storage.read_frame(engine, records.SyncRun).sort_values("id")
    assert runs[["connector", "connector_type", "status", "rows_written"]].values.tolist() == [
        ["upload", "upload", "success", 6], ["upload", "upload", "success", 0], ["upload", "upload", "success", 2],
    ]  # fmt: skip


def test_bad_upload_writes_nothing(inventory: Engine) -> None:
    engine = inventory
    recs, errors = ledger.validate_ledger(ledger.read_ledger(FIXTURES / "bad_ledger.csv"))
    assert len(errors) == 12 and recs == []
    assert ledger.commit(engine, recs) == 0
    assert storage.read_frame(engine, records.OutcomeRecord).empty


PNL_TOML = """
currency = "USD"
[teams.growth]
hourly_rate = 120
[[apps]]
id = "churn"
team = "growth"
stage = "production"
value_kind = "both"
"""


def test_pnl_from_uploaded_ledger_matches_hand_computation_to_the_cent(engine: Engine) -> None:
    upload = (
        "app_id,month,kind,amount,currency,attribution,evidence,low,high,note\n"
        "churn,2026-09,revenue_capture,125000.00,USD,0.6,experiment,100000.00,150000.00,A/B test\n"
        "churn,2026-09,cost_avoidance,48250.55,USD,0.35,estimate,,,fewer support calls\n"
    )
    recs, errors = validate_text(upload)
    assert errors.empty
    cfg = config.loads(PNL_TOML)
    sync.sync_inventory(cfg, engine)
    ledger.commit(engine, recs)
    cost = [
        records.CostRecord(source="bill", app_id="churn", day=date(2026, 9, 3), category="infra", service="gpu", amount=Decimal("1234.56")),
        records.CostRecord(source="bill", app_id="churn", day=date(2026, 9, 20), category="infra", service="gpu", amount=Decimal("765.44")),
        records.CostRecord(source="bill", app_id="churn", day=date(2026, 9, 30), category="vendor", service="api", amount=Decimal("300.10")),
    ]  # fmt: skip
    hours = [records.MaintenanceRecord(source="t", app_id="churn", day=date(2026, 9, 8), ref="T-1", hours=12.5, kind="klo")]
    with engine.begin() as conn:
        storage.upsert(conn, records.CostRecord, cost)
        storage.upsert(conn, records.MaintenanceRecord, hours)
    monthly = pnl.monthly_pnl(facts.load_facts(engine, today=date(2026, 11, 1)), cfg)
    row = monthly[(monthly.app_id == "churn") & (monthly.month == date(2026, 9, 1))].iloc[0]
    # by hand: revenue 125,000.00 x 0.6 = 75,000.00; avoidance 48,250.55 x 0.35 = 16,887.6925
    # value 91,887.6925; low 60,000 + 16,887.6925; high 90,000 + 16,887.6925
    # cost: infra 1,234.56 + 765.44 = 2,000.00; vendor 300.10; people 12.5 h x 120 = 1,500.00 -> 3,800.10
    # net 91,887.6925 - 3,800.10 = 88,087.5925
    expected = {
        "revenue_capture": "75000.00", "cost_avoidance": "16887.69", "value": "91887.69",
        "value_low": "76887.69", "value_high": "106887.69", "value_experiment": "75000.00",
        "value_estimate": "16887.69", "value_observational": "0.00", "infra_cost": "2000.00",
        "vendor_cost": "300.10", "other_cost": "300.10", "people_cost": "1500.00", "cost": "3800.10",
        "net": "88087.59",
    }  # fmt: skip
    got = {k: f"{row[k]:.2f}" for k in expected}
    assert got == expected
