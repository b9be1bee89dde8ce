"""Odd and oversized ledger files: a clear error naming file, row and column — never a traceback,
never minutes of parsing.

Real bytes go through the real reader (CSV and ``.xlsx`` written by openpyxl), the upload page
(AppTest, as an editor and as a viewer) and ``mlportfolio sync`` with an outcomes_file connector
(a subprocess).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from portfolio import config, ledger, records, storage
from tests.dashboard.test_pages import assert_clean, open_page
from tests.dashboard.test_signin import _as

ROOT = Path(__file__).resolve().parents[2]
HEADER = "app_id,month,kind,amount,currency,attribution,evidence,low,high,note\n"
GOOD = "churn-predictor,2026-01,revenue_capture,1000.50,USD,0.5,experiment,,,fine\n"


def upload(data: bytes, name: str = "ledger.csv") -> io.BytesIO:
    """What the upload page hands over: a binary file object with a name and a size (streamlit's UploadedFile)."""
    f = io.BytesIO(data)
    f.name = name  # type: ignore[attr-defined]
    f.size = len(data)  # type: ignore[attr-defined]
    return f


def problems(data: bytes, name: str = "ledger.csv", **caps: Any) -> list[tuple[int, str, str]]:
    """(row, column, reason) of every problem, from reading or from validation."""
    try:
        frame = ledger.read_ledger(upload(data, name), **caps)
    except ledger.LedgerFileError as exc:
        errors = exc.errors
    else:
        _, errors = ledger.validate_ledger(frame)
    return list(errors[["row", "column", "reason"]].itertuples(index=False, name=None))


@pytest.mark.parametrize(
    ("body", "row", "column", "reason"),
    [
        pytest.param("a,0000-01,cost_avoidance,1,,,,,,\n", 3, "month", "year 0000 is out of range", id="month-0000-01"),
        pytest.param("a,0201-01,cost_avoidance,1,,,,,,\n", 3, "month", "year 0201 is out of range", id="month-0201-01"),
        pytest.param("a,2026-02,cost_avoidance,9223372036854.775808,,,,,,\n", 3, "amount", "out of range", id="amount-over-int64-micro"),
        pytest.param("a,2026-02,cost_avoidance,-9300000000000,,,,,,\n", 3, "amount", "out of range", id="negative-amount-over"),
        pytest.param("a,2026-02,cost_avoidance,1,,,,-1,99999999999999,\n", 3, "high", "out of range", id="bound-over"),
        pytest.param("a,2026-02,cost_avoidance,1,,,,,,bad\x00note\n", 3, "note", "control character", id="nul-in-a-note"),
        pytest.param("a,2026-02,cost_avoidance,1,USD,1,estimate,,,note, with a comma\n", 3, "cell 11", "has 11 cells but the header has 10",
                     id="ragged-row"),
        pytest.param("a,2026-02,cost_avoidance,1,,,,,,\nb,2026-02,cost_avoidance,1,,,,,,x,y,z\n", 4, "cell 11", "has 12 cells",
                     id="ragged-later-row"),
    ],
)  # fmt: skip
def test_odd_cell_names_row_and_column(body: str, row: int, column: str, reason: str) -> None:
    found = problems((HEADER + GOOD + body).encode())
    assert [(r, c) for r, c, _ in found] == [(row, column)], found
    assert reason in found[0][2]


def test_amount_at_the_storage_limit_is_accepted() -> None:
    assert problems((HEADER + "a,2026-02,cost_avoidance,9223372036854.775807,,,,,,\n").encode()) == []
    assert Decimal("9223372036854.775807") == ledger.MAX_AMOUNT  # (2**63 - 1) micro-units


def test_trailing_empty_cells_are_not_a_ragged_row() -> None:
    assert problems((HEADER + GOOD.rstrip("\n") + ",,\n").encode()) == []


def test_bytes_that_are_not_utf8_name_row_and_column() -> None:
    data = (HEADER + GOOD).encode() + "a,2026-02,cost_avoidance,1,,,,,,caf\u00e9 cr\u00e8me\n".encode("latin-1")
    found = problems(data)
    assert [(r, c) for r, c, _ in found] == [(3, "note")]
    assert "0xE9" in found[0][2] and "not UTF-8" in found[0][2]


def test_old_xls_and_a_fake_xlsx_are_refused_clearly() -> None:
    assert "save it as .xlsx" in problems(b"\xd0\xcf\x11\xe0", "ledger.xls")[0][2]
    assert "not an Excel .xlsx workbook" in problems((HEADER + GOOD).encode(), "ledger.xlsx")[0][2]


# ----------------------------------------------------------------------------- caps


def million_rows() -> bytes:
    line = GOOD.encode()
    return HEADER.encode() + line * 1_000_000


@pytest.fixture
def no_parsing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any call to the table parsers (the refusals must come before them)."""
    called: list[str] = []
    for name in ("_read_csv", "_read_xlsx"):
        original = getattr(ledger, name)

        def spy(*a: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            called.append(_name)
            return _original(*a, **kw)

        monkeypatch.setattr(ledger, name, spy)
    return called


def test_a_million_row_csv_is_refused_by_size_before_it_is_read(no_parsing: list[str]) -> None:
    data = million_rows()
    f = upload(data)
    with pytest.raises(ledger.LedgerFileError) as err:
        ledger.read_ledger(f, max_bytes=20_000_000, max_rows=200_000)
    assert "over the 20.0 MB limit ([uploads] max_bytes)" in str(err.value)
    assert f.tell() == 0 and no_parsing == []  # not even read


def test_a_million_row_csv_under_the_size_cap_is_refused_by_rows_before_parsing(no_parsing: list[str]) -> None:
    with pytest.raises(ledger.LedgerFileError) as err:
        ledger.read_ledger(upload(million_rows()), max_bytes=None, max_rows=200_000)
    assert "over the 200,000 row limit ([uploads] max_rows)" in str(err.value)
    assert no_parsing == []


def test_rows_are_counted_not_lines() -> None:
    """A quoted note with newlines is one row: a ledger at the cap is accepted."""
    rows = "".join(f'a{i},2026-01,cost_avoidance,1,,,,,,"line one\nline two"\n' for i in range(5))
    assert len(ledger.read_ledger(upload((HEADER + rows).encode()), max_rows=5)) == 5
    with pytest.raises(ledger.LedgerFileError, match="over the 4 row limit"):
        ledger.read_ledger(upload((HEADER + rows).encode()), max_rows=4)


def xlsx(rows: int, *, dimension: bool = True) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER.strip().split(","))
    for i in range(rows):
        ws.append([f"app{i}", "2026-01", "cost_avoidance", 1, "USD", 1, "estimate", None, None, None])
    buf = io.BytesIO()
    wb.save(buf)
    data = buf.getvalue()
    if dimension:
        return data
    out = io.BytesIO()  # the same workbook without its <dimension> element (it is optional)
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename.startswith("xl/worksheets/"):
                body, n = re.subn(rb"<dimension [^>]*/>", b"", body)
                assert n == 1
            dst.writestr(item, body)
    return out.getvalue()


@pytest.mark.parametrize("dimension", [True, False], ids=["declared-dimension", "rows-counted"])
def test_an_xlsx_over_the_row_cap_is_refused_before_openpyxl_reads_it(dimension: bool, no_parsing: list[str]) -> None:
    data = xlsx(300, dimension=dimension)
    with pytest.raises(ledger.LedgerFileError, match=r"over the 200 row limit"):
        ledger.read_ledger(upload(data, "big.xlsx"), max_rows=200)
    assert no_parsing == []
    assert len(ledger.read_ledger(upload(data, "big.xlsx"), max_rows=300)) == 300


def test_uploads_caps_are_configurable() -> None:
    cfg = config.loads("[uploads]\nmax_bytes = 1_000\nmax_rows = 10\n")
    assert (cfg.uploads.max_bytes, cfg.uploads.max_rows) == (1000, 10)
    assert (config.Config().uploads.max_bytes, config.Config().uploads.max_rows) == (20_000_000, 200_000)
    with pytest.raises(Exception, match="uploads.max_rows"):
        config.loads("[uploads]\nmax_rows = 0\n")


# ----------------------------------------------------------------------------- the page


def _upload(at: Any, data: bytes, name: str = "ledger.csv") -> Any:
    at.file_uploader(key="ledger_file").set_value((name, data, "text/csv")).run()
    return at


@pytest.mark.parametrize(
    ("data", "where"),
    [
        pytest.param((HEADER + GOOD + "a,0000-01,cost_avoidance,1,,,,,,\n").encode(), (3, "month"), id="month-0000-01"),
        pytest.param((HEADER + GOOD + "a,2026-02,cost_avoidance,1,,,,,,x,y\n").encode(), (3, "cell 11"), id="ragged"),
        pytest.param((HEADER + GOOD).encode() + b"a,2026-02,cost_avoidance,1,,,,,,caf\xe9\n", (3, "note"), id="not-utf8"),
        pytest.param((HEADER + GOOD + "a,2026-02,cost_avoidance,9300000000000,,,,,,\n").encode(), (3, "amount"), id="huge-amount"),
    ],
)
def test_upload_page_names_row_and_column_without_a_traceback(
    own_demo_url: str, data: bytes, where: tuple[int, str]
) -> None:
    at = _upload(open_page("ledger"), data)
    assert_clean(at)
    assert at.error, "no error shown"
    text = " ".join(e.value for e in at.error)
    assert "Traceback" not in text
    shown = {(int(r), str(c)) for frame in (d.value for d in at.dataframe) if "row" in frame for r, c in zip(frame["row"], frame["column"], strict=True)}
    assert where in shown or (f"row {where[0]}" in text and where[1] in text), (text, shown)
    assert not [b for b in at.button if b.label.startswith("Commit")]


def test_upload_page_applies_the_configured_row_cap(
    own_demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "portfolio" / "demo.toml").read_text(encoding="utf-8")
    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text(text.replace('"sqlite:///demo-portfolio.db"', f'"{own_demo_url}"') + "\n[uploads]\nmax_rows = 3\n")
    monkeypatch.delenv("PORTFOLIO_DEMO")
    monkeypatch.delenv("PORTFOLIO_DB_URL")
    monkeypatch.setenv("PORTFOLIO_CONFIG", str(cfg_file))
    rows = "".join(f"churn-predictor,2026-0{m},revenue_capture,1,,,,,,\n" for m in range(1, 5))
    at = _upload(open_page("ledger"), (HEADER + rows).encode())
    assert_clean(at)
    assert any("over the 3 row limit" in e.value for e in at.error), [e.value for e in at.error]


def test_a_viewer_gets_no_uploader(signed_in_deployment: str) -> None:
    at = _as("bob@example.com", "ledger")
    assert_clean(at)
    assert not at.get("file_uploader"), "a viewer is offered the uploader"
    assert any("cannot upload a ledger" in i.value for i in at.info)
    at = _as("fin@finance.example.com", "ledger")
    assert_clean(at)
    assert at.get("file_uploader")


def test_the_read_path_refuses_a_viewer_too(signed_in_deployment: str) -> None:
    """Past the page: the dashboard's ledger action itself refuses a role that may not upload."""
    from streamlit.testing.v1 import AppTest

    script = f"""
import io, streamlit as st
from portfolio.dashboard import actions, cache
f = io.BytesIO({(HEADER + GOOD).encode()!r}); f.name = "ledger.csv"
try:
    actions.read_ledger(cache.resolve_source(), f)
    st.write("read")
except Exception as exc:
    st.write(f"refused: {{exc}}")
"""
    for email, expected in [("bob@example.com", "refused: your role (viewer) cannot upload a ledger"),
                            ("fin@finance.example.com", "read")]:  # fmt: skip
        at = AppTest.from_string(script, default_timeout=60)
        at.user = {"is_logged_in": True, "email": email, "email_verified": True}
        at.run()
        assert_clean(at)
        assert at.markdown[0].value.startswith(expected), at.markdown[0].value


# ----------------------------------------------------------------------------- the CLI


def test_sync_of_odd_ledgers_names_file_row_and_column(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "ledgers"
    folder.mkdir()
    (folder / "a_month.csv").write_text(HEADER + GOOD + "a,0000-01,cost_avoidance,1,,,,,,\n")
    (folder / "b_ragged.csv").write_text(HEADER + GOOD + "a,2026-02,cost_avoidance,1,,,,,,x,y\n")
    (folder / "c_latin1.csv").write_bytes((HEADER + GOOD).encode() + b"a,2026-02,cost_avoidance,1,,,,,,caf\xe9\n")
    (folder / "d_huge.csv").write_text(HEADER + GOOD + "a,2026-02,cost_avoidance,9300000000000,,,,,,\n")
    toml = tmp_path / "portfolio.toml"
    toml.write_text(f'database_url = "{db_url}"\n\n[connectors.ledger]\ntype = "outcomes_file"\npath = "{folder}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "portfolio.cli", "--config", str(toml), "sync"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "Traceback" not in text
    for expected in ["file a_month.csv, row 3, column 'month'", "file b_ragged.csv, row 3, column 'cell 11'",
                     "file c_latin1.csv, row 3, column 'note'", "file d_huge.csv, row 3, column 'amount'"]:  # fmt: skip
        assert expected in text, text
    assert storage.read_frame(storage.make_engine(db_url), records.OutcomeRecord).empty
