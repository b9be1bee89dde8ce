"""Sign-in and roles in the dashboard: Streamlit's OIDC (``st.login``) + :mod:`portfolio.auth`.

With ``[auth] enabled = true`` every page requires a signed-in identity; its role (viewer / editor
/ admin, from portfolio.toml) decides whether it may record decisions, upload ledgers or sync. An
identity that matches no entry gets ``default_role`` (``none``: a page saying whom to ask); a sign-in
lasts ``session_hours`` (from the ID token's ``iat``), then the session is signed out.
Without sign-in the dashboard is served on localhost only (the CLI binds 127.0.0.1) and the
person at the keyboard is an editor of their own portfolio. "Localhost only" is checked on every
session too, whoever started the server (``mlportfolio up`` or a bare ``streamlit run app.py``):
the client must be on this machine and the request's ``Host`` (and ``Origin``) must name
localhost, the bind address or ``[server] allowed_hosts`` — a web page on another name that
resolves to 127.0.0.1 (DNS rebinding) gets a refusal and no data (:func:`refuse_foreign_request`).

:func:`gate` is run by :func:`portfolio.dashboard.run` before every page; a session that passes
it is marked in ``st.session_state`` for that run only (:data:`PASSED`), and the data access
path (:func:`portfolio.dashboard.cache.source_or_stop`) refuses a run without the mark, so a page
script run any other way shows no data.

The OIDC client reaches Streamlit as its ``auth`` secrets: from ``.streamlit/secrets.toml``, or,
when ``[auth]`` gives the client, from the secrets file ``mlportfolio up`` writes from the
environment (:func:`portfolio.cli.auth_secrets_file`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from portfolio import auth, safe
from portfolio.config import Config

log = logging.getLogger("portfolio.dashboard")

#: the st.session_state key that says "this run passed the gate" (set by gate, cleared after the run)
PASSED = "_mlp_gate_passed"
#: when this server first saw an identity without an ``iat`` claim: (issuer, subject) -> time
_FIRST_SEEN: dict[tuple[str, str], datetime] = {}


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


def _who(name: str) -> str:
    """An identity's name from the provider, escaped for Markdown (a name is typed by its owner);
    an e-mail stays readable and copyable (its autolink is a mailto:, no request to anyone)."""
    return safe.md(name).replace("\u2060\\@", "\\@")


def current_user(cfg: Config | None) -> User:
    """Who is using the dashboard. Never stops the script (see :func:`gate`)."""
    if cfg is None or not cfg.auth.enabled:
        return LOCAL
    ident = _identity()
    if not ident.get("is_logged_in"):
        return User("", "none", signed_in=False)
    return User(auth.display_name(ident), auth.role_for(ident, cfg.auth), signed_in=True)


def _request_headers() -> dict[str, str]:
    try:
        return {k.lower(): v for k, v in st.context.headers.items()}
    except Exception:  # no session (bare mode): no request
        return {}


def _client_ip() -> str | None:
    try:
        return st.context.ip_address  # None for 127.0.0.1 / ::1 (and when there is no connection)
    except Exception:
        return None


def refuse_foreign_request(cfg: Config | None) -> None:
    """Stop the run, showing a short refusal and no data, when this request may not be answered.

    Without sign-in: a client not on this machine, or a ``Host`` / ``Origin`` naming something
    other than localhost, the bind address or ``[server] allowed_hosts``. With sign-in the
    host is checked only when ``[server] allowed_hosts`` is set (the host of ``redirect_uri``
    is then allowed too); the sign-in itself guards the data.
    """
    from streamlit import config as st_config  # AppTest patches this module's get_option, not st.get_option

    if st_config.get_option("global.appTest"):  # streamlit.testing's AppTest: there is no HTTP request to check
        return
    signed = cfg is not None and cfg.auth.enabled
    headers = _request_headers()  # no headers: no Host, refused below
    if not signed:
        ip = _client_ip()
        if not auth.is_loopback(ip):
            log.warning("refused a session from %s: sign-in is not configured, so only this machine is served", ip)
            st.error("This dashboard has no sign-in configured, so it answers only on the machine it runs on.")
            st.stop()
    allowed = cfg.server.allowed_hosts if cfg is not None else []
    if signed and not allowed:
        return
    bind = st_config.get_option("server.address")
    names = auth.allowed_host_names(bind, allowed, cfg.auth if cfg is not None else None)
    if not auth.host_allowed(headers, names):
        log.warning(
            "refused a session for Host %r, Origin %r: not one of %s ([server] allowed_hosts)",
            headers.get("host"), headers.get("origin"), ", ".join(names),
        )
        st.error("This address is not one this dashboard answers on. Open it as http://localhost instead.")
        st.stop()


def _signed_in_since(ident: dict[str, Any]) -> datetime:
    since = auth.signed_in_since(ident)
    if since is not None:
        return since
    # no iat claim: count from the first time this server saw the identity
    key = (str(ident.get("iss") or ""), str(ident.get("sub") or ident.get("email") or ""))
    return _FIRST_SEEN.setdefault(key, datetime.now(UTC))


def _expire_old_sign_in(cfg: Config) -> None:
    """Sign out a session whose sign-in is older than ``[auth] session_hours``."""
    ident = _identity()
    if not ident.get("is_logged_in"):
        return
    if auth.sign_in_expired(_signed_in_since(ident), cfg.auth):
        st.title("ML Portfolio")
        st.info(f"Your sign-in is older than {cfg.auth.session_hours:g} hours: sign in again.")
        st.logout()
        st.stop()


def _ask_whom(cfg: Config) -> str:
    admins = auth.admins_to_ask(cfg.auth)
    if admins:
        return "Ask an admin of this portfolio to give you a role: " + ", ".join(admins) + "."
    return "Ask whoever runs this dashboard to give you a role in [auth] of portfolio.toml."


def gate(cfg: Config | None) -> User:
    """Require sign-in when it is configured: a sign-in button, or a refusal for an unknown identity.

    Returns only for a session that may see the portfolio, marking this run (:data:`PASSED`);
    otherwise it shows why and stops the run.
    """
    st.session_state.pop(PASSED, None)
    refuse_foreign_request(cfg)
    if cfg is not None and cfg.auth.enabled:
        _expire_old_sign_in(cfg)
    user = current_user(cfg)
    if cfg is None or not cfg.auth.enabled:
        st.sidebar.caption(":material/lock_open: Sign-in is not configured: served on localhost only.")
        st.session_state[PASSED] = True
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
        st.title("ML Portfolio")
        unverified = not auth.email_verified(_identity(), cfg.auth)
        why = " (the sign-in provider does not say this e-mail is verified)" if unverified else ""
        st.error(f"{_who(user.name)} is signed in but has no role in this portfolio{why}, so it shows nothing. {_ask_whom(cfg)}")
        if st.button("Sign out"):
            st.logout()
        st.stop()
    st.sidebar.caption(f":material/person: {_who(user.name)} — {user.role}")
    if st.sidebar.button("Sign out", key="signout"):
        st.logout()
    st.session_state[PASSED] = True
    return user


def passed() -> bool:
    """Whether this run went through :func:`gate` and may read the portfolio."""
    return bool(st.session_state.get(PASSED))


def require(user: User, action: str, what: str) -> bool:
    """Whether ``user`` may do ``action``; if not, say so (``what`` = what they cannot do)."""
    if user.can(action):
        return True
    st.info(f"Your role ({user.role}) cannot {what}: {'an approver' if action == 'approve' else 'an editor'} can.")
    return False
