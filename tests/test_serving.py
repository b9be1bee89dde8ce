"""How `mlportfolio up` / `demo` start Streamlit (issue 11): tracebacks off the page, metrics
refused, and the Host names Streamlit itself accepts (``--server.allowedHosts``). The real
processes are tests/browser/test_gate.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

from portfolio import cli, config

ROOT = Path(__file__).resolve().parents[1]


def _pairs(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == flag]


def test_the_dashboard_command_hides_tracebacks_and_lists_its_hosts() -> None:
    cmd = cli.streamlit_command(8501, "127.0.0.1", None, ["localhost", "127.0.0.1"])
    assert cmd[1:3] == ["-c", "from portfolio.dashboard import serve; serve()"]  # metrics refused there
    assert _pairs(cmd, "--client.showErrorDetails") == ["none"]
    assert _pairs(cmd, "--server.allowedHosts") == ["localhost", "127.0.0.1"]
    assert _pairs(cmd, "--server.address") == ["127.0.0.1"]


def test_hosts_without_sign_in_are_local_names_and_the_allow_list() -> None:
    cfg = config.loads('[server]\nallowed_hosts = ["laptop.local"]\n')
    assert cli.served_host_names(cfg, "127.0.0.1") == ["localhost", "127.0.0.1", "::1", "laptop.local"]
    assert cli.served_host_names(None, "127.0.0.1") == ["localhost", "127.0.0.1", "::1"]  # the demo


def test_hosts_with_sign_in_are_any_unless_listed() -> None:
    signed = config.loads("[auth]\nenabled = true\n")
    assert cli.served_host_names(signed, "0.0.0.0") == []  # any: the sign-in guards the data
    listed = config.loads('[server]\nallowed_hosts = ["ml.example.com"]\n[auth]\nenabled = true\n')
    assert cli.served_host_names(listed, "0.0.0.0") == ["localhost", "127.0.0.1", "::1", "ml.example.com"]


def test_the_shipped_streamlit_config_keeps_a_bare_streamlit_run_local() -> None:
    shipped = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert shipped["server"]["address"] == "127.0.0.1"
    assert shipped["client"]["showErrorDetails"] == "none"


def test_the_server_refuses_uploads_over_the_configured_cap() -> None:
    """Streamlit holds an upload in memory before the page sees it: its own limit follows [uploads]."""
    assert cli.upload_limit_mb(20_000_000) == 20  # 19.07 MiB, rounded up to whole MB
    assert cli.upload_limit_mb(2**20) == 1
    assert cli.upload_limit_mb(1) == 1
    cmd = cli.streamlit_command(8501, max_upload_mb=cli.upload_limit_mb(5_000_000))
    assert _pairs(cmd, "--server.maxUploadSize") == ["5"]
    assert "--server.maxUploadSize" not in cli.streamlit_command(8501)
    shipped = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert shipped["server"]["maxUploadSize"] == cli.upload_limit_mb(config.Uploads().max_bytes)
