"""What every connector shares: the protocol, the ``Replace`` marker, the HTTP session, errors.

A connector is a module with ``NAME`` (its type name in portfolio.toml), ``RECORDS`` (the record
types it yields), ``Params`` (its settings, a :class:`connectors.settings.ConnectorParams`) and
``pull(config, since) -> Iterator[record]``. A paginated connector guards its loop with
:class:`PageGuard`. It yields typed records from :mod:`portfolio.records`
(and optionally :class:`Replace` markers) and never opens a database session; :mod:`portfolio.sync`
owns the transaction, the cursor and the SyncRun ledger. The module docstring's first line is what
the Data health page shows.

Every HTTP request made through :func:`http_session` has a *total* deadline (``REQUEST_DEADLINE``,
and never later than the deadline of the connector's run, see :func:`run_deadline`): connect and
per-read timeouts alone let a source that sends one byte every 20 s hold a sync forever. Past the
deadline a watchdog shuts the request's socket down, and the request raises
:class:`DeadlineExceeded` (a ``requests.Timeout``), which connectors report like any timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util.retry import Retry

from portfolio.config import ConnectorConfig
from portfolio.errors import ConnectorError, InputFileError, redact

__all__ = [
    "Connector",
    "ConnectorConfig",
    "ConnectorError",
    "DeadlineExceeded",
    "InputFileError",
    "Notice",
    "PageGuard",
    "Partition",
    "Replace",
    "ReplaceKeys",
    "Rows",
    "get_json",
    "http_session",
    "paginate",
    "run_deadline",
    "safe_path",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds
#: total seconds one request may take, connect to last byte (a trickling source is cut here)
REQUEST_DEADLINE = 600.0
MAX_PAGES = 10_000


@dataclass(frozen=True)
class Replace:
    """Marker a connector yields to say: "for this table, my records with ``start <= day <= end``
    are exactly the ones I yield in this pull".

    :mod:`portfolio.sync` then deletes this source's rows of that table in the window whose natural
    key was not yielded — how a restated bill that drops a line replaces the old figures.
    ``field`` is the date column the window applies to (``day``, or ``month`` for outcomes).
    """

    table: type
    start: date
    end: date
    field: str = "day"


@dataclass(frozen=True)
class ReplaceKeys:
    """Marker: "for these values of ``field`` (e.g. ticket refs), the rows I yield are the only ones".

    Stale rows of this source whose ``field`` is one of ``values`` and whose natural key was not
    yielded are deleted — how a ticket first counted on its created day and later closed (so now
    dated on its closing day) does not stay counted twice after an incremental sync.
    """

    table: type
    field: str
    values: frozenset[Any]


@dataclass(frozen=True)
class Partition:
    """Marker: "the rows of ``table`` with ``field`` = ``value`` that follow have this fingerprint".

    When the source's last write of that partition had the same fingerprint, and the table still
    holds as many of its rows, :mod:`portfolio.sync` skips the rows that follow (they are in the
    database already, identical) and leaves ``value`` out of this pull's ``ReplaceKeys`` on
    ``field``. The rows must follow the marker, in frames (``Rows``) holding only that partition;
    the fingerprint must change whenever any of them would (e.g. a hash over every column written).
    """

    table: type
    field: str
    value: str
    fingerprint: str
    rows: int


@dataclass(frozen=True)
class Notice:
    """Something a person should know about a pull that still succeeded: a conflict between
    sources, items skipped because no app claims them. Kept in the run's ``SyncRun.warnings``."""

    text: str


@dataclass(frozen=True)
class Rows:
    """Many records of one table at once, as a DataFrame whose columns are the table's field names.

    The bulk path for connectors that aggregate large inputs (a billing export of millions of
    lines): no per-row model objects. ``source`` may be omitted; sync fills it in.
    """

    table: type
    frame: Any  # pandas.DataFrame


class Connector(Protocol):
    """The shape of a connector module (checked by the contract test)."""

    NAME: str

    def pull(self, config: ConnectorConfig, since: datetime | None) -> Iterator[Any]: ...


# ----------------------------------------------------------------------------- deadlines

#: ``time.monotonic()`` by which the current connector run must end (set by portfolio.sync)
_RUN_DEADLINE: ContextVar[float | None] = ContextVar("mlp_run_deadline", default=None)


class DeadlineExceeded(requests.exceptions.Timeout):
    """A request passed its total deadline: the source kept it open (trickling bytes, or silent
    between reads for less than the read timeout each time) longer than the request or the run may last."""


@contextmanager
def run_deadline(at: float) -> Iterator[None]:
    """Within the block, every request of :func:`http_session` ends by ``at`` (a ``time.monotonic()``)."""
    token = _RUN_DEADLINE.set(at)
    try:
        yield
    finally:
        _RUN_DEADLINE.reset(token)


def run_time_left() -> float | None:
    """Seconds left before the current run's deadline (None outside a run)."""
    at = _RUN_DEADLINE.get()
    return None if at is None else at - time.monotonic()


class _Watch:
    """The watchdog of one request: at its deadline it shuts down every socket the request uses, which
    wakes a read blocked on a trickling source (its connection then counts as dropped, never reused)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _cut(sock)
            elif all(s is not sock for s in self._socks):
                self._socks.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _cut(sock)

    def __enter__(self) -> _Watch:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _cut(sock: socket.socket) -> None:
    # the plain socket's shutdown, also for TLS: wakes the blocked reader without touching TLS state
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_WATCH: ContextVar[_Watch | None] = ContextVar("mlp_request_watch", default=None)


class _Watched:
    """Mixin of an HTTP(S) connection that hands its socket to the current request's watchdog."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watch = _WATCH.get()
        if watch is not None:
            watch.attach(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _WATCH.get()
        if watch is not None:  # a kept-alive connection already has its socket
            watch.attach(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedConnection(_Watched, HTTPConnection):
    pass


class _WatchedTLSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedTLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedTLSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedTLSPool}

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedTLSPool}
        return manager


