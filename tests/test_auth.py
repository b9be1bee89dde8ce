"""Roles from the signed-in identity: exact e-mail, @domain, group; highest role wins; only a
verified e-mail counts; no rule matched = no access. Also the pure checks behind "localhost only"
(Host / Origin / client address) and the sign-in lifetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portfolio import auth, config
from portfolio.auth import can, display_name, role_for
from portfolio.config import Auth
from portfolio.errors import ConfigError

AUTH = Auth(
    enabled=True,
    admins=["boss@example.com"],
    approvers=["carl@finance.example.com", "risk-committee"],
    editors=["@finance.example.com", "ml-leads"],
    viewers=["@example.com"],
    default_role="none",
)


@pytest.mark.parametrize(
    ("identity", "role"),
    [
        pytest.param({"email": "boss@example.com"}, "admin", id="exact-email-admin"),
        pytest.param({"email": "Boss@Example.com "}, "admin", id="case-and-space-insensitive"),
        pytest.param({"email": "ann@finance.example.com"}, "editor", id="domain-editor"),
        pytest.param({"email": "carl@finance.example.com"}, "approver", id="approver-beats-editor-domain"),
        pytest.param({"email": "bob@example.com", "groups": ["risk-committee"]}, "approver", id="approver-group"),
        pytest.param({"email": "bob@example.com", "groups": ["ml-leads"]}, "editor", id="group-beats-viewer-domain"),
        pytest.param({"email": "bob@example.com"}, "viewer", id="domain-viewer"),
        pytest.param({"email": "eve@evil.example.org"}, "none", id="unknown-gets-default"),
        pytest.param({"email": "x@notexample.com"}, "none", id="domain-suffix-needs-the-at"),
        pytest.param({}, "none", id="no-claims"),
    ],
)
def test_role_for(identity, role):
    if "email" in identity:  # these identities' e-mails are verified (see below for those that are not)
        identity = {**identity, "email_verified": True}
    assert role_for(identity, AUTH) == role


@pytest.mark.parametrize(
    ("identity", "role"),
    [
        pytest.param({"email": "boss@example.com", "email_verified": False}, "none", id="false"),
        pytest.param({"email": "boss@example.com"}, "none", id="absent"),
        pytest.param({"email": "boss@example.com", "email_verified": "false"}, "none", id="string-false"),
        pytest.param({"email": "boss@example.com", "email_verified": 1}, "none", id="not-a-boolean"),
        pytest.param({"email": "boss@example.com", "email_verified": "true"}, "admin", id="string-true-cognito"),
        pytest.param({"email": "bob@example.com", "email_verified": False, "groups": ["ml-leads"]}, "editor", id="groups-still-count"),
    ],
)
def test_only_a_verified_email_gets_its_role(identity, role):
    assert role_for(identity, AUTH) == role


def test_a_provider_without_the_claim_can_be_trusted_but_false_never_is():
    lenient = AUTH.model_copy(update={"require_email_verified_claim": False})
    assert role_for({"email": "boss@example.com"}, lenient) == "admin"
    assert role_for({"email": "boss@example.com", "email_verified": False}, lenient) == "none"


def test_no_rule_matched_means_no_access_by_default_and_default_role_may_be_set():
    cfg = config.loads('[auth]\nenabled = true\nviewers = ["@example.com"]\nadmins = ["boss@example.com", "@example.com", "ops"]\n')
    assert cfg.auth.default_role == "none"
    assert role_for({"email": "eve@elsewhere.org", "email_verified": True}, cfg.auth) == "none"
    assert auth.admins_to_ask(cfg.auth) == ["boss@example.com"]  # a person to ask, not a domain or group
    cfg = config.loads('[auth]\nenabled = true\ndefault_role = "viewer"\n')
    assert role_for({"email": "eve@elsewhere.org", "email_verified": True}, cfg.auth) == "viewer"


def test_sign_in_lifetime_from_the_id_tokens_issue_time():
    cfg = config.loads("[auth]\nenabled = true\n")
    assert cfg.auth.session_hours == 8
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    since = auth.signed_in_since({"iat": int((now - timedelta(hours=7, minutes=59)).timestamp())})
    assert since == now - timedelta(hours=7, minutes=59)
    assert not auth.sign_in_expired(since, cfg.auth, now)
    assert auth.sign_in_expired(now - timedelta(hours=8), cfg.auth, now)
    assert auth.signed_in_since({}) is None and auth.signed_in_since({"iat": True}) is None
    short = config.loads("[auth]\nenabled = true\nsession_hours = 0.5\n").auth
    assert auth.sign_in_expired(now - timedelta(minutes=31), short, now)
    with pytest.raises(ConfigError, match="auth.session_hours"):
        config.loads("[auth]\nsession_hours = 0\n")


LOCAL = auth.allowed_host_names("127.0.0.1", [])


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        pytest.param({"host": "localhost:8501"}, True, id="localhost"),
        pytest.param({"host": "127.0.0.1:8501", "origin": "http://127.0.0.1:8501"}, True, id="loopback-origin"),
        pytest.param({"host": "[::1]:8501"}, True, id="ipv6-loopback"),
        pytest.param({"host": "LOCALHOST."}, True, id="case-and-trailing-dot"),
        pytest.param({"host": "evil.test:8501"}, False, id="rebound-name"),
        pytest.param({"host": "localhost:8501", "origin": "http://evil.test:8501"}, False, id="foreign-origin"),
        pytest.param({"host": "localhost:8501", "origin": "null"}, False, id="null-origin"),
        pytest.param({"host": "localhost.evil.test"}, False, id="suffix-is-not-localhost"),
        pytest.param({"host": "evil.test@localhost"}, False, id="userinfo"),
        pytest.param({"host": "localhost:http"}, False, id="bad-port"),
        pytest.param({}, False, id="no-host"),
    ],
)
def test_local_dashboard_answers_local_host_names_only(headers, ok):
    assert auth.host_allowed(headers, LOCAL) is ok


def test_allowed_hosts_bind_address_and_redirect_host():
    cfg = config.loads(
        '[server]\nallowed_hosts = ["Portfolio.Internal", "*.corp.example", "[::2]"]\n'
        '[auth]\nenabled = true\nclient_id = "x"\nclient_secret_env = "A"\ncookie_secret_env = "B"\n'
        'server_metadata_url = "https://idp/.well-known/openid-configuration"\n'
        'redirect_uri = "https://ml.example.com:{port}/oauth2callback"\n'
    )
    names = auth.allowed_host_names("10.0.0.5", cfg.server.allowed_hosts, cfg.auth)
    assert names == ["localhost", "127.0.0.1", "::1", "10.0.0.5", "portfolio.internal", "*.corp.example", "::2", "ml.example.com"]
    assert auth.host_allowed({"host": "a.corp.example"}, names)
    assert not auth.host_allowed({"host": "corp.example.evil"}, names)
    assert auth.allowed_host_names("0.0.0.0", [])[-1] == "::1"  # "every interface" is not a name


@pytest.mark.parametrize("bad", ["http://x.example", "x.example:8501", "a/b", "", "user@x"])
def test_allowed_hosts_are_plain_host_names(bad):
    with pytest.raises(ConfigError, match=r"server.allowed_hosts"):
        config.loads(f'[server]\nallowed_hosts = ["{bad}"]\n')


@pytest.mark.parametrize(
    ("ip", "local"),
    [(None, True), ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("192.0.2.2", False), ("10.0.0.1", False), ("fd00::2", False), ("not an ip", False)],
)
def test_is_loopback(ip, local):
    assert auth.is_loopback(ip) is local


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("viewer", "view", True),
        ("viewer", "record_decision", False),
        ("viewer", "upload_ledger", False),
        ("editor", "record_decision", True),
        ("editor", "upload_ledger", True),
        ("editor", "admin", False),
        ("editor", "propose", True),
        ("editor", "change_stage", True),
        ("editor", "approve", False),
        ("viewer", "propose", False),
        ("approver", "approve", True),
        ("approver", "propose", True),
        ("approver", "record_decision", True),
        ("approver", "admin", False),
        ("admin", "approve", True),
        ("admin", "admin", True),
        ("none", "view", False),
    ],
)
def test_can(role, action, allowed):
    assert can(role, action) is allowed


def test_display_name_prefers_email():
    assert display_name({"email": "a@b.c", "name": "A"}) == "a@b.c"
    assert display_name({"name": "A"}) == "A"
    assert display_name({}) == "local user"


def test_approvers_are_mapped_like_the_other_roles_and_may_be_the_default():
    cfg = config.loads('[auth]\nenabled = true\napprovers = ["@risk.example.com"]\ndefault_role = "approver"\n')
    assert cfg.auth.approvers == ["@risk.example.com"]
    assert role_for({"email": "x@elsewhere.org", "email_verified": True}, cfg.auth) == "approver"
    assert auth.ROLES.index("editor") < auth.ROLES.index("approver") < auth.ROLES.index("admin")
