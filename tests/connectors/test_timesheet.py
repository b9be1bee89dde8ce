"""timesheet on real CSV and Excel files (tests/fixtures/timesheet): validation lists every bad row,
nothing is written on a bad file, the file replaces the weeks it holds."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from connectors import timesheet
from connectors.base import InputFileError, Replace
from portfolio import storage
from portfolio.config import loads
from portfolio.records import MaintenanceRecord
from portfolio.sync import sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "timesheet"


def _config(path: str, base: Path = FIXTURES, extra: str = "") -> Any:
    return loads(
        f"""
[[apps]]
id = "churn-predictor"
team = "search"

[[apps]]
id = "fraud-scorer"
name = "Fraud Scorer"
team = "risk"

[connectors.hours]
type = "timesheet"
path = "{path}"
{extra}
""",
        base_dir=str(base),
    )


def _rows(engine: Engine) -> Any:
    return (
        storage.read_frame(engine, MaintenanceRecord)
        .sort_values(["day", "app_id", "ref"])
        .reset_index(drop=True)
    )


W02, W03, W04 = date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19)


@pytest.mark.parametrize(
    ("path", "extra", "weeks", "expected"),
    [
        pytest.param(
            "timesheet_2026w02.csv",
            "",
            [W02, W03],
            {
                ("churn-predictor", W02, "2026-W02:klo"): 12.5,
                ("churn-predictor", W02, "2026-W02:improvement"): 3.0,
                ("fraud-scorer", W02, "2026-W02:incident"): 6.5,  # risk 4 + platform 2.5
                ("fraud-scorer", W03, "2026-W03:klo"): 6.0,  # app given by its name
                ("churn-predictor", W03, "2026-W03:klo"): 1.25,  # kind "KLO"
            },
            id="csv",
        ),
        pytest.param(
            "timesheet.xlsx",
            'sheet = "Hours"',
            [W04],
            {
                ("churn-predictor", W04, "2026-W04:klo"): 7.5,  # a date cell; no kind column = klo
                ("fraud-scorer", W04, "2026-W04:klo"): 3.0,  # an ISO week string
            },
            id="xlsx",
        ),
    ],
)
def test_rows_weeks_and_replace_windows(
    path: str, extra: str, weeks: list[date], expected: dict[tuple[str, date, str], float]
) -> None:
    items = list(timesheet.pull(_config(path, extra=extra).connectors["hours"], None))
    replaces = [i for i in items if isinstance(i, Replace)]
    assert replaces == [Replace(MaintenanceRecord, w, date.fromordinal(w.toordinal() + 6)) for w in weeks]
    recs = [i for i in items if isinstance(i, MaintenanceRecord)]
    assert {(r.app_id, r.day, r.ref): r.hours for r in recs} == expected
    assert all(r.kind == r.ref.split(":")[1] and r.incidents == 0 and r.ttr_hours is None for r in recs)
    titles = {r.ref: r.title for r in recs if r.app_id == "fraud-scorer"}
    if path.endswith(".csv"):
        assert titles["2026-W02:incident"] == "timesheet 2026-W02 incident (platform, risk)"


def test_sync_twice_same_rows(engine: Engine) -> None:
    cfg = _config("timesheet_2026w02.csv")
    first = sync(cfg, engine).runs[0]
    before = _rows(engine)
    second = sync(cfg, engine).runs[0]
    assert (first.status, second.status) == ("success", "success")
    assert (first.rows_written, second.rows_written, second.rows_deleted) == (5, 0, 0)
    assert _rows(engine).drop(columns="id").equals(before.drop(columns="id"))
    assert before.hours.sum() == pytest.approx(29.25)


BAD_ROWS = [
    "file timesheet_bad.csv, row 3, column 'week': 2026-01-07 is a Wednesday, not a Monday (that week starts on 2026-01-05)",
    "file timesheet_bad.csv, row 4, column 'app': unknown app 'unknown-app' (configured: churn-predictor, fraud-scorer)",
    "file timesheet_bad.csv, row 5, column 'week': '2026-W54' is not a week of 2026",
    "file timesheet_bad.csv, row 6, column 'hours': must be a number >= 0 (got '-1')",
    "file timesheet_bad.csv, row 6, column 'kind': 'oncall' is not one of klo, incident, improvement",
    "file timesheet_bad.csv, row 7, column 'app': empty",
    "file timesheet_bad.csv, row 7, column 'hours': not a number ('abc')",
]


def test_bad_rows_all_listed_nothing_written_earlier_rows_intact(engine: Engine) -> None:
    assert sync(_config("timesheet_2026w02.csv"), engine).runs[0].status == "success"
    before = _rows(engine)
    run = sync(_config("timesheet_bad.csv"), engine).runs[0]
    assert run.status == "failed" and run.rows_written == 0 and run.rows_deleted == 0
    error = run.error or ""
    assert error.startswith(
        f"hours: file {FIXTURES / 'timesheet_bad.csv'}: 7 problem(s), nothing was written:"
    )
    assert [line.strip() for line in error.splitlines()[1:]] == BAD_ROWS
    # the good row 2 (churn-predictor, W02, 8 h) was not written either: W02 still holds the earlier 12.5 h
    assert _rows(engine).drop(columns="id").equals(before.drop(columns="id"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "team,application,hours\nsearch,x,1\n", "missing column(s) app_id, week", id="missing-columns"
        ),
        pytest.param("", "the file is empty: expected a header row", id="empty"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(InputFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(timesheet.pull(_config("t.csv", base=tmp_path).connectors["hours"], None))


def test_missing_file_and_bad_excel(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="nope.csv: file not found"):
        list(timesheet.pull(_config("nope.csv", base=tmp_path).connectors["hours"], None))
    (tmp_path / "t.xlsx").write_text("team,app,week,hours\n")  # a CSV saved under an Excel name
    with pytest.raises(InputFileError, match="not a readable Excel file"):
        list(timesheet.pull(_config("t.xlsx", base=tmp_path).connectors["hours"], None))
    with pytest.raises(InputFileError, match="no sheet 'Time'; sheets: Notes, Hours"):
        list(timesheet.pull(_config("timesheet.xlsx", extra='sheet = "Time"').connectors["hours"], None))


def test_file_replaces_the_weeks_it_holds(tmp_path: Path, engine: Engine) -> None:
    sheet = tmp_path / "hours.csv"
    shutil.copy(FIXTURES / "timesheet_2026w02.csv", sheet)
    cfg = _config("hours.csv", base=tmp_path)
    assert sync(cfg, engine).runs[0].status == "success"
    # next export holds only week 03, with the fraud-scorer line dropped and a new improvement line
    sheet.write_text(
        "team,app,week,hours,kind\nsearch,churn-predictor,2026-W03,2,klo\nsearch,churn-predictor,2026-W03,5,improvement\n"
    )
    run = sync(cfg, engine).runs[0]
    assert run.status == "success" and run.rows_deleted == 1
    got = {(r.app_id, r.ref): r.hours for r in _rows(engine).itertuples()}
    assert got == {
        ("churn-predictor", "2026-W02:klo"): 12.5,  # week 02 is not in the new file: untouched
        ("churn-predictor", "2026-W02:improvement"): 3.0,
        ("fraud-scorer", "2026-W02:incident"): 6.5,
        ("churn-predictor", "2026-W03:klo"): 2.0,  # restated
        ("churn-predictor", "2026-W03:improvement"): 5.0,  # new
    }


@pytest.mark.parametrize(
    ("value", "monday"),
    [
        pytest.param("2026-01-05", W02, id="monday-date"),
        pytest.param("2026-W02", W02, id="iso-week"),
        pytest.param("2026W2", W02, id="iso-week-compact"),
        pytest.param("2020-W53", date(2020, 12, 28), id="week-53"),
        pytest.param(datetime(2026, 1, 19), W04, id="excel-datetime"),
        pytest.param("2026-01-19 00:00:00", W04, id="datetime-text"),
    ],
)
def test_parse_week(value: Any, monday: date) -> None:
    assert timesheet.parse_week(value) == monday


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "2026-01-11", "2026-01-11 is a Sunday, not a Monday (that week starts on 2026-01-05)", id="sunday"
        ),
        pytest.param("2021-W53", "'2021-W53' is not a week of 2021", id="no-week-53"),
        pytest.param("Jan 5", "'Jan 5' is neither a date YYYY-MM-DD nor an ISO week YYYY-Www", id="words"),
        pytest.param("2026-02-30", "'2026-02-30' is neither a date", id="impossible-date"),
    ],
)
def test_parse_week_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        timesheet.parse_week(value)
    assert str(err.value).startswith(message)
