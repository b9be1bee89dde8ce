"""Shared helpers of the maintenance connectors: which app a ticket belongs to, what kind of work it
is, and how many hours it stands for when nobody logged time.

Used by ``github_issues``, ``jira``, ``pagerduty`` and ``timesheet``. Nothing here does I/O.

App resolution, in words: an explicit mapping from the config wins (``app_labels`` /
``app_map`` / ``services``: source value -> app id); then a value carrying the ``app:`` prefix
(``app:churn-predictor``); then a value equal to a configured app's id or name (case-insensitive).
When portfolio.toml declares apps, a resolved id must be one of them (otherwise the ticket counts
as unmapped); when it declares none (apps come from an inventory connector), explicit signals —
the mapping, the prefix, a title prefix — are trusted as they are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat

from connectors.base import Notice
from connectors.settings import ConnectorParams, StrList
from portfolio.config import ConnectorConfig, SettingsError
from portfolio.records import MAINTENANCE_KINDS

DEFAULT_HOURS: dict[str, float] = {"klo": 2.0, "incident": 4.0, "improvement": 8.0}

DEFAULT_KIND_LABELS: dict[str, tuple[str, ...]] = {
    "incident": ("incident", "outage", "sev1", "sev2", "p0", "p1"),
    "improvement": ("enhancement", "feature", "improvement", "new feature"),
    "klo": ("klo", "maintenance", "bug", "chore", "tech-debt", "dependencies"),
}

#: which kind wins when a ticket carries labels of several kinds
KIND_PRECEDENCE = ("incident", "improvement", "klo")

TITLE_PREFIX = re.compile(r"^\s*\[(?P<app>[^\]]+)\]")

Kind = Literal["klo", "incident", "improvement"]


class TicketParams(ConnectorParams):
    """The settings every ticket connector shares: how a ticket's kind and default hours are found."""

    incident_labels: StrList = Field(list(DEFAULT_KIND_LABELS["incident"]), description="labels that make a ticket an incident")
    improvement_labels: StrList = Field(list(DEFAULT_KIND_LABELS["improvement"]), description="labels that make a ticket an improvement")
    klo_labels: StrList = Field(list(DEFAULT_KIND_LABELS["klo"]), description="labels that make a ticket keep-the-lights-on work")
    default_kind: Kind = Field("klo", description="kind of a ticket no label classifies")
    default_hours: dict[Kind, NonNegativeFloat] = Field(
        default_factory=dict, description="hours a ticket stands for per kind when nobody logged time (klo 2, incident 4, improvement 8)"
    )


def param_error(config: ConnectorConfig, key: str, expected: str, got: Any = None) -> SettingsError:
    """The one error type of a bad setting, naming connector and key; ``got`` is never shown (it
    may be a secret pasted in the wrong key)."""
    return SettingsError([(config.name or config.type, key, f"expected {expected}")])


def str_map(config: ConnectorConfig, key: str) -> dict[str, str]:
    """A ``{source value: app id}`` table parameter (empty if absent)."""
    raw = config.get(key) or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) and v for v in raw.values()):
        raise param_error(config, key, 'a table of strings, e.g. { "label" = "app-id" }', raw)
    return {str(k): str(v) for k, v in raw.items()}


def str_list(config: ConnectorConfig, key: str, default: Iterable[str] = ()) -> list[str]:
    raw = config.get(key)
    if raw is None:
        return list(default)
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
        raise param_error(config, key, "a list of strings", raw)
    return list(raw)


def positive_number(config: ConnectorConfig, key: str, default: float | None) -> float | None:
    raw = config.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise param_error(config, key, "a number >= 0", raw)
    return float(raw)


def default_hours(config: ConnectorConfig) -> dict[str, float]:
    """``default_hours`` per kind, the built-in defaults filled in for kinds not given."""
    raw = config.get("default_hours") or {}
    if not isinstance(raw, Mapping):
        raise param_error(
            config, "default_hours", "a table like { klo = 2, incident = 4, improvement = 8 }", raw
        )
    out = dict(DEFAULT_HOURS)
    for kind, hours in raw.items():
        if kind not in MAINTENANCE_KINDS:
            raise param_error(config, f"default_hours.{kind}", f"one of {', '.join(MAINTENANCE_KINDS)}", kind)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
            raise param_error(config, f"default_hours.{kind}", "a number >= 0", hours)
        out[kind] = float(hours)
    return out


def hours_between(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) / 3600.0


