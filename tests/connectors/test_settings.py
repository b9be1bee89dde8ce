"""Typed connector settings (issue 12): every registered connector declares its settings as a model,
every load of portfolio.toml checks them, a misspelt key gets a did-you-mean, a bad value is named
by its key and never shown, and the README's reference is what the models say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import connectors
from connectors import settings
from portfolio import config
from portfolio.config import SettingsError

ROOT = Path(__file__).resolve().parents[2]
TYPES = sorted(connectors.REGISTRY)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_misspelt_settings_fail_check_with_did_you_mean(tmp_path: Path) -> None:
    """Before: ``app_tag_key`` and ``cost_colum`` passed ``check`` and the FOCUS sync booked all spend
    to unallocated, reporting success. The real console script, as a user runs it."""
    (tmp_path / "bill.csv").write_text("x\n")
    cfg = tmp_path / "portfolio.toml"
    cfg.write_text(
        '[connectors.bill]\ntype = "focus"\npath = "bill.csv"\napp_tag_key = ["application"]\n'
        'cost_colum = "BilledCost"\n\n'
        '[connectors.tickets]\ntype = "jira"\nurl = "https://x.atlassian.net"\napi_token = "s3cr3t-pasted-token"\n'
    )
    mlportfolio = Path(sys.executable).parent / "mlportfolio"
    done = subprocess.run(
        [str(mlportfolio), "check", "--config", str(cfg)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {cfg}: invalid connector settings",
        "  connectors.bill.app_tag_key: unknown setting of the focus connector; did you mean app_tag_keys?",
        "  connectors.bill.cost_colum: unknown setting of the focus connector; did you mean cost_column?",
        "  connectors.tickets.api_token: unknown setting of the jira connector; did you mean api_token_env?",
    ]
    assert "s3cr3t" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        pytest.param('type = "opencost"\nurl = "http://x"\ndays = "lots"', "days", "input should be a valid integer", id="wrong-type"),
        pytest.param('type = "opencost"\ntoken_env = 5', "url", "field required", id="required-missing"),
        pytest.param('type = "focus"\npath = "x"\ncost_column = "Spend"', "cost_column", "expected one of EffectiveCost", id="bad-choice"),
        pytest.param(
            'type = "focus"\npath = "x"\nresource_patterns = [{ regex = "(", app = "a" }]',
            "resource_patterns.0.regex",
            "not a valid regular expression",
            id="bad-regex",
        ),
        pytest.param('type = "pagerduty"\nservices = { P1 = 7 }', "services.P1", "input should be a valid string", id="bad-map-value"),
        pytest.param('type = "github_issues"\nrepos = ["a/b"]\nschedul = "0 6 * * *"', "schedul", "did you mean schedule?", id="common-key-misspelt"),
    ],
)
def test_one_error_type_naming_connector_and_key(table: str, key: str, message: str) -> None:
    with pytest.raises(SettingsError) as exc:
        config.loads(f"[connectors.src]\n{table}\n")
    assert (exc.value.connector, exc.value.key) == ("src", key)
    assert f"connectors.src.{key}: " in str(exc.value) and message in str(exc.value)
    for shown in ("lots", "Spend", "(", '"0 6'):
        assert f"{shown!r}" not in str(exc.value)


@pytest.mark.parametrize("type_name", TYPES)
def test_every_connector_declares_its_settings(type_name: str) -> None:
    model = settings.params_model(type_name)
    assert model is not None, f"connectors.{type_name} has no Params(ConnectorParams) model"
    for key, info in model.model_fields.items():
        assert info.description and "\n" not in info.description, f"{type_name}.{key}: one line of help"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key)
    assert not set(model.model_fields) & set(config.COMMON_CONNECTOR_KEYS)


def test_readme_reference_is_generated_from_the_models() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.with_reference(readme) == readme, "run: python scripts/connector_reference.py"
    for key in ("api_url", "default_currency", "app_map", "until"):  # the settings the README missed
        assert f"| `{key}` |" in readme


def test_readme_example_config_loads() -> None:
    """The portfolio.toml example of the README passes the settings models (no unknown key)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = config.loads(example)
    assert {c.type for c in cfg.connectors.values()} == set(connectors.REGISTRY)


def test_readme_example_comments_name_real_settings() -> None:
    """The example's commented-out keys (``# token_env = ...``) are settings of their connector."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    table: str | None = None
    type_name: str | None = None
    wrong = []
    for line in example.splitlines():
        header = re.match(r"\[connectors\.([^\]]+)\]", line)
        if header or line.startswith("["):
            table, type_name = (header.group(1) if header else None), None
            continue
        typed = re.match(r'type = "(\w+)"', line)
        if table and typed:
            type_name = typed.group(1)
            continue
        if table and type_name:
            model = settings.params_model(type_name)
            assert model is not None
            for key in re.findall(r"#\s*([a-z_]+)\s*=", line) + re.findall(r"\+\s*([a-z_]+)\s*=", line):
                if key not in model.model_fields and key not in config.COMMON_CONNECTOR_KEYS:
                    wrong.append(f"{table}: {key}")
    assert not wrong
