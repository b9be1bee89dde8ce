"""The recorded fixtures of every registered connector, for the standard suite (test_standard.py).

Adding a connector: its module, one line in ``connectors.REGISTRY``, and one ``Case`` here. A case
says how to serve its recorded answers (HTTP connectors: a real local server), which files to
put in the config's folder (file connectors), or which table to create in a real PostgreSQL
database (database connectors), and the ``[connectors.src]`` keys that point the connector at
them. The suite then runs every standard check over it.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from tests.connectors import test_anthropic as anth
from tests.connectors import test_github_issues as gh
from tests.connectors import test_jira as jira
from tests.connectors import test_litellm as llm
from tests.connectors import test_openai as oai
from tests.connectors import test_opencost as oc
from tests.connectors import test_pagerduty as pd
from tests.servers import SHARED_DATA, PayloadServer, Reply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

APPS = """
[[apps]]
id = "churn-predictor"
team = "search"
cost_tags = ["churn"]

[[apps]]
id = "fraud-scorer"
name = "Fraud Scorer"
team = "risk"

[[apps]]
id = "ivy-calculator"
team = "lang"
"""


@dataclass
class Case:
    """How the standard suite runs one connector on its recorded fixtures."""

    #: the ``[connectors.src]`` keys, given the server URL ("" for file connectors)
    table: Callable[[str], str]
    #: HTTP: a real local server answering with the recorded exchange
    serve: Callable[[], PayloadServer] | None = None
    #: HTTP and paginated: the first recorded page (given the server URL), which announces more pages
    first_page: Callable[[str], Reply] | None = None
    #: HTTP: a recorded answer body (the truncated-body case cuts it in half)
    body: Callable[[], bytes] | None = None
    #: keys that make an HTTP connector give up fast (no retries, a tiny read timeout)
    fast: str = "retries = 0\ntimeout_seconds = 0.3"
    #: files: put the fixtures in the config's folder; returns the main file (truncated / removed)
    files: Callable[[Path], Path] | None = None
    #: environment the connector needs (token variables)
    env: dict[str, str] = field(default_factory=dict)
    #: database: fill the given (empty, real PostgreSQL) database with the recorded table
    database: Callable[[str], None] | None = None
    #: database: the environment variable the connector reads the database URL from
    database_env: str = ""
    #: database: the table the connector reads (the failure cases replace or hide it)
    db_table: str = ""
    apps: str = APPS


def _copy(src: Path, name: str) -> Callable[[Path], Path]:
    def put(folder: Path) -> Path:
        dst = folder / name
        shutil.copy(src, dst)
        return dst

    return put


def _sqlite_ledger(folder: Path) -> Path:
    """The warehouse ledger of tests/fixtures/sql in a SQLite file (schema-less table name)."""
    path = folder / "warehouse.db"
    script = (FIXTURES / "sql" / "value_ledger.sql").read_text()
    script = script.replace("create schema finance;", "").replace("finance.value_ledger", "value_ledger")
    script = re.sub(r"date '(\d{4}-\d{2})-01'", r"'\1'", script)  # SQLite has no DATE: months as text
    with sqlite3.connect(path) as con:
        con.executescript(script)
    return path


def _prometheus_server() -> PayloadServer:
    """Answers ``/api/v1/query_range`` the way Prometheus documents it: a matrix, one series per
    app, one value per requested step (availability 0.999, 1,440 samples, 1,000 requests)."""

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if urlsplit(path).path != "/api/v1/query_range":
            return Reply(404, "404 page not found", {"Content-Type": "text/plain"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        start, end, step = int(float(form["start"])), int(float(form["end"])), int(float(form["step"]))
        q = form["query"]
        value = "0.999" if "avg_over_time" in q else "1440" if "count_over_time" in q else "1000"
        result = [
            {"metric": {"app": app}, "values": [[t, value] for t in range(start, end + 1, step)]}
            for app in ("churn-predictor", "fraud-scorer")
        ]
        return Reply(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})

    return PayloadServer(handle)


_MLFLOW = FIXTURES / "mlflow"


def _mlflow_server() -> PayloadServer:
    """The recorded answers of a real MLflow 2.22 server (tests/fixtures/mlflow), two search pages."""
    pages = [json.loads((_MLFLOW / f"registered_models_search_page{n}.json").read_text()) for n in (1, 2)]

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(path)
        if url.path.endswith("/registered-models/search"):
            token = parse_qs(url.query).get("page_token", [None])[0]
            return Reply(200, pages[1] if token == pages[0]["next_page_token"] else pages[0])
        return Reply(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"})

    return PayloadServer(handle)


def _mlflow_first_page(url: str) -> Reply:
    return Reply(200, json.loads((_MLFLOW / "registered_models_search_page1.json").read_text()))


def _opencost_server() -> PayloadServer:
    return oc.serve(json.loads(oc.LABEL_APP.read_text()))


def _github_server() -> PayloadServer:
    return gh.GitHub().server


def _github_first_page(url: str) -> Reply:
    # the recorded page 1, its "next" link pointing at page 2 of this server
    return Reply(200, gh._recorded(1)["body"], {"Link": f'<{url}/repos/robpike/ivy/issues?page=2>; rel="next"'})


def _openai_server() -> PayloadServer:
    """OpenAI's documented Costs and Usage answers (tests/connectors/test_openai.py): two cost pages
    joined by next_page, the daily totals, completions (two pages), embeddings, moderations."""
    return oai.serve()


def _openai_first_page(url: str) -> Reply:
    return Reply(200, oai.as_json(oai.GROUPED_P1))  # announces next_page "page_AAA"


def _anthropic_first_page(url: str) -> Reply:
    return Reply(200, anth.GROUPED_P1)  # announces next_page "page_CCC"


def _litellm_table(url: str) -> None:
    """LiteLLM's LiteLLM_SpendLogs (its schema.prisma) with the rows of tests/connectors/test_litellm.py."""
    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql(llm.DDL)
            llm.insert(conn, llm.LOGS)
    finally:
        eng.dispose()