@dataclass
class Classifier:
    """Kind of work from labels (and optionally an issue type): klo, incident or improvement.

    Label lists come from ``klo_labels`` / ``incident_labels`` / ``improvement_labels`` (compared
    case-insensitively); a ticket with labels of several kinds takes the first of incident,
    improvement, klo; a ticket with none takes ``default_kind`` (klo).
    """

    labels: dict[str, set[str]]
    types: dict[str, set[str]] = field(default_factory=dict)
    default: str = "klo"

    @classmethod
    def from_config(
        cls, config: ConnectorConfig, type_defaults: Mapping[str, Iterable[str]] | None = None
    ) -> Classifier:
        labels = {
            kind: {v.lower() for v in str_list(config, f"{kind}_labels", DEFAULT_KIND_LABELS[kind])}
            for kind in MAINTENANCE_KINDS
        }
        types: dict[str, set[str]] = {}
        if type_defaults is not None:
            types = {
                kind: {v.lower() for v in str_list(config, f"{kind}_types", type_defaults.get(kind, ()))}
                for kind in MAINTENANCE_KINDS
            }
        default = config.get("default_kind", "klo")
        if default not in MAINTENANCE_KINDS:
            raise param_error(config, "default_kind", f"one of {', '.join(MAINTENANCE_KINDS)}", default)
        return cls(labels=labels, types=types, default=str(default))

    def kind(self, labels: Iterable[str], issue_type: str | None = None) -> str:
        have = {label.lower() for label in labels}
        for kind in KIND_PRECEDENCE:
            if have & self.labels.get(kind, set()):
                return kind
        if issue_type:
            t = issue_type.lower()
            for kind in KIND_PRECEDENCE:
                if t in self.types.get(kind, set()):
                    return kind
        return self.default


class AppResolver:
    """Maps values found on a ticket (labels, components, a custom field, a service) to app ids."""

    def __init__(
        self, config: ConnectorConfig, mapping: Mapping[str, str] | None = None, prefix: str = "app:"
    ):
        self.mapping = {k.lower(): v for k, v in (mapping or {}).items()}
        self.prefix = prefix.lower()
        self.known: dict[str, str] = {}
        for app in config.apps:
            self.known[app.id.lower()] = app.id
            if app.name:
                self.known.setdefault(app.name.lower(), app.id)
        self.restricted = bool(config.apps)

    def check(self, app_id: str) -> str | None:
        app_id = app_id.strip()
        if not app_id:
            return None
        if not self.restricted:
            return app_id
        return self.known.get(app_id.lower())

    def explicit(self, value: str) -> str | None:
        """An app id named on purpose: by the mapping, or by the ``app:`` prefix / a title prefix."""
        v = value.strip().lower()
        if v in self.mapping:
            return self.check(self.mapping[v])
        if self.prefix and v.startswith(self.prefix):
            return self.check(value.strip()[len(self.prefix) :])
        return None

    def resolve(self, value: str) -> str | None:
        """``explicit(value)``, else a configured app whose id or name equals the value."""
        found = self.explicit(value)
        if found:
            return found
        return self.known.get(value.strip().lower())

    def first(self, values: Iterable[str]) -> str | None:
        """The first value that resolves (explicit signals before plain name matches)."""
        values = [v for v in values if isinstance(v, str)]
        for v in values:
            found = self.explicit(v)
            if found:
                return found
        for v in values:
            found = self.known.get(v.strip().lower())
            if found:
                return found
        return None

    def title_prefix(self, title: str) -> str | None:
        """``[app-id] title`` -> the app id (checked against configured apps when there are any)."""
        m = TITLE_PREFIX.match(title or "")
        if not m:
            return None
        name = m.group("app")
        return self.explicit(name) or self.check(self.known.get(name.strip().lower(), name))


@dataclass
class Skipped:
    """Counts tickets that no app claims; at the end of a pull, logs the count and turns it into a
    :class:`connectors.base.Notice` (kept in the run's ``SyncRun.warnings``)."""

    connector: str
    what: str = "tickets"
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, ref: str) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(ref)

    def text(self) -> str:
        return (
            f"{self.count} {self.what} not mapped to any app were skipped (e.g. {', '.join(self.examples)})"
        )

    def notices(self, logger: logging.Logger) -> Iterator[Notice]:
        """Yield (at most) one Notice; use as ``yield from skipped.notices(log)``."""
        if self.count:
            logger.warning("%s: %s", self.connector, self.text())
            yield Notice(self.text())
