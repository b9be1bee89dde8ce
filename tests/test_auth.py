"""Roles from the signed-in identity: exact e-mail, @domain, group; highest role wins."""

from __future__ import annotations

import pytest

from portfolio.auth import can, display_name, role_for
from portfolio.config import Auth

AUTH = Auth(
    enabled=True,
    admins=["boss@example.com"],
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
        pytest.param({"email": "bob@example.com", "groups": ["ml-leads"]}, "editor", id="group-beats-viewer-domain"),
        pytest.param({"email": "bob@example.com"}, "viewer", id="domain-viewer"),
        pytest.param({"email": "eve@evil.example.org"}, "none", id="unknown-gets-default"),
        pytest.param({"email": "x@notexample.com"}, "none", id="domain-suffix-needs-the-at"),
        pytest.param({}, "none", id="no-claims"),
    ],
)
def test_role_for(identity, role):
    assert role_for(identity, AUTH) == role


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("viewer", "view", True),
        ("viewer", "record_decision", False),
        ("viewer", "upload_ledger", False),
        ("editor", "record_decision", True),
        ("editor", "upload_ledger", True),
        ("editor", "admin", False),
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
