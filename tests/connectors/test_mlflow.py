"""The mlflow connector against a real ``mlflow server`` (SQLite backend, loopback port).

The registry is filled through MLflow's own REST API once per module (a server start takes ~20 s);
every test syncs into its own fresh database. Expected apps are written out by hand; the only
values taken from the server are the version timestamps it assigned when the test created them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors import mlflow as mlflow_connector
from portfolio import config, records, storage, sync
from portfolio.config import AppConfig
from tests.mlflow_server import MlflowServer
from tests.servers import PayloadServer, Reply

# name -> (tags, versions to create, aliases: alias -> version)
MODELS: dict[str, tuple[dict[str, str], int, dict[str, str]]] = {
    "churn-model": ({"app": "churn", "team": "growth", "owner": "ana@example.com"}, 2, {"champion": "2"}),
    "fraud-v2": ({"team": "risk"}, 1, {"staging": "1"}),
    "ranker-a": ({"app": "ranker", "team": "search", "owner": "raj@example.com"}, 1, {}),
    "ranker-b": ({"app": "ranker", "team": "search"}, 2, {"production": "1"}),
    "declared-model": ({"app": "declared", "team": "vision", "owner": "bob@example.com"}, 1, {"champion": "1"}),
    "no-versions": ({}, 0, {}),
    # issue 12: the classic stages, without aliases
    "legacy-scorer": ({"team": "risk"}, 2, {}),
    "old-ranker": ({"team": "search"}, 2, {}),
    "half-archived": ({"team": "search"}, 2, {}),
}
# name -> version -> classic stage (model-versions/transition-stage)
STAGES: dict[str, dict[str, str]] = {
    "legacy-scorer": {"1": "Production", "2": "Staging"},
    "old-ranker": {"1": "Archived", "2": "Archived"},
    "half-archived": {"1": "Archived"},
}


class Registry:
    """The running server and the version timestamps it assigned."""

    def __init__(self, server: MlflowServer):
        self.server = server
        self.version_ms: dict[str, list[int]] = {}
        self.created_ms: dict[str, int] = {}

    def last_version_at(self, *models: str) -> datetime:
        ms = max(max(self.version_ms[m]) for m in models)
        return datetime.fromtimestamp(ms / 1000, tz=UTC)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    server = MlflowServer().start()
    reg = Registry(server)
    try:
        for name, (tags, versions, aliases) in MODELS.items():
            reg.created_ms[name] = int(server.create_model(name, tags, description=f"{name} for tests")["creation_timestamp"])
            reg.version_ms[name] = [int(server.create_version(name)["creation_timestamp"]) for _ in range(versions)]
            for alias, version in aliases.items():
                server.set_alias(name, alias, version)
            for version, stage in STAGES.get(name, {}).items():
                server.transition_stage(name, version, stage)
        yield reg
    finally:
        server.close()


@pytest.fixture
def mlflow_url(registry: Registry) -> str:
    if not registry.server.running:  # a test stopped it on purpose: bring it back, same data
        registry.server.start()
    return registry.server.url


TOML = """
database_url = "sqlite:///unused.db"
[[apps]]
id = "declared"
name = "Declared in the file"
team = "platform"
owner = "jane@example.com"
stage = "production"