def _json_bytes(path: Path) -> Callable[[], bytes]:
    return lambda: path.read_bytes()


CASES: dict[str, Case] = {
    "demo": Case(table=lambda _: 'months = 1\nas_of = "2026-06-30"', apps=""),
    "focus": Case(
        table=lambda _: 'path = "bill.csv"\napp_tag_keys = ["application"]',
        files=_copy(SHARED_DATA / "focus" / "focus-1.0-sample.csv", "bill.csv"),
    ),
    "opencost": Case(
        table=lambda url: f'url = "{url}"\ndays = 2',
        serve=_opencost_server,
        body=_json_bytes(oc.LABEL_APP),
    ),
    "prometheus": Case(
        table=lambda url: f'url = "{url}"\ndays = 3',
        serve=_prometheus_server,
        body=lambda: json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode(),
        fast="retries = 0\ntimeout = 0.3",
    ),
    "mlflow": Case(
        table=lambda url: f'url = "{url}"\npage_size = 1',
        serve=_mlflow_server,
        first_page=_mlflow_first_page,
        body=_json_bytes(_MLFLOW / "registered_models_search_page1.json"),
    ),
    "github_issues": Case(
        table=lambda url: (
            f'repos = ["robpike/ivy"]\napi_url = "{url}"\ntoken_env = "GH_FIXTURE_TOKEN"\n'
            'repo_apps = { "robpike/ivy" = "ivy-calculator" }\nmax_wait_seconds = 1'
        ),
        serve=_github_server,
        first_page=_github_first_page,
        body=lambda: json.dumps(gh._recorded(1)["body"]).encode(),
        env={"GH_FIXTURE_TOKEN": gh.TOKEN},
    ),
    "jira": Case(
        table=lambda url: (
            f'url = "{url}"\nemail = "{jira.EMAIL}"\napi_token_env = "JIRA_FIXTURE_TOKEN"\n'
            'jql = "project = ML ORDER BY updated ASC"\napp_field = "customfield_10042"'
        ),
        serve=lambda: jira.JiraSite().server,
        first_page=lambda url: Reply(200, jira._load("search_page1.json")),
        body=_json_bytes(jira.FIXTURES / "search_page1.json"),
        env={"JIRA_FIXTURE_TOKEN": jira.TOKEN},
    ),
    "pagerduty": Case(
        table=lambda url: (
            f'api_url = "{url}"\ntoken_env = "PD_FIXTURE_TOKEN"\n'
            'services = { "PSCORE1" = "fraud-scorer", "churn batch" = "churn-predictor" }\n'
            'until = "2025-04-01T00:00:00Z"\nhistory_days = 60'
        ),
        serve=lambda: pd.PagerDuty().server,
        first_page=lambda url: Reply(200, json.loads((pd.FIXTURES / "incidents_offset0.json").read_text())),
        body=_json_bytes(pd.FIXTURES / "incidents_offset0.json"),
        env={"PD_FIXTURE_TOKEN": pd.TOKEN},
    ),
    "openai": Case(
        table=lambda url: (
            f'url = "{url}/v1"\nadmin_key_env = "OPENAI_FIXTURE_KEY"\ndays = 2\n'
            'projects = { proj_sup = "churn-predictor", proj_srch = "fraud-scorer" }'
        ),
        serve=_openai_server,
        first_page=_openai_first_page,
        body=lambda: oai.as_json(oai.GROUPED_P1),
        env={"OPENAI_FIXTURE_KEY": oai.KEY},
    ),
    "anthropic": Case(
        table=lambda url: (
            f'url = "{url}"\nadmin_key_env = "ANTHROPIC_FIXTURE_KEY"\ndays = 3\n'
            f'workspaces = {{ {anth.WS_SUP} = "churn-predictor", {anth.WS_DOC} = "fraud-scorer" }}'
        ),
        serve=anth.serve,
        first_page=_anthropic_first_page,
        body=lambda: json.dumps(anth.GROUPED_P1).encode(),
        env={"ANTHROPIC_FIXTURE_KEY": anth.KEY},
    ),
    "litellm": Case(
        table=lambda _: (
            'database_url_env = "LITELLM_FIXTURE_DB"\ndays = 3\ntimeout_seconds = 2\n'
            'tags = { support = "churn-predictor" }\nkey_aliases = { docs-key = "fraud-scorer" }\n'
            'teams = { team-42 = "fraud-scorer", "Docs Team" = "fraud-scorer" }'
        ),
        database=_litellm_table,
        database_env="LITELLM_FIXTURE_DB",
        db_table="LiteLLM_SpendLogs",
    ),
    "timesheet": Case(
        table=lambda _: 'path = "hours.csv"',
        files=_copy(FIXTURES / "timesheet" / "timesheet_2026w02.csv", "hours.csv"),
    ),
    "outcomes_file": Case(
        table=lambda _: 'path = "ledger.csv"',
        files=_copy(FIXTURES / "outcomes_file" / "ledger_2026q3.csv", "ledger.csv"),
        apps="",
    ),
    "sql": Case(
        table=lambda _: (
            'database_url = "sqlite:///warehouse.db"\nquery = "select app_id, month, kind, amount, currency, '
            'attribution, evidence, low, high, note from value_ledger order by app_id, month"'
        ),
        files=_sqlite_ledger,
        apps="",
    ),
}

