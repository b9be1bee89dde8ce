"""The connector contract, checked over every entry of ``connectors.REGISTRY``.

Adding a source touches three places — its module, one REGISTRY line, its fixtures (and a
``Case`` in tests/connectors/standard_cases.py) — and this test fails until all are there: the
module imports, ``NAME`` is its registry key, the first line of its docstring (what the Data
health page shows) says what it is, ``pull(config, since)`` has the shape sync calls, it declares
its settings (``Params``) and the record types it yields (``RECORDS``), and it has recorded
fixtures or a test module of its own. tests/connectors/test_standard.py runs the standard suite.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import connectors

TESTS = Path(__file__).resolve().parent
CONNECTORS = [pytest.param(name, path, id=name) for name, path in sorted(connectors.REGISTRY.items())]


@pytest.mark.parametrize(("name", "module_path"), CONNECTORS)
def test_module_imports_and_is_what_load_returns(name: str, module_path: str) -> None:
    module = importlib.import_module(module_path)
    assert connectors.load(name) is module
    assert module_path == f"connectors.{name}", "one module per source, named after its type"


@pytest.mark.parametrize(("name", "module_path"), CONNECTORS)
def test_name_is_the_registry_key(name: str, module_path: str) -> None:
    assert name == importlib.import_module(module_path).NAME


@pytest.mark.parametrize(("name", "module_path"), CONNECTORS)
def test_docstring_first_line_describes_the_source(name: str, module_path: str) -> None:
    doc = inspect.getdoc(importlib.import_module(module_path))
    assert doc, f"connectors.{name} has no module docstring"
    first = doc.splitlines()[0].strip()
    assert first, f"connectors.{name}: the docstring's first line is empty"


@pytest.mark.parametrize(("name", "module_path"), CONNECTORS)
def test_pull_takes_config_and_since(name: str, module_path: str) -> None:
    pull = importlib.import_module(module_path).pull
    assert callable(pull)
    params = list(inspect.signature(pull).parameters.values())
    assert [p.name for p in params] == ["config", "since"]
    assert all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    assert all(p.default is p.empty for p in params), "sync always passes both"


@pytest.mark.parametrize(("name", "module_path"), CONNECTORS)
def test_connector_has_fixtures_or_tests(name: str, module_path: str) -> None:
    fixtures = TESTS / "fixtures" / name
    own_tests = TESTS / "connectors" / f"test_{name}.py"
    assert (fixtures.is_dir() and any(fixtures.iterdir())) or own_tests.is_file(), (
        f"connectors.{name}: add recorded payloads under {fixtures} or tests in {own_tests}"
    )


def test_registry_names_are_unique_modules() -> None:
    assert len(set(connectors.REGISTRY.values())) == len(connectors.REGISTRY)
    assert all(name.isidentifier() for name in connectors.REGISTRY)


@pytest.mark.parametrize(("name", "module_path"), CONNECTORS)
def test_declares_settings_and_record_types(name: str, module_path: str) -> None:
    from connectors.settings import ConnectorParams
    from portfolio import records

    module = importlib.import_module(module_path)
    assert issubclass(module.Params, ConnectorParams), f"connectors.{name}.Params: its settings model"
    assert module.RECORDS and all(getattr(records, t.__name__, None) is t for t in module.RECORDS)