[connectors.registry]
type = "mlflow"
url = "{url}"
page_size = {page_size}
{extra}
"""


def make_cfg(url: str, page_size: int = 2, extra: str = "") -> config.Config:
    return config.loads(TOML.format(url=url, page_size=page_size, extra=extra))


def apps_by_id(engine: Engine) -> dict[str, dict[str, object]]:
    """The App table as Python values (None stays None, unlike a pandas frame)."""
    table = storage.table_of(records.App)
    with engine.connect() as conn:
        return {row.app_id: dict(row._mapping) for row in conn.execute(sa.select(table))}


@pytest.mark.parametrize(
    ("app_id", "models", "name", "team", "owner", "stage"),
    [
        pytest.param("churn", ("churn-model",), "churn-model", "growth", "ana@example.com", "production", id="tags-and-champion"),
        pytest.param("fraud-v2", ("fraud-v2",), "fraud-v2", "risk", None, "pilot", id="no-app-tag-uses-name-staging-alias-is-pilot"),
        pytest.param("ranker", ("ranker-a", "ranker-b"), "ranker", "search", "raj@example.com", "production", id="two-models-one-app"),
        pytest.param("no-versions", (), "no-versions", "unassigned", None, "pilot", id="no-tags-no-versions"),
        pytest.param("legacy-scorer", ("legacy-scorer",), "legacy-scorer", "risk", None, "production", id="classic-stage-production"),
        pytest.param("old-ranker", ("old-ranker",), "old-ranker", "search", None, "retired", id="all-versions-archived-is-retired"),
        pytest.param("half-archived", ("half-archived",), "half-archived", "search", None, "pilot", id="one-version-archived-is-pilot"),
    ],
)
def test_sync_creates_apps(
    mlflow_url: str, registry: Registry, engine: Engine, app_id: str, models: tuple[str, ...],
    name: str, team: str, owner: str | None, stage: str,
) -> None:
    out = sync.sync(make_cfg(mlflow_url), engine, only=["registry"])
    assert [r.status for r in out.runs] == ["success"], out.runs[0].error
    apps = apps_by_id(engine)
    assert set(apps) == {"churn", "fraud-v2", "ranker", "no-versions", "declared", "legacy-scorer", "old-ranker", "half-archived"}
    app = apps[app_id]
    assert (app["name"], app["team"], app["owner"], app["stage"], app["source"]) == (name, team, owner, stage, "registry")
    expected_last = registry.last_version_at(*models) if models else None
    assert app["last_model_version_at"] == expected_last
    first_model = (models or ("no-versions",))[0]
    assert app["description"] == f"{first_model} for tests"
    launched = min(registry.created_ms[m] for m in (models or ("no-versions",)))
    assert app["launched"] == datetime.fromtimestamp(launched / 1000, tz=UTC).date()


def test_sync_twice_same_rows(mlflow_url: str, engine: Engine) -> None:
    cfg = make_cfg(mlflow_url)
    first = sync.sync(cfg, engine, only=["registry"]).runs[0]
    before = storage.read_frame(engine, records.App).sort_values("app_id", ignore_index=True)
    second = sync.sync(cfg, engine, only=["registry"]).runs[0]
    after = storage.read_frame(engine, records.App).sort_values("app_id", ignore_index=True)
    assert (first.status, first.rows_written) == ("success", 7)  # 7 MLflow apps; "declared" is config's
    assert (second.status, second.rows_written, second.rows_deleted) == ("success", 0, 0)
    assert before.equals(after)


def test_declared_app_wins_and_conflict_is_reported(
    mlflow_url: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.mlflow"):
        run = sync.sync(make_cfg(mlflow_url), engine, only=["registry"]).runs[0]
    assert run.status == "success"
    declared = apps_by_id(engine)["declared"]
    assert (declared["team"], declared["owner"], declared["source"], declared["name"]) == (
        "platform", "jane@example.com", "config", "Declared in the file",
    )
    expected = [
        "app declared: team is 'platform' in portfolio.toml but 'vision' in MLflow (model declared-model); portfolio.toml wins",
        "app declared: owner is 'jane@example.com' in portfolio.toml but 'bob@example.com' in MLflow (model declared-model); portfolio.toml wins",
    ]
    assert run.warnings == "\n".join(f"conflict with portfolio.toml: {line}" for line in expected)
    assert [r.getMessage() for r in caplog.records if r.name == "connectors.mlflow"] == [
        f"registry: conflict: {line}" for line in expected
    ]


@pytest.mark.parametrize(
    ("declared", "found", "expected"),
    [
        pytest.param(
            [AppConfig(id="a", team="t1", owner="o1")],
            [records.App(app_id="a", name="m", team="t1", owner="o1")],
            [],
            id="same-team-and-owner",
        ),
        pytest.param(
            [AppConfig(id="a", team="t1", owner=None)],
            [records.App(app_id="a", name="m", team="t2", owner="o2")],
            [
                "app a: team is 't1' in portfolio.toml but 't2' in MLflow (model m); portfolio.toml wins",
                "app a: owner is None in portfolio.toml but 'o2' in MLflow (model m); portfolio.toml wins",
            ],
            id="both-differ",
        ),
        pytest.param(
            [AppConfig(id="a", team="t1", owner="o1")],
            [records.App(app_id="a", name="m", team="t1", owner=None)],
            [],
            id="mlflow-silent-on-owner",
        ),
        pytest.param(
            [AppConfig(id="a", team="t1")],
            [records.App(app_id="b", name="m", team="t9")],
            [],
            id="different-apps",
        ),
    ],
)
def test_conflicts(declared: list[AppConfig], found: list[records.App], expected: list[str]) -> None:
    assert mlflow_connector.conflicts(declared, found) == expected


def test_fetch_aliases_and_version_search_give_the_same_apps(
    mlflow_url: str, engine: Engine, make_db_url: Callable[[str], str]
) -> None:
    """``fetch_aliases`` asks registered-models/get per model: same inventory as the search answer."""
    plain = sync.sync(make_cfg(mlflow_url), engine, only=["registry"]).runs[0]
    frame_plain = storage.read_frame(engine, records.App).sort_values("app_id", ignore_index=True)
    other = storage.make_engine(make_db_url("other"))
    run = sync.sync(make_cfg(mlflow_url, extra="fetch_aliases = true"), other, only=["registry"]).runs[0]
    frame_fetched = storage.read_frame(other, records.App).sort_values("app_id", ignore_index=True)
    assert (plain.status, run.status) == ("success", "success")
    assert frame_fetched.drop(columns=["source"]).equals(frame_plain.drop(columns=["source"]))


def test_alias_removed_demotes_to_pilot(mlflow_url: str, registry: Registry, engine: Engine) -> None:
    cfg = make_cfg(mlflow_url)
    assert sync.sync(cfg, engine, only=["registry"]).ok
    assert apps_by_id(engine)["churn"]["stage"] == "production"
    registry.server.delete_alias("churn-model", "champion")
    try:
        run = sync.sync(cfg, engine, only=["registry"]).runs[0]
        assert (run.status, run.rows_written) == ("success", 1)
        assert apps_by_id(engine)["churn"]["stage"] == "pilot"
    finally:
        registry.server.set_alias("churn-model", "champion", "2")


def test_mlflow_error_message_kept_and_data_intact(mlflow_url: str, engine: Engine) -> None:
    """A request MLflow refuses: the SyncRun carries MLflow's own error code and message."""
    assert sync.sync(make_cfg(mlflow_url), engine, only=["registry"]).ok
    before = storage.read_frame(engine, records.App)
    run = sync.sync(make_cfg(mlflow_url, page_size=5000), engine, only=["registry"]).runs[0]
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith("registry: HTTP 400 /api/2.0/mlflow/registered-models/search INVALID_PARAMETER_VALUE: ")
    assert "max_results" in run.error and "5000" in run.error
    assert storage.read_frame(engine, records.App).equals(before)


