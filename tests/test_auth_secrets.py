"""The OIDC client in portfolio.toml's ``[auth]``: all keys or none, secrets read only from the
environment variables it names, and the secrets file ``mlportfolio up`` hands Streamlit (private,
removed when the dashboard stops). The real sign-in round trip is tests/browser/test_oidc.py."""

from __future__ import annotations

import re
import stat
import tempfile
import textwrap
import tomllib
from pathlib import Path

import pytest

from portfolio import cli, config
from portfolio.errors import ConfigError

CLIENT = """
[auth]
enabled = true
client_id = "ml-portfolio"
client_secret_env = "MLP_TEST_CLIENT_SECRET"
cookie_secret_env = "MLP_TEST_COOKIE_SECRET"
server_metadata_url = "https://idp.example.com/.well-known/openid-configuration"
redirect_uri = "https://portfolio.example.com/oauth2callback"
viewers = ["@example.com"]
"""
CLIENT_SECRET = 'cl1ent-"secret"\\with\nodd chars é'
COOKIE_SECRET = "c00kie-secret-0123456789abcdef"


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_TEST_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("MLP_TEST_COOKIE_SECRET", COOKIE_SECRET)


def test_client_keys_are_optional_and_default_to_secrets_toml() -> None:
    cfg = config.loads("[auth]\nenabled = true\n")
    assert not cfg.auth.has_client
    assert cfg.auth.secret_env_names() == ()


def test_a_full_client_names_its_secret_variables() -> None:
    cfg = config.loads(CLIENT)
    assert cfg.auth.has_client
    assert cfg.auth.secret_env_names() == ("MLP_TEST_CLIENT_SECRET", "MLP_TEST_COOKIE_SECRET")
    assert "MLP_TEST_CLIENT_SECRET" in cli._secret_names(cfg)  # so error messages redact its value


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        pytest.param("client_secret_env", "auth.client_secret_env required too", id="no-client-secret"),
        pytest.param("cookie_secret_env", "auth.cookie_secret_env required too", id="no-cookie-secret"),
        pytest.param("server_metadata_url", "auth.server_metadata_url required too", id="no-metadata-url"),
        pytest.param("redirect_uri", "auth.redirect_uri required too", id="no-redirect-uri"),
        pytest.param("client_id", "auth.client_id required too", id="no-client-id"),
    ],
)
def test_a_partial_client_is_a_config_error_naming_what_is_missing(drop: str, message: str) -> None:
    text = "\n".join(line for line in CLIENT.splitlines() if not line.startswith(f"{drop} ="))
    with pytest.raises(ConfigError, match=message):
        config.loads(text)


def test_redirect_uri_must_be_streamlits_callback() -> None:
    text = CLIENT.replace("/oauth2callback", "/callback")
    with pytest.raises(ConfigError, match="must end with /oauth2callback"):
        config.loads(text)


@pytest.mark.parametrize("key", ["client_secret", "cookie_secret"])
def test_a_secret_in_the_file_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigError, match=f"auth.{key}: a secret never goes in portfolio.toml") as info:
        config.loads(CLIENT + f'{key} = "pasted-value-1234"\n')
    assert f"{key}_env" in str(info.value)
    assert "pasted-value-1234" not in str(info.value)


def test_streamlit_secrets_read_the_environment(secrets_env: None) -> None:
    section = config.loads(CLIENT).auth.streamlit_secrets()
    assert section == {
        "redirect_uri": "https://portfolio.example.com/oauth2callback",
        "cookie_secret": COOKIE_SECRET,
        "client_id": "ml-portfolio",
        "client_secret": CLIENT_SECRET,
        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
    }


def test_a_named_provider_gets_its_own_table(secrets_env: None) -> None:
    section = config.loads(CLIENT.replace("enabled = true", 'enabled = true\nprovider = "okta"')).auth.streamlit_secrets()
    assert section == {
        "redirect_uri": "https://portfolio.example.com/oauth2callback",
        "cookie_secret": COOKIE_SECRET,
        "okta": {
            "client_id": "ml-portfolio",
            "client_secret": CLIENT_SECRET,
            "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
        },
    }


