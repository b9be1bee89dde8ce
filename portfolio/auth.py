"""Who may do what: roles viewer < editor < approver < admin, mapped from the signed-in identity.

A viewer reads; an editor also records decisions, proposes lifecycle changes (retire / invest /
keep), changes stages, uploads ledgers and syncs; an approver also approves or rejects proposals
(not their own: another approver, or an admin, decides those); an admin may do everything,
approving their own proposal included (flagged ``self_approved`` in the record).

Sign-in is Streamlit's built-in OIDC (``st.login``; the provider lives in
``.streamlit/secrets.toml``). This module is pure: it turns the identity's claims (e-mail, groups)
into a role with the ``[auth]`` table of portfolio.toml. Entries match an exact e-mail
(``jane@example.com``), a whole domain (``@example.com``) or a group name from the identity's
``groups`` claim (configurable). The highest matching role wins; an identity that matches no
entry gets ``default_role`` (``none`` unless set: no access).

An e-mail entry matches only a *verified* e-mail: the identity's ``email_verified`` claim must be
true (the boolean, or the string ``"true"`` some providers send). When the claim is absent the
e-mail does not count either, unless ``require_email_verified_claim = false`` (for providers
that never send it); ``email_verified = false`` never counts. Group entries do not depend on it.

A sign-in lasts ``session_hours`` from the ID token's issue time (``iat``; :func:`signed_in_since`).

Without sign-in configured, the dashboard serves on localhost only and everyone there is an
editor of their own laptop's portfolio (``LOCAL_ROLE``): :func:`host_allowed` and
:func:`is_loopback` decide whether a request is local.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from portfolio.config import Auth

ROLES = ("none", "viewer", "editor", "approver", "admin")
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


def email_verified(identity: Mapping[str, Any], auth: Auth) -> bool:
    """Whether the identity's e-mail may be matched against e-mail and @domain entries."""
    claim = identity.get("email_verified")
    if claim is None:
        return not auth.require_email_verified_claim
    return claim is True or (isinstance(claim, str) and claim.strip().lower() == "true")


def role_for(identity: Mapping[str, Any], auth: Auth) -> str:
    """The role of a signed-in identity (claims mapping), per the ``[auth]`` config."""
    email = str(identity.get("email") or "").strip().lower()
    if not email_verified(identity, auth):
        email = ""  # an unverified e-mail matches no e-mail or @domain entry
    raw_groups = identity.get(auth.group_claim) or []
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    groups = {str(g).strip().lower() for g in raw_groups}
    for role, entries in (
        ("admin", auth.admins), ("approver", auth.approvers), ("editor", auth.editors), ("viewer", auth.viewers),
    ):  # fmt: skip
        if any(_matches(e, email, groups) for e in entries):
            return role
    return auth.default_role


def can(role: str, action: str) -> bool:
    """``record_decision`` / ``propose`` / ``change_stage`` / ``upload_ledger`` / ``sync`` need an editor,
    ``approve`` (and reject) an approver, ``view`` a viewer; anything else an admin."""
    need = {
        "view": "viewer", "record_decision": "editor", "propose": "editor", "change_stage": "editor",
        "upload_ledger": "editor", "sync": "editor", "approve": "approver", "admin": "admin",
    }  # fmt: skip
    return ROLES.index(role) >= ROLES.index(need.get(action, "admin"))


def display_name(identity: Mapping[str, Any]) -> str:
    """What goes into ``Decision.decided_by``: the identity's e-mail, else its name or subject."""
    return str(identity.get("email") or identity.get("name") or identity.get("sub") or LOCAL_USER)


def admins_to_ask(auth: Auth) -> list[str]:
    """Whom an identity without a role can ask: the admins' e-mails (entries naming a person)."""
    return [e.strip() for e in auth.admins if "@" in e and not e.strip().startswith("@")]


# ---- sign-in lifetime -----------------------------------------------------------------------


def signed_in_since(identity: Mapping[str, Any]) -> datetime | None:
    """When the identity signed in: the ID token's ``iat`` (issued at) claim, or None if absent."""
    raw = identity.get("iat")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        return datetime.fromtimestamp(float(raw), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def sign_in_expired(since: datetime, auth: Auth, now: datetime | None = None) -> bool:
    """Whether a sign-in that started at ``since`` is older than ``session_hours``."""
    now = now or datetime.now(UTC)
    return now - since >= timedelta(hours=auth.session_hours)


# ---- local serving: Host / Origin / client address ---------------------------------------------

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_ANY_ADDRESS = ("", "0.0.0.0", "::")


def host_name(value: str | None) -> str | None:
    """The host name of a ``Host`` header value or an ``Origin`` URL (no port), lowercased; None if unusable."""
    if not value:
        return None
    raw = value.strip()
    try:
        parts = urlsplit(raw if "://" in raw else f"//{raw}")
        _ = parts.port  # a port that is not a number makes the value unusable
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or parts.path not in ("", "/") or parts.query:
        return None
    return (parts.hostname or "").rstrip(".") or None


def _matches_host(name: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def allowed_host_names(bind_address: str | None, allowed: Iterable[str], auth: Auth | None = None) -> list[str]:
    """The host names a dashboard answers: localhost names, its bind address, ``[server] allowed_hosts``,
    and with sign-in the host of ``auth.redirect_uri``."""
    names = list(LOCAL_HOSTS)
    address = (bind_address or "").strip().strip("[]").lower()
    if address not in _ANY_ADDRESS:
        names.append(address)
    names.extend(a.strip().lower() for a in allowed if a.strip())
    if auth is not None and auth.enabled and auth.redirect_uri:
        try:
            redirect = urlsplit(auth.redirect_uri.replace("{port}", "1")).hostname
        except ValueError:
            redirect = None
        if redirect:
            names.append(redirect.rstrip("."))
    return list(dict.fromkeys(names))


def host_allowed(headers: Mapping[str, str], names: Iterable[str]) -> bool:
    """Whether a request's ``Host`` (and ``Origin``, when it has one) name one of ``names``.

    A request with no Host is refused; ``Origin: null`` (a sandboxed or file page) is refused too.
    """
    patterns = [n.strip().lower() for n in names]
    host = host_name(headers.get("host") or headers.get("Host"))
    if host is None or not any(_matches_host(host, p) for p in patterns):
        return False
    origin = headers.get("origin") or headers.get("Origin")
    if origin is None:
        return True
    origin_host = host_name(origin)
    return origin_host is not None and any(_matches_host(origin_host, p) for p in patterns)


def is_loopback(ip: str | None) -> bool:
    """Whether a client address is this machine (None: Streamlit says so for 127.0.0.1 and ::1)."""
    if ip is None:
        return True
    if not isinstance(ip, str):
        return False
    try:
        addr = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback
