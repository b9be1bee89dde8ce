"""Start-up guard (issue 15): `mlportfolio --help`, `check` and an empty `sync` import none of the
heavy libraries (pandas, DuckDB, pyarrow, Alembic, Streamlit) that cost most of a second before
any work starts. A guard on what is imported, not a timing test (bench/bench_startup.py times it).

Each case runs the real CLI in a fresh interpreter and reports ``sys.modules`` at exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from portfolio import storage

HEAVY = ("pandas", "duckdb", "pyarrow", "alembic", "streamlit", "numpy", "apscheduler")

_PROBE = """
import atexit, json, sys
def _report():
    wanted = json.loads(sys.argv[1])  # top-level names, or prefixes ending in "."
    heavy = sorted({m.split('.')[0] for m in sys.modules} & set(wanted))
    heavy += sorted(m for m in sys.modules for w in wanted if w.endswith('.') and m.startswith(w))
    with open(sys.argv[2], "w") as f:
        json.dump(heavy, f)
atexit.register(_report)
from portfolio.cli import main
try:
    code = main(sys.argv[3:])
except SystemExit as exc:
    code = exc.code
sys.exit(code)
"""


def _imported(tmp_path: Path, *argv: str) -> tuple[int, list[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY), str(out), *argv],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.exists(), proc.stderr
    return proc.returncode, json.loads(out.read_text())


def _empty_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "portfolio.toml"
    cfg.write_text(f'database_url = "sqlite:///{tmp_path / "p.db"}"\n', encoding="utf-8")
    return cfg


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    code, heavy = _imported(tmp_path, "--help")
    assert code == 0
    assert heavy == []


@pytest.mark.parametrize("command", [["check"], ["sync"], ["report", "--help"]])
def test_empty_config_commands_import_nothing_heavy(tmp_path: Path, command: list[str]) -> None:
    cfg = _empty_config(tmp_path)
    # the first process creates the schema (Alembic runs then, once); the second is the one timed
    # by every later start: schema at head, nothing to migrate
    first, _ = _imported(tmp_path, "--config", str(cfg), "sync")
    assert first == 0
    code, heavy = _imported(tmp_path, "--config", str(cfg), *command)
    assert code == 0
    assert heavy == []


def test_check_with_a_connector_loads_only_that_connector(tmp_path: Path) -> None:
    """Validating a config imports the connectors it names, not every registered one."""
    cfg = _empty_config(tmp_path)
    cfg.write_text(
        cfg.read_text() + '\n[connectors.tickets]\ntype = "jira"\nurl = "https://jira.example.com"\n'
        'projects = ["ML"]\napi_token_env = "JIRA_TOKEN"\nemail = "a@example.com"\n',
        encoding="utf-8",
    )
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, '["connectors."]', str(out), "--config", str(cfg), "check"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.exists(), proc.stderr
    loaded = {m for m in json.loads(out.read_text()) if m.count(".") == 1}
    assert "connectors.jira" in loaded, proc.stderr
    assert not loaded & {"connectors.focus", "connectors.prometheus", "connectors.demo", "connectors.sql"}


def test_schema_heads_read_from_the_files_agree_with_alembic() -> None:
    """storage.schema_heads (read without importing Alembic) is what Alembic itself answers."""
    assert storage.schema_heads() == set(ScriptDirectory.from_config(storage.alembic_config()).get_heads())
