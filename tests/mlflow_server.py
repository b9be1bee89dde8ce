"""A real MLflow tracking server for tests: ``mlflow server`` with a SQLite backend on a loopback port.

The binary comes from ``MLFLOW_BIN`` (default: ``mlflow`` on PATH; the test command installs it
into ``.venv-mlflow``). Models, versions, tags and aliases are created through the server's own
REST API (https://mlflow.org/docs/latest/rest-api.html), the same API the connector reads.
Nothing is mocked; a server that cannot start fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from tests.servers import free_port

START_TIMEOUT = 120.0  # seconds; a cold start on a busy 2-core machine takes ~20 s


def mlflow_bin() -> str:
    found = os.environ.get("MLFLOW_BIN") or shutil.which("mlflow")
    local = Path(__file__).resolve().parents[1] / ".venv-mlflow" / "bin" / "mlflow"
    if not found and local.exists():
        found = str(local)
    if not found:
        raise RuntimeError("mlflow not found: set MLFLOW_BIN or run the test command, which installs it")
    return found


class MlflowServer:
    """``mlflow server`` in its own process group; :meth:`stop` ends it, :meth:`start` brings it back
    on the same port and database (the data survives)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mlflow-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / "server.log"

    def start(self) -> MlflowServer:
        cmd = [
            mlflow_bin(),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--default-artifact-root",
            str(self.root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {START_TIMEOUT}s: {self.log.read_text()[-2000:]}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the server and its workers (its own process group only)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ REST API (writes)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = requests.request(method, f"{self.url}/api/2.0/mlflow/{path}", json=body, timeout=30)
        if resp.status_code >= 400:
            raise RuntimeError(f"MLflow {method} {path}: HTTP {resp.status_code} {resp.text[:500]}")
        return resp.json() if resp.content else {}

    def create_model(self, name: str, tags: dict[str, str] | None = None, description: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        if description:
            body["description"] = description
        return self.call("POST", "registered-models/create", body)["registered_model"]  # type: ignore[no-any-return]

    def create_version(self, name: str) -> dict[str, Any]:
        # a remote-looking source: a local path would need a run whose artifacts hold it
        body = {"name": name, "source": f"s3://models/{name}/{time.time_ns()}"}
        return self.call("POST", "model-versions/create", body)["model_version"]  # type: ignore[no-any-return]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.call("POST", "registered-models/alias", {"name": name, "alias": alias, "version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        resp = requests.delete(
            f"{self.url}/api/2.0/mlflow/registered-models/alias", json={"name": name, "alias": alias}, timeout=30
        )
        if resp.status_code >= 400:
            raise RuntimeError(f"MLflow delete alias: HTTP {resp.status_code} {resp.text[:300]}")

    def transition_stage(self, name: str, version: str, stage: str) -> None:
        """The classic stages (None, Staging, Production, Archived), still served by MLflow 2.x."""
        body = {"name": name, "version": version, "stage": stage, "archive_existing_versions": False}
        self.call("POST", "model-versions/transition-stage", body)

    def set_tag(self, name: str, key: str, value: str) -> None:
        self.call("POST", "registered-models/set-tag", {"name": name, "key": key, "value": value})

    def get_model(self, name: str) -> dict[str, Any]:
        resp = requests.get(f"{self.url}/api/2.0/mlflow/registered-models/get", params={"name": name}, timeout=30)
        resp.raise_for_status()
        return resp.json()["registered_model"]  # type: ignore[no-any-return]
