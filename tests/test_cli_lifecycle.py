"""``mlportfolio propose / approve / reject / stage / lifecycle`` on a real database (either backend):
the proposal prints the projection it froze, the approval moves the app to retiring, the history
lists every event and the derived stage as of a date; bad input exits 1 or 2 with one line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from portfolio import cli, records, storage
from tests.test_cli import write_config

TODAY = "2026-07-15"


@pytest.fixture
def cfg_path(tmp_path: Path, db_url: str) -> str:
    path = write_config(tmp_path, "", db=db_url)
    engine = storage.make_engine(db_url)
    with engine.begin() as conn:  # 2 maintenance hours in each of April..June 2026 at 100/h: people cost
        storage.upsert(conn, records.App, [records.App(app_id="churn", name="Churn predictor", team="search")])
        storage.upsert(conn, records.MaintenanceRecord, [
            records.MaintenanceRecord(source="t", app_id="churn", day=date(2026, m, 10), ref=f"T-{m}", hours=2.0)
            for m in (4, 5, 6)
        ])  # fmt: skip
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_propose_approve_and_the_history(cfg_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "propose", "churn", "retire", "--by", "ann", "--rationale", "KLO only",
                          "--planned", "2026-08-01", "--evidence", "https://t.example.com/1", "--today", TODAY,
                          "--config", cfg_path)  # fmt: skip
    assert code == 0, err
    # people cost (2 h × 100) × 3 months × 4 = 2,400.00 a year; no value; 24 freed hours a year
    assert "projected annual savings 2,400.00 USD, value at risk 0.00 USD, net effect +2,400.00 USD, freed hours 24.0/yr" in out
    code, out, _ = _run(capsys, "lifecycle", "--format", "json", "--config", cfg_path, "--today", TODAY)
    (prop,) = json.loads(out)
    assert (prop["kind"], prop["actor"], prop["projected_annual_savings"]) == ("proposal", "ann", 2400)
    code, out, err = _run(capsys, "approve", prop["id"], "--by", "ann", "--today", TODAY, "--config", cfg_path)
    assert code == 0, err
    assert "self-approved" in out and "churn is retiring, planned 2026-08-01" in out
    code, out, err = _run(capsys, "approve", prop["id"], "--by", "bob", "--today", TODAY, "--config", cfg_path)
    assert code == 1 and "was approved already, by ann on 2026-07-15" in err and "Traceback" not in err
    code, out, _ = _run(capsys, "lifecycle", "churn", "--today", "2026-07-31", "--config", cfg_path)
    assert out.startswith("churn: retiring on 2026-07-31\n")
    assert [line.split()[3] for line in out.splitlines()[3:]] == ["stage", "approval", "proposal"]  # newest first
    code, out, _ = _run(capsys, "lifecycle", "churn", "--today", "2026-08-01", "--config", cfg_path)
    assert out.startswith("churn: retired on 2026-08-01\n")


def test_reject_and_stage_changes(cfg_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "propose", "churn", "invest", "--by", "ann", "--rationale", "grows", "--today", TODAY, "--config", cfg_path)
    _, out, _ = _run(capsys, "lifecycle", "churn", "--today", TODAY, "--config", cfg_path)
    assert "waiting for an approver: invest churn by ann" in out
    pid = out.split("(id ")[1].split(")")[0]
    code, _, err = _run(capsys, "reject", pid, "--by", "bob", "--today", TODAY, "--config", cfg_path)
    assert code == 1 and "comment: say why" in err
    code, out, err = _run(capsys, "reject", pid, "--by", "bob", "--comment", "not yet", "--today", TODAY, "--config", cfg_path)
    assert (code, out.strip()) == (0, f"rejected {pid} by bob"), err
    code, out, err = _run(capsys, "stage", "churn", "paused", "--by", "ann", "--rationale", "sponsor left",
                          "--today", TODAY, "--config", cfg_path)  # fmt: skip
    assert (code, out.strip()) == (0, "churn: paused from 2026-07-15 (by ann)"), err
    code, _, err = _run(capsys, "stage", "churn", "retired", "--by", "ann", "--rationale", "x", "--today", TODAY, "--config", cfg_path)
    assert code == 1 and "is paused: it can move to pilot, production, not retired" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(["propose", "nope", "keep", "--by", "a", "--rationale", "r"], 1, "'nope' is not in the inventory", id="unknown-app"),
        pytest.param(["propose", "churn", "retire", "--by", "a", "--rationale", "r", "--planned", "2026-07-01"], 1,
                     "planned date 2026-07-01 is in the past", id="planned-in-the-past"),
        pytest.param(["propose", "churn", "retire", "--by", "a", "--rationale", "r", "--planned", "July"], 2, "", id="not-a-date"),
        pytest.param(["lifecycle", "nope"], 2, "'nope' is not in the inventory", id="history-of-unknown-app"),
    ],
)
def test_bad_input_is_one_line(cfg_path: str, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str) -> None:
    got, _, err = _run(capsys, *args, "--today", TODAY, "--config", cfg_path)
    assert got == code and message in err and "Traceback" not in err
