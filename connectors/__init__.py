"""Connectors: one real source each. ``REGISTRY`` maps a connector type name to its module.

Adding a source touches three places: its module (``NAME``, ``RECORDS``, ``Params``, ``pull``), one
line here, and its recorded fixtures with a ``Case`` in tests/connectors/standard_cases.py, which
runs the standard connector suite (tests/connectors/test_standard.py) over it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from portfolio.errors import SyncError

#: type name (``type = "..."`` in portfolio.toml) -> module path
REGISTRY: dict[str, str] = {
    "demo": "connectors.demo",
    "focus": "connectors.focus",
    "opencost": "connectors.opencost",
    "prometheus": "connectors.prometheus",
    "mlflow": "connectors.mlflow",
    "github_issues": "connectors.github_issues",
    "jira": "connectors.jira",
    "pagerduty": "connectors.pagerduty",
    "timesheet": "connectors.timesheet",
    "outcomes_file": "connectors.outcomes_file",
    "sql": "connectors.sql",
    "openai": "connectors.openai",
    "anthropic": "connectors.anthropic",
    "litellm": "connectors.litellm",
}


def load(type_name: str) -> ModuleType:
    """The connector module registered under ``type_name``."""
    try:
        return importlib.import_module(REGISTRY[type_name])
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise SyncError(f"unknown connector type {type_name!r}; known types: {known}") from None


def describe(type_name: str) -> str:
    """First line of the connector module's docstring ("" when the type is unknown or has none).

    Ledger uploads from the dashboard are recorded as connector type "upload": their module is
    :mod:`portfolio.ledger`.
    """
    try:
        module = importlib.import_module("portfolio.ledger") if type_name == "upload" else load(type_name)
    except Exception:  # an unknown or broken connector must not break the health page
        return ""
    doc = (module.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else ""