class _Session(requests.Session):
    """A session whose every request (redirects included) ends by its total deadline."""

    deadline: float = REQUEST_DEADLINE

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if _WATCH.get() is not None:  # a redirect inside a request: the outer deadline covers it
            return super().send(request, **kwargs)
        seconds = self.deadline
        left = run_time_left()
        if left is not None:
            seconds = min(seconds, left)
        if seconds <= 0:
            raise DeadlineExceeded("the run's deadline has passed: no further request", request=request)
        with _Watch(seconds) as watch:
            token = _WATCH.set(watch)
            try:
                resp = super().send(request, **kwargs)
            except requests.RequestException:
                if watch.expired:
                    raise DeadlineExceeded(f"no complete answer within the deadline of {seconds:.3g} s", request=request) from None
                raise
            finally:
                _WATCH.reset(token)
        if watch.expired:  # cut at the deadline: a body without a length may look complete but is not
            raise DeadlineExceeded(f"no complete answer within the deadline of {seconds:.3g} s", request=request)
        return resp


def safe_path(url: str) -> str:
    """The path of a URL, without scheme, credentials, host or query: safe for an error message."""
    return urlsplit(url).path or "/"


def http_session(retries: int = 3, backoff: float = 0.5, deadline: float = REQUEST_DEADLINE) -> requests.Session:
    """A requests session with retries + backoff on 429/5xx, honouring ``Retry-After``, whose every
    request ends within ``deadline`` seconds in total (and by the run's deadline)."""
    session = _Session()
    session.deadline = deadline
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "POST", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = _Adapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "ml-portfolio/0.1"
    return session


def get_json(
    session: requests.Session,
    connector: str,
    method: str,
    url: str,
    *,
    secret_envs: tuple[str, ...] = (),
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> tuple[Any, requests.Response]:
    """Send a request and return ``(parsed JSON, response)``.

    Raises :class:`ConnectorError` naming the connector, HTTP status and URL path — never the host
    with credentials, the query string or a token — for a source that is down, answers 4xx/5xx, or
    answers something that is not JSON.
    """
    path = safe_path(url)
    try:
        resp = session.request(method, url, timeout=timeout, **kwargs)
    except DeadlineExceeded as exc:
        raise ConnectorError(connector, f"stopped waiting: {exc}", path=path) from None
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise ConnectorError(connector, f"source unreachable ({reason})", path=path) from None
    if resp.status_code in (401, 403):
        raise ConnectorError(connector, "authentication refused: check the token variable", status=resp.status_code, path=path)
    if resp.status_code >= 400:
        body = redact(resp.text[:500], secret_envs).strip()
        raise ConnectorError(connector, body or resp.reason or "error", status=resp.status_code, path=path)
    try:
        return resp.json(), resp
    except ValueError:
        raise ConnectorError(connector, "answer is not JSON", status=resp.status_code, path=path) from None


class PageGuard:
    """The loop guard of every paginated connector (like the Singer SDK's): one per listing.

    Call :meth:`ask` with the cursor (offset, page token or next-page URL) before each request and
    :meth:`answered` with the page's items after it. A cursor that repeats, a page identical to an
    earlier one (a server that ignores the offset and answers the same page with ``more: true``),
    or more than ``max_pages`` pages stop the run with a :class:`ConnectorError` -- instead of
    paging for hours and booking nothing new.
    """

    def __init__(self, connector: str, path: str, max_pages: int = MAX_PAGES):
        self.connector = connector
        self.path = path
        self.max_pages = max_pages
        self.pages = 0
        self._cursors: set[str] = set()
        self._prints: dict[str, int] = {}

    def ask(self, cursor: Any) -> None:
        """Before requesting the page at ``cursor``."""
        key = json.dumps(cursor, sort_keys=True, default=str)
        if key in self._cursors:
            raise ConnectorError(
                self.connector,
                f"pagination loop: the cursor of page {self.pages + 1} repeats an earlier page's; stopping",
                path=self.path,
            )
        if self.pages >= self.max_pages:
            raise ConnectorError(self.connector, f"more than {self.max_pages} pages: stopping", path=self.path)
        self._cursors.add(key)
        self.pages += 1

    def answered(self, items: Any) -> None:
        """After a page: its items must differ from every earlier page's."""
        digest = hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()
        first = self._prints.get(digest)
        if first is not None:
            raise ConnectorError(
                self.connector,
                f"pagination loop: page {self.pages} is the same as page {first} although more were announced; stopping",
                path=self.path,
            )
        self._prints[digest] = self.pages


def paginate(connector: str, first_url: str, max_pages: int = MAX_PAGES) -> Generator[str, str | None, None]:
    """Yield page URLs from a ``next_url = yield url`` style loop, guarding against loops.

    Use: ``pages = paginate(...); url = next(pages); ... url = pages.send(next_url)`` — it raises
    ConnectorError if a URL repeats or ``max_pages`` is passed (a :class:`PageGuard` on the URLs;
    pass the items to a PageGuard of your own to catch a server repeating a page under new URLs).
    """
    url: str | None = first_url
    guard = PageGuard(connector, safe_path(first_url), max_pages)
    while url:
        guard.path = safe_path(url)
        guard.ask(url)
        url = yield url
