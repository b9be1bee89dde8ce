"""Relative paths in portfolio.toml mean "next to the config file", whatever the current directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portfolio import config


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///portfolio.db", "sqlite:///{base}/portfolio.db", id="relative-file"),
        pytest.param("sqlite:///data/p.db", "sqlite:///{base}/data/p.db", id="relative-subfolder"),
        pytest.param("sqlite:////abs/p.db", "sqlite:////abs/p.db", id="absolute-kept"),
        pytest.param("sqlite://", "sqlite://", id="memory-kept"),
        pytest.param("sqlite:///:memory:", "sqlite:///:memory:", id="memory-named-kept"),
        pytest.param("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db", id="postgres-kept"),
    ],
)
def test_sqlite_url_resolves_against_the_config_folder(tmp_path: Path, url: str, expected: str) -> None:
    cfg_file = tmp_path / "conf" / "portfolio.toml"
    cfg_file.parent.mkdir()
    cfg_file.write_text(f'database_url = "{url}"\n', encoding="utf-8")
    cfg = config.load(cfg_file)
    assert cfg.database_url == expected.format(base=cfg_file.parent.resolve())


def test_environment_url_is_taken_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text('database_url = "sqlite:///portfolio.db"\n', encoding="utf-8")
    monkeypatch.setenv("PORTFOLIO_DB_URL", "sqlite:///from-env.db")
    assert config.load(cfg_file).database_url == "sqlite:///from-env.db"


def test_cli_from_another_directory_opens_the_database_beside_the_config(tmp_path: Path) -> None:
    """`mlportfolio sync --config conf/portfolio.toml` run from elsewhere writes conf/portfolio.db."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "portfolio.toml").write_text('database_url = "sqlite:///portfolio.db"\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    proc = subprocess.run(
        [sys.executable, "-m", "portfolio.cli", "--config", str(conf / "portfolio.toml"), "sync"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (conf / "portfolio.db").is_file()
    assert not (elsewhere / "portfolio.db").exists()


def test_an_apps_retired_on_goes_with_stage_retired() -> None:
    from portfolio.config import loads
    from portfolio.errors import ConfigError

    ok = loads('[[apps]]\nid = "old"\nteam = "ml"\nstage = "retired"\nretired_on = 2025-03-31\n')
    assert ok.apps[0].retired_on is not None and ok.apps[0].retired_on.isoformat() == "2025-03-31"
    with pytest.raises(ConfigError, match='retired_on goes with stage = "retired"'):
        loads('[[apps]]\nid = "live"\nteam = "ml"\nretired_on = 2025-03-31\n')
