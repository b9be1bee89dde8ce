"""The architecture step of issue 10, read from the source: no import circle among the domain
modules (lazy imports inside functions count), no module-level cache, no module reaching into
another's private helpers, one object (Books) that reads the facts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PORTFOLIO = Path(__file__).resolve().parents[2] / "portfolio"
DOMAIN = ["books", "frames", "pnl", "maintenance", "retirement", "recommend", "decisions", "health", "review", "report",
          "lifecycle"]


def _tree(module: str) -> ast.Module:
    return ast.parse((PORTFOLIO / f"{module}.py").read_text(encoding="utf-8"))


def imports_of(module: str) -> set[str]:
    """The portfolio modules ``module`` imports, anywhere in the file."""
    out: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("portfolio.")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "portfolio":
                out |= {a.name for a in node.names}
            elif node.module.startswith("portfolio."):
                out.add(node.module.split(".")[1])
    return {m for m in out if (PORTFOLIO / f"{m}.py").exists()} - {module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"pnl": {"retirement"}, "retirement": {"pnl"}}) == ["pnl", "retirement", "pnl"]
    assert find_cycle({"pnl": {"retirement", "books"}, "retirement": {"books"}, "books": set()}) is None


def test_no_import_circle_in_the_portfolio_package():
    modules = [p.stem for p in PORTFOLIO.glob("*.py") if p.stem != "__init__"]
    graph = {m: imports_of(m) for m in modules}
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph) or [])}"


@pytest.mark.parametrize("module", DOMAIN)
def test_no_private_helper_of_another_module_is_used(module: str) -> None:
    """``pnl._monthly`` and the like from outside pnl: the helpers now live behind Books' public methods."""
    names = {"pnl", "books", "retirement", "maintenance", "recommend", "frames"}
    bad = [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(_tree(module))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        and node.value.id in names and node.attr.startswith("_")
    ]  # fmt: skip
    assert bad == []


@pytest.mark.parametrize("module", DOMAIN)
def test_no_module_level_cache(module: str) -> None:
    """No module-level mutable cache (a dict/OrderedDict/lru_cache kept between calls)."""
    tree = _tree(module)
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name | ast.Attribute):
                name = value.func.id if isinstance(value.func, ast.Name) else value.func.attr
                assert name not in ("OrderedDict", "dict", "WeakValueDictionary", "Lock"), ast.dump(node)
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                text = ast.unparse(deco)
                assert "cache" not in text, f"{module}.{node.name} is cached at module level ({text})"


@pytest.mark.parametrize("module", ["pnl", "maintenance", "retirement", "recommend"])
def test_the_domain_reads_facts_through_books(module: str) -> None:
    text = (PORTFOLIO / f"{module}.py").read_text(encoding="utf-8")
    assert "from portfolio.books import" in text
    for raw in ("facts.costs", "facts.outcomes", "facts.maintenance", "facts.usage", "facts.uptime"):
        if module == "pnl" and raw in ("facts.costs", "facts.outcomes"):
            continue  # the bill reconciliation and the currency listing read the raw rows on purpose
        assert raw not in text, f"{module} reads {raw} itself"