def test_token_sent_as_bearer_and_never_shown(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry behind auth that refuses the token (MLflow's documented error body)."""
    monkeypatch.setenv("REG_TOKEN", "tok-very-secret-123")
    body = {"error_code": "UNAUTHENTICATED", "message": "Invalid token tok-very-secret-123"}
    with PayloadServer(lambda *_: Reply(401, body)) as srv:
        run = sync.sync(make_cfg(srv.url, extra='token_env = "REG_TOKEN"'), engine, only=["registry"]).runs[0]
    assert srv.requests[0][2]["Authorization"] == "Bearer tok-very-secret-123"
    assert "tok-very-secret-123" not in srv.requests[0][1]
    assert run.status == "failed"
    assert run.error == (
        "registry: HTTP 401 /api/2.0/mlflow/registered-models/search UNAUTHENTICATED: Invalid token ***"
    )


RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow"


def test_registry_without_aliases_or_latest_versions_in_search(engine: Engine) -> None:
    """A search answer lacking ``aliases`` and ``latest_versions`` (older / third-party registries):
    aliases come from registered-models/get (``fetch_aliases``), the last version from
    model-versions/search. Served from real MLflow answers (tests/fixtures/mlflow) with those
    two fields removed from the search pages."""
    pages = [json.loads((RECORDED / f"registered_models_search_page{n}.json").read_text()) for n in (1, 2)]
    full = {m["name"]: m for page in pages for m in page["registered_models"]}
    versions = {
        "churn-model": json.loads((RECORDED / "model_versions_search_churn.json").read_text()),
        "fraud-v2": json.loads((RECORDED / "model_versions_search_fraud.json").read_text()),
    }

    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.endswith("/registered-models/search"):
            page = pages[1] if q.get("page_token") == pages[0]["next_page_token"] else pages[0]
            stripped = [{k: v for k, v in m.items() if k not in ("aliases", "latest_versions")} for m in page["registered_models"]]
            return Reply(200, {**page, "registered_models": stripped})
        if url.path.endswith("/registered-models/get"):
            return Reply(200, {"registered_model": full[q["name"]]})
        if url.path.endswith("/model-versions/search"):
            return Reply(200, versions[q["filter"].split("'")[1]])
        return Reply(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"})

    with PayloadServer(handler) as srv:
        run = sync.sync(make_cfg(srv.url, page_size=1, extra="fetch_aliases = true"), engine, only=["registry"]).runs[0]
    assert (run.status, run.rows_written) == ("success", 2), run.error
    apps = apps_by_id(engine)
    got = {k: (a["team"], a["owner"], a["stage"], a["last_model_version_at"]) for k, a in apps.items() if k != "declared"}
    churn_last = versions["churn-model"]["model_versions"][0]["creation_timestamp"]
    fraud_last = versions["fraud-v2"]["model_versions"][0]["creation_timestamp"]
    assert got == {
        "churn": ("growth", "ana@example.com", "production", datetime.fromtimestamp(churn_last / 1000, tz=UTC)),
        "fraud-v2": ("risk", None, "pilot", datetime.fromtimestamp(fraud_last / 1000, tz=UTC)),
    }
    paths = [urlsplit(r[1]).path.rsplit("/mlflow/", 1)[1] for r in srv.requests]
    assert paths == [
        "registered-models/search", "registered-models/get", "model-versions/search",
        "registered-models/search", "registered-models/get", "model-versions/search",
    ]  # fmt: skip


def test_server_stopped_fails_run_and_keeps_data(mlflow_url: str, registry: Registry, engine: Engine) -> None:
    """Runs last in this module: it stops the server (the fixture restarts it if needed)."""
    cfg = make_cfg(mlflow_url)
    assert sync.sync(cfg, engine, only=["registry"]).ok
    before = storage.read_frame(engine, records.App)
    registry.server.stop()
    run = sync.sync(cfg, engine, only=["registry"]).runs[0]
    assert run.status == "failed"
    assert run.error == (
        "registry: /api/2.0/mlflow/registered-models/search MLflow server unreachable (ConnectionError)"
    )
    assert storage.read_frame(engine, records.App).equals(before)
    runs = storage.read_frame(engine, records.SyncRun).sort_values("id")
    assert runs["status"].tolist() == ["success", "failed"]
