#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, Python extras, MLflow) and runs
# ruff, mypy and every test. Works on a fresh Debian machine; re-running skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Real servers and a real browser, from Debian: prometheus + promtool, PostgreSQL, Chromium.
need=()
for pkg in prometheus postgresql chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
echo "== installing ml-portfolio[test]"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"

# MLflow's server lives in its own environment: it pins its own versions of what we also use.
if [ ! -x .venv-mlflow/bin/mlflow ]; then
  echo "== installing mlflow (server for the MLflow connector tests)"
  "$PY" -m venv .venv-mlflow
  .venv-mlflow/bin/python -m pip install -q "mlflow>=2.16,<4"
fi
export MLFLOW_BIN="$PWD/.venv-mlflow/bin/mlflow"

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest (SQLite, and both backends where a test says so)"
.venv/bin/python -m pytest "$@"
echo "== pytest again on PostgreSQL: every test that touches the portfolio database (the others would only repeat)"
MLP_TEST_DB=postgresql .venv/bin/python -m pytest -q "$@"