@pytest.mark.parametrize("unset", ["MLP_TEST_CLIENT_SECRET", "MLP_TEST_COOKIE_SECRET"])
def test_an_unset_secret_variable_is_named(secrets_env: None, monkeypatch: pytest.MonkeyPatch, unset: str) -> None:
    monkeypatch.delenv(unset)
    with pytest.raises(ConfigError, match=f"environment variable {unset} is not set") as info:
        config.loads(CLIENT).auth.streamlit_secrets()
    assert CLIENT_SECRET not in str(info.value) and COOKIE_SECRET not in str(info.value)


@pytest.mark.parametrize("provider", [None, "okta", "my idp"])
def test_secrets_toml_round_trips(secrets_env: None, provider: str | None) -> None:
    text = CLIENT if provider is None else CLIENT.replace("enabled = true", f'enabled = true\nprovider = "{provider}"')
    section = config.loads(text).auth.streamlit_secrets()
    assert tomllib.loads(cli.secrets_toml(section)) == {"auth": section}


def test_up_secrets_file_is_private_and_removed(secrets_env: None) -> None:
    cfg = config.loads(CLIENT)
    with cli.auth_secrets_file(cfg) as path:
        assert path is not None and path.endswith(".toml")
        file = Path(path)
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
        assert tomllib.loads(file.read_text(encoding="utf-8"))["auth"]["client_secret"] == CLIENT_SECRET
        assert cli.streamlit_command(8501, secrets_file=path)[-2:] == ["--secrets.files", path]
    assert not file.parent.exists()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[auth]\nenabled = true\n", id="client-in-secrets-toml"),
        pytest.param(CLIENT.replace("enabled = true", "enabled = false"), id="sign-in-off"),
    ],
)
def test_no_secrets_file_without_a_client_in_portfolio_toml(text: str) -> None:
    with cli.auth_secrets_file(config.loads(text)) as path:
        assert path is None
    assert "--secrets.files" not in cli.streamlit_command(8501)


def test_check_warns_and_up_refuses_when_a_secret_variable_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    monkeypatch.setenv("MLP_TEST_COOKIE_SECRET", COOKIE_SECRET)
    monkeypatch.delenv("MLP_TEST_CLIENT_SECRET", raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where a secrets file would go
    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text(f'database_url = "{db_url}"\n' + CLIENT, encoding="utf-8")  # `up` opens it first

    _, warnings = cli.validate(config.load(cfg_file))
    assert warnings == ["auth.client_secret_env: environment variable MLP_TEST_CLIENT_SECRET is not set (`mlportfolio up` refuses to start)"]

    code = cli.main(["up", "--config", str(cfg_file), "--port", "1", "--address", "127.0.0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "auth.client_secret_env: environment variable MLP_TEST_CLIENT_SECRET is not set" in err
    assert COOKIE_SECRET not in err
    assert not list((tmp_path / "tmp").iterdir())  # no secrets file was left behind


@pytest.mark.parametrize("given", [False, True], ids=["not-given-by-up", "given-by-up"])
def test_dashboard_says_when_it_was_not_given_the_client(
    _clean_environment: None, demo_copy_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: bool
) -> None:
    """``streamlit run app.py`` on a portfolio.toml with a client: a clear message, not a broken button."""
    from tests.dashboard.test_pages import TODAY, app_test, assert_clean, open_page

    cfg_file = tmp_path / "portfolio.toml"
    cfg_file.write_text(f'database_url = "{demo_copy_url}"\n' + CLIENT, encoding="utf-8")
    monkeypatch.setenv("PORTFOLIO_CONFIG", str(cfg_file))
    monkeypatch.setenv("PORTFOLIO_TODAY", TODAY.isoformat())
    at = app_test()
    at.user = {"is_logged_in": False}
    if given:
        at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": COOKIE_SECRET}
    at = open_page("portfolio", at)
    assert_clean(at)
    assert not at.metric
    if given:
        assert [b.label for b in at.button] == ["Sign in"]
        assert not at.error
    else:
        assert not at.button
        assert any("start it with `mlportfolio up`" in e.value for e in at.error)


def test_readme_sign_in_example_is_a_valid_client() -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("- **Sign-in and roles.**", 1)[1].split("\n- **", 1)[0]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    auth = config.loads(textwrap.dedent(example.group(1)), where="README.md").auth
    assert auth.enabled and auth.has_client
    assert auth.secret_env_names() == ("MLP_OIDC_CLIENT_SECRET", "MLP_OIDC_COOKIE_SECRET")
