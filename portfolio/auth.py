"""Who may do what: roles viewer / editor / admin, mapped from the signed-in identity.

Sign-in is Streamlit's built-in OIDC (``st.login``; the provider lives in
``.streamlit/secrets.toml``). This module is pure: it turns the identity's claims (e-mail, groups)
into a role with the ``[auth]`` table of portfolio.toml. Entries match an exact e-mail
(``jane@example.com``), a whole domain (``@example.com``) or a group name from the identity's
``groups`` claim (configurable). The highest matching role wins.

Without sign-in configured, the dashboard serves on localhost only and everyone there is an
editor of their own laptop's portfolio (``LOCAL_ROLE``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portfolio.config import Auth

ROLES = ("none", "viewer", "editor", "admin")
LOCAL_ROLE = "editor"
LOCAL_USER = "local user"


def _matches(entry: str, email: str, groups: set[str]) -> bool:
    entry = entry.strip().lower()
    if not entry:
        return False
    if entry.startswith("@"):
        return email.endswith(entry)
    if "@" in entry:
        return email == entry
    return entry in groups


def role_for(identity: Mapping[str, Any], auth: Auth) -> str:
    """The role of a signed-in identity (claims mapping), per the ``[auth]`` config."""
    email = str(identity.get("email") or "").strip().lower()
    raw_groups = identity.get(auth.group_claim) or []
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    groups = {str(g).strip().lower() for g in raw_groups}
    for role, entries in (("admin", auth.admins), ("editor", auth.editors), ("viewer", auth.viewers)):
        if any(_matches(e, email, groups) for e in entries):
            return role
    return auth.default_role


def can(role: str, action: str) -> bool:
    """``record_decision`` / ``upload_ledger`` / ``sync`` need an editor; ``view`` a viewer."""
    need = {"view": "viewer", "record_decision": "editor", "upload_ledger": "editor", "sync": "editor", "admin": "admin"}
    return ROLES.index(role) >= ROLES.index(need.get(action, "admin"))


def display_name(identity: Mapping[str, Any]) -> str:
    """What goes into ``Decision.decided_by``: the identity's e-mail, else its name or subject."""
    return str(identity.get("email") or identity.get("name") or identity.get("sub") or LOCAL_USER)
