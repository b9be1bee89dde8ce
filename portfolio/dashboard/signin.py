"""Sign-in and roles in the dashboard: Streamlit's OIDC (``st.login``) + :mod:`portfolio.auth`.

With ``[auth] enabled = true`` every page requires a signed-in identity; its role (viewer / editor
/ admin, from portfolio.toml) decides whether it may record decisions, upload ledgers or sync.
Without sign-in the dashboard is served on localhost only (the CLI binds 127.0.0.1) and the
person at the keyboard is an editor of their own portfolio.

The OIDC client reaches Streamlit as its ``auth`` secrets: from ``.streamlit/secrets.toml``, or,
when ``[auth]`` gives the client, from the secrets file ``mlportfolio up`` writes from the
environment (:func:`portfolio.cli.auth_secrets_file`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from portfolio import auth
from portfolio.config import Config


@dataclass(frozen=True)
class User:
    name: str  # what goes into Decision.decided_by
    role: str
    signed_in: bool

    def can(self, action: str) -> bool:
        return auth.can(self.role, action)


LOCAL = User(auth.LOCAL_USER, auth.LOCAL_ROLE, signed_in=False)


def _identity() -> dict[str, Any]:
    try:
        return dict(st.user.to_dict())
    except Exception:  # no session (bare mode): nobody is signed in
        return {}


def _has_auth_secrets() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def current_user(cfg: Config | None) -> User:
    """Who is using the dashboard. Never stops the script (see :func:`gate`)."""
    if cfg is None or not cfg.auth.enabled:
        return LOCAL
    ident = _identity()
    if not ident.get("is_logged_in"):
        return User("", "none", signed_in=False)
    return User(auth.display_name(ident), auth.role_for(ident, cfg.auth), signed_in=True)


def gate(cfg: Config | None) -> User:
    """Require sign-in when it is configured: a sign-in button, or a refusal for an unknown identity."""
    user = current_user(cfg)
    if cfg is None or not cfg.auth.enabled:
        st.sidebar.caption(":material/lock_open: Sign-in is not configured: served on localhost only.")
        return user
    if not user.signed_in:
        st.title("ML Portfolio")
        if cfg.auth.has_client and not _has_auth_secrets():
            st.error(
                "Sign-in is configured in portfolio.toml ([auth] client_id, ...), but this dashboard was not "
                "given its OIDC client: start it with `mlportfolio up`, which reads the secrets from the "
                "environment variables that [auth] names."
            )
            st.stop()
        st.info("Sign in to see the portfolio.")
        if st.button("Sign in", type="primary"):
            if cfg.auth.provider:
                st.login(cfg.auth.provider)
            else:
                st.login()
        st.stop()
    if user.role == "none":
        st.error(f"{user.name} is signed in but has no role in this portfolio. Ask an admin to add you to [auth] in portfolio.toml.")
        if st.button("Sign out"):
            st.logout()
        st.stop()
    st.sidebar.caption(f":material/person: {user.name} — {user.role}")
    if st.sidebar.button("Sign out", key="signout"):
        st.logout()
    return user


def require(user: User, action: str, what: str) -> bool:
    """Whether ``user`` may do ``action``; if not, say so (``what`` = what they cannot do)."""
    if user.can(action):
        return True
    st.info(f"Your role ({user.role}) cannot {what}: an editor can.")
    return False
