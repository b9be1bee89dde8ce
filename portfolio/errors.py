"""The exception tree of ML Portfolio.

::

    PortfolioError                 anything this package raises on purpose
    ├── ConfigError                portfolio.toml is missing, malformed or fails validation
    ├── StorageError               the database cannot be opened or written
    ├── SyncError                  a sync could not run (unknown connector, ...)
    └── ConnectorError             a source failed: down, 401/403, garbage payload, bad file
        └── InputFileError         a file's content is wrong: names file, row and column

Every message is meant for a person: it names the file / row / column or the connector, HTTP
status and path, and never contains a secret (see :func:`redact`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable


class PortfolioError(Exception):
    """Base of every error raised on purpose by ML Portfolio."""


class ConfigError(PortfolioError):
    """portfolio.toml is missing, malformed, or a value has the wrong type."""


class StorageError(PortfolioError):
    """The database cannot be opened, migrated or written."""


class SyncError(PortfolioError):
    """A sync could not be started (unknown connector name, bad connector config)."""


class ConnectorError(PortfolioError):
    """A source failed. The message names the connector and what went wrong.

    ``status`` and ``path`` are filled for HTTP failures (never a full URL with credentials).
    """

    def __init__(self, connector: str, message: str, *, status: int | None = None, path: str | None = None):
        self.connector = connector
        self.status = status
        self.path = path
        where = ""
        if status is not None:
            where += f" HTTP {status}"
        if path:
            where += f" {path}"
        super().__init__(f"{connector}:{where} {message}".replace(":  ", ": ").strip())


class InputFileError(ConnectorError):
    """A file's content is wrong. Names the file, the row (or row group) and the column."""

    def __init__(
        self,
        connector: str,
        file: str,
        message: str,
        *,
        row: int | str | None = None,
        column: str | None = None,
    ):
        self.file = file
        self.row = row
        self.column = column
        parts = [f"file {file}"]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        super().__init__(connector, f"{', '.join(parts)}: {message}")


_SECRETISH = re.compile(r"(token|secret|password|passwd|api[_-]?key|authorization)", re.I)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@")


def secret_values(names: Iterable[str] = ()) -> list[str]:
    """Values of environment variables that hold secrets: those named, and any whose name looks secret."""
    values = {os.environ[n] for n in names if os.environ.get(n)}
    values |= {v for k, v in os.environ.items() if _SECRETISH.search(k) and len(v) >= 4}
    return sorted(values, key=len, reverse=True)


def redact(text: str, names: Iterable[str] = ()) -> str:
    """Remove secrets from a message: credentials inside URLs and the values of secret env variables."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    for value in secret_values(names):
        text = text.replace(value, "***")
    return text


def unknown_app_reason(app_id: str, known: Iterable[str]) -> str:
    """Why an app id is refused, with the closest known id when one is near (a typo)."""
    names = sorted(set(known))
    if not names:
        return "no app in the inventory yet: declare it under [[apps]] in portfolio.toml (or sync the inventory connector) first"
    close = difflib.get_close_matches(app_id, names, n=1, cutoff=0.6)
    if close:
        return f"no app {app_id!r} in the inventory: did you mean {close[0]!r}?"
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    return f"no app {app_id!r} in the inventory (known: {shown}); declare new apps under [[apps]] in portfolio.toml"
