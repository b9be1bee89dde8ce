"""Real servers for tests: Debian's PostgreSQL, and a real local HTTP server for recorded payloads.

Nothing here is a mock: PostgreSQL is the real server binary started in a temporary folder, and
:class:`PayloadServer` is a real ``http.server`` on a loopback port answering with the bytes,
status and headers it was given. Tests fail (they do not skip) when a server cannot start: the
test command installs them.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# ----------------------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: run the test command (scripts/test.sh) to install postgresql")
    return found[-1]


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster on a loopback port (Debian's server binaries)."""

    port: int
    datadir: str
    user: str = "portfolio"
    proc_user: str | None = None
    _dbs: int = field(default=0)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t", template: str | None = None) -> str:
        """A fresh database (empty, or a copy of ``template``); returns its SQLAlchemy URL."""
        self._dbs += 1
        name = f"{prefix}_{os.getpid()}_{self._dbs}"
        extra = ["-T", template] if template else []
        subprocess.run(
            [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, *extra, name],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    @classmethod
    def start(cls) -> Postgres:
        port = free_port()
        root = tempfile.mkdtemp(prefix="pg-")
        datadir = os.path.join(root, "data")
        run_as: list[str] = []
        proc_user = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            proc_user = "postgres"
            try:
                pwd.getpwnam(proc_user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", proc_user], check=True)
            shutil.chown(root, proc_user)
            run_as = ["runuser", "-u", proc_user, "--"]
        subprocess.run(
            run_as + [_pg_bin("initdb"), "-D", datadir, "-U", "portfolio", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            run_as
            + [
                _pg_bin("pg_ctl"),
                "-D",
                datadir,
                "-l",
                os.path.join(root, "log"),
                "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        return cls(port=port, datadir=datadir, proc_user=proc_user)

    def stop(self) -> None:
        run_as = ["runuser", "-u", self.proc_user, "--"] if self.proc_user else []
        subprocess.run(run_as + [_pg_bin("pg_ctl"), "-D", self.datadir, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)


# ----------------------------------------------------------------------------- HTTP


@dataclass
class Reply:
    """One canned answer: status, headers, body (bytes, str or JSON-able)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Handler = Callable[[str, str, dict[str, str], bytes], Reply]


class PayloadServer:
    """A real HTTP server on 127.0.0.1 answering through ``handler(method, path_with_query, headers, body)``.

    Every request is kept in ``requests`` (method, path, headers, body) so tests can assert on what
    the connector sent (pagination, auth header present, token never in the URL).
    """

    def __init__(self, handler: Handler):
        self.handler = handler
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                outer.requests.append((self.command, self.path, headers, body))
                reply = outer.handler(self.command, self.path, headers, body)
                data = reply.payload()
                self.send_response(reply.status)
                hdrs = {"Content-Type": "application/json", **reply.headers}
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PayloadServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
