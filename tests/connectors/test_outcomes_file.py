"""The outcomes_file connector through portfolio.sync: real CSV and Excel ledgers, all-or-nothing."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import config, records, storage, sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outcomes_file"

TOML = """
# value rows must name apps of the inventory (issue 10): the apps the fixtures use
[[apps]]
id = "churn"
team = "growth"
[[apps]]
id = "defects"
team = "quality"
[[apps]]
id = "a"
team = "t"

[connectors.value-ledger]
type = "outcomes_file"
path = "{path}"
{extra}
"""


def make_cfg(folder: Path, path: str, extra: str = "") -> config.Config:
    return config.loads(TOML.format(path=path, extra=extra), base_dir=str(folder))


def outcomes(engine: Engine) -> list[tuple[object, ...]]:
    t = storage.table_of(records.OutcomeRecord)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.source, t.c.app_id, t.c.month, t.c.kind, t.c.amount, t.c.attribution, t.c.evidence)
            .order_by(t.c.app_id, t.c.month, t.c.kind)
        ).all()
    return [tuple(r) for r in rows]


Q3 = [
    ("value-ledger", "churn", date(2026, 7, 1), "revenue_capture", Decimal("120000"), 0.6, "experiment"),
    ("value-ledger", "churn", date(2026, 8, 1), "revenue_capture", Decimal("118500.1"), 0.6, "experiment"),
    ("value-ledger", "churn", date(2026, 9, 1), "revenue_capture", Decimal("125000"), 0.6, "experiment"),
    ("value-ledger", "defects", date(2026, 7, 1), "cost_avoidance", Decimal("48250.55"), 0.35, "estimate"),
    ("value-ledger", "defects", date(2026, 8, 1), "cost_avoidance", Decimal("0.1"), 1.0, "observational"),
    ("value-ledger", "defects", date(2026, 9, 1), "cost_avoidance", Decimal("0.2"), 1.0, "estimate"),
]


@pytest.mark.parametrize("name", ["ledger_2026q3.csv", "ledger_2026q3.xlsx", "ledger_2026q3.*"])
def test_sync_twice_same_rows(tmp_path: Path, engine: Engine, name: str) -> None:
    """CSV, Excel, and a glob matching both (same rows in both: refused as duplicates, see below)."""
    folder = tmp_path / "value"
    folder.mkdir()
    for f in ("ledger_2026q3.csv", "ledger_2026q3.xlsx"):
        shutil.copy(FIXTURES / f, folder / f)
    cfg = make_cfg(tmp_path, f"value/{name}")
    first = sync.sync(cfg, engine).runs[0]
    if "*" in name:
        assert first.status == "failed"
        assert first.error is not None
        assert "file ledger_2026q3.xlsx, row 2, column 'app_id,month,kind': duplicate of file ledger_2026q3.csv, row 2" in first.error
        assert first.error.count("duplicate of") == 6
        assert outcomes(engine) == []
        return
    assert (first.status, first.rows_written, first.rows_deleted) == ("success", 6, 0), first.error
    assert outcomes(engine) == Q3
    second = sync.sync(cfg, engine).runs[0]
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    assert outcomes(engine) == Q3


def test_bad_file_refused_row_by_row_and_earlier_rows_intact(tmp_path: Path, engine: Engine) -> None:
    ledger_file = tmp_path / "ledger.csv"
    shutil.copy(FIXTURES / "ledger_2026q3.csv", ledger_file)
    cfg = make_cfg(tmp_path, "ledger.csv")
    assert sync.sync(cfg, engine).ok
    shutil.copy(FIXTURES / "bad_ledger.csv", ledger_file)  # someone saves a broken ledger over it
    run = sync.sync(cfg, engine).runs[0]
    assert run.status == "failed"
    assert run.error is not None
    lines = run.error.splitlines()
    assert lines[0] == "value-ledger: file ledger.csv: 12 problem(s); nothing was written:"
    assert [line.split(",")[1].strip() for line in lines[1:]] == [
        f"row {n}" for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15)
    ]
    assert lines[5] == (
        "file ledger.csv, row 7, column 'amount' (value '1,000.00'): not a decimal number "
        "(use digits and a dot, no thousands separators or currency symbols)"
    )
    assert outcomes(engine) == Q3  # earlier data intact, nothing of the bad file written


def test_a_ledger_cut_inside_a_quoted_note_is_refused(tmp_path: Path, engine: Engine) -> None:
    """A copy or upload cut short inside a quoted cell: the reader must not take the rest of the file
    as that note (the row would pass with a cut note and nobody would know). A file whose quoting is
    merely odd but closed still reads."""
    ledger_file = tmp_path / "ledger.csv"
    shutil.copy(FIXTURES / "ledger_2026q3.csv", ledger_file)
    cfg = make_cfg(tmp_path, "ledger.csv")
    assert sync.sync(cfg, engine).ok
    data = (FIXTURES / "ledger_2026q3.csv").read_bytes()
    cut = data.index(b'"retained customers') + len(b'"retain')  # row 4's quoted note, cut mid-word
    ledger_file.write_bytes(data[:cut])
    run = sync.sync(cfg, engine).runs[0]
    assert run.status == "failed" and run.error is not None
    assert run.error.splitlines()[1] == (
        "file ledger.csv, row 4, column 'note' (value 'retain'): the file ends inside a quoted cell "
        '(a " is never closed): it may be cut short; check the file is complete'
    )
    assert outcomes(engine) == Q3  # earlier data intact
    ledger_file.write_bytes(data[:cut] + b'"\n')  # the same rows, the quote closed: read, note and all
    assert sync.sync(cfg, engine).ok
    # the file now holds churn for July..September only: it is the truth for those months
    assert outcomes(engine) == Q3[:3]



def test_corrected_ledger_replaces_the_months_it_holds(tmp_path: Path, engine: Engine) -> None:
    ledger_file = tmp_path / "ledger.csv"
    shutil.copy(FIXTURES / "ledger_2026q3.csv", ledger_file)
    cfg = make_cfg(tmp_path, "ledger.csv")
    assert sync.sync(cfg, engine).ok
    # September restated: churn corrected, defects' row dropped; July and August not in the file
    ledger_file.write_text("app_id,month,kind,amount,evidence\nchurn,2026-09,revenue_capture,99.99,estimate\n")
    run = sync.sync(cfg, engine).runs[0]
    assert (run.status, run.rows_written, run.rows_deleted) == ("success", 1, 1)
    assert outcomes(engine) == [
        Q3[0], Q3[1], ("value-ledger", "churn", date(2026, 9, 1), "revenue_capture", Decimal("99.99"), 1.0, "estimate"),
        Q3[3], Q3[4],
    ]


@pytest.mark.parametrize(
    ("extra", "status", "error"),
    [
        pytest.param("", "failed", "file ledger.csv, row 3, column 'currency' (value 'EUR'): EUR is not the reporting currency USD", id="default-usd-refuses-eur"),
        pytest.param('currency = "EUR"', "failed", "file ledger.csv, row 2, column 'currency' (value 'USD'): USD is not the reporting currency EUR", id="eur-refuses-usd"),
    ],
)
def test_currency(tmp_path: Path, engine: Engine, extra: str, status: str, error: str) -> None:
    (tmp_path / "ledger.csv").write_text(
        "app_id,month,kind,amount,currency\na,2026-01,cost_avoidance,1,USD\na,2026-02,cost_avoidance,2,EUR\n"
    )
    run = sync.sync(make_cfg(tmp_path, "ledger.csv", extra), engine).runs[0]
    assert run.status == status
    assert run.error is not None and error in run.error
    assert outcomes(engine) == []


def test_reporting_currency_param_accepts_its_rows(tmp_path: Path, engine: Engine) -> None:
    (tmp_path / "ledger.csv").write_text("app_id,month,kind,amount,currency\na,2026-01,cost_avoidance,1.5,EUR\na,2026-02,cost_avoidance,2,\n")
    run = sync.sync(make_cfg(tmp_path, "ledger.csv", 'currency = "EUR"'), engine).runs[0]
    assert (run.status, run.rows_written) == ("success", 2)
    t = storage.table_of(records.OutcomeRecord)
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.c.currency, t.c.amount).order_by(t.c.month)).all() == [
            ("EUR", Decimal("1.5")), ("EUR", Decimal("2")),
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param("missing.csv", "value-ledger: file missing.csv: no such file or folder", id="missing-file"),
        pytest.param("empty-dir", "value-ledger: file empty-dir: no ledger file (.csv, .xlsx, .xlsm) matches", id="empty-folder"),
        pytest.param("*.parquet", "value-ledger: file *.parquet: no ledger file (.csv, .xlsx, .xlsm) matches", id="glob-no-match"),
    ],
)
def test_nothing_to_read_is_a_clear_error(tmp_path: Path, engine: Engine, path: str, error: str) -> None:
    (tmp_path / "empty-dir").mkdir()
    run = sync.sync(make_cfg(tmp_path, path), engine).runs[0]
    assert (run.status, run.error) == ("failed", error)


def test_folder_of_ledgers(tmp_path: Path, engine: Engine) -> None:
    folder = tmp_path / "ledgers"
    folder.mkdir()
    (folder / "2026-01.csv").write_text("app_id,month,kind,amount\na,2026-01,cost_avoidance,10.10\n")
    (folder / "2026-02.csv").write_text("app_id,month,kind,amount\na,2026-02,cost_avoidance,20.20\n")
    (folder / "notes.txt").write_text("not a ledger")
    run = sync.sync(make_cfg(tmp_path, "ledgers"), engine).runs[0]
    assert (run.status, run.rows_written) == ("success", 2)
    assert [r[4] for r in outcomes(engine)] == [Decimal("10.10"), Decimal("20.20")]


def test_unknown_app_refuses_the_whole_file_with_a_did_you_mean(tmp_path: Path, engine: Engine) -> None:
    """Issue 10: a row naming an app of no inventory never becomes an app; earlier data stays."""
    ledger_file = tmp_path / "ledger.csv"
    shutil.copy(FIXTURES / "ledger_2026q3.csv", ledger_file)
    cfg = make_cfg(tmp_path, "ledger.csv")
    assert sync.sync(cfg, engine).ok
    ledger_file.write_text(
        "app_id,month,kind,amount\nchurn,2026-10,revenue_capture,5\nchrun,2026-10,revenue_capture,7\n"
    )
    run = sync.sync(cfg, engine).runs[0]
    assert (run.status, run.rows_written) == ("failed", 0)
    assert run.error == (
        "value-ledger: file ledger.csv: 1 problem(s); nothing was written:\n"
        "file ledger.csv, row 3, column 'app_id' (value 'chrun'): no app 'chrun' in the inventory: did you mean 'churn'?"
    )
    assert outcomes(engine) == Q3  # the good row of the refused file is not written either
    t = storage.table_of(records.App)
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.select(t.c.app_id)).scalars()) == ["a", "churn", "defects"]


def test_an_app_found_by_an_inventory_connector_is_known(tmp_path: Path, engine: Engine) -> None:
    """The inventory is config [[apps]] and the apps in the database (an MLflow registry's, ...)."""
    with engine.begin() as conn:
        storage.upsert(conn, records.App, [records.App(app_id="ranker", name="ranker", team="search", source="mlflow")])
    (tmp_path / "ledger.csv").write_text("app_id,month,kind,amount\nranker,2026-10,revenue_capture,5\n")
    run = sync.sync(make_cfg(tmp_path, "ledger.csv"), engine).runs[0]
    assert (run.status, run.rows_written) == ("success", 1), run.error
    assert outcomes(engine) == [("value-ledger", "ranker", date(2026, 10, 1), "revenue_capture", Decimal("5"), 1.0, "estimate")]
