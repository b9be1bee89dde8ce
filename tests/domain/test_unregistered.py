"""Unregistered spend (issue 10): a bill's tag value that names no registered app is never a new app.

End to end on the public FOCUS 1.0 sample (the real connector, a real database on both backends):
its ``application`` tag values become app ids in the facts; only "ZoomMapMax" is claimed (by an
app's ``cost_tags``), so every other tag value is unregistered spend. Expectations are summed
independently with the csv module and Decimal.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from portfolio import cli, config, pnl, recommend, retirement
from portfolio.books import Books
from portfolio.facts import load_facts
from portfolio.periods import Period
from portfolio.records import UNALLOCATED
from portfolio.storage import make_engine

from .build import app, cost, facts

TODAY = date(2026, 12, 2)


def tagged(sample: Path) -> dict[str, Decimal]:
    """BilledCost per ``application`` tag value (no tag: ``_unallocated``)."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    with sample.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            tags = json.loads(row["Tags"]) if row["Tags"] not in ("NULL", "") else {}
            out[tags.get("application") or UNALLOCATED] += Decimal(row["BilledCost"])
    return dict(out)


def write(tmp_path: Path, db_url: str, sample: Path, top: str = "") -> Path:
    path = tmp_path / "portfolio.toml"
    path.write_text(
        f"""{top}
database_url = "{db_url}"
currency = "USD"
[teams.search]
hourly_rate = 100
[[apps]]
id = "zoom"
team = "search"
owner = "jane@example.com"
launched = 2024-01-01
cost_tags = ["ZoomMapMax"]
[connectors.bill]
type = "focus"
path = "{sample}"
cost_column = "BilledCost"
app_tag_keys = ["application"]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def synced(tmp_path: Path, db_url: str, shared_data: Path, capsys: pytest.CaptureFixture[str]):
    sample = shared_data / "focus" / "focus-1.0-sample.csv"
    path = write(tmp_path, db_url, sample)
    assert cli.main(["sync", "--config", str(path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return path, sample


def test_unregistered_spend_end_to_end(synced, capsys: pytest.CaptureFixture[str]) -> None:
    path, sample = synced
    expected = tagged(sample)
    every_tag = {k: v for k, v in expected.items() if k not in ("ZoomMapMax", UNALLOCATED)}
    # the connector rounds to 6 places per bill: a tag of a few millionths of a dollar may write no row
    unregistered = {k: v for k, v in every_tag.items() if abs(v) >= Decimal("0.01")}
    assert len(unregistered) > 10  # the sample has many tag values

    cfg = config.load(path)
    f = load_facts(make_engine(cfg.database_url), today=TODAY)
    books = Books(f, cfg)

    # its own line per tag value, largest first, with the amount to the cent
    spend = books.unregistered_spend()
    got = {r["tag_value"]: Decimal(str(r["amount"])) for r in spend.to_dict("records")}
    assert set(unregistered) <= set(got) <= set(every_tag)
    for tag, amount in got.items():
        assert abs(every_tag[tag] - amount) < Decimal("0.00001"), tag
    assert spend.iloc[0]["tag_value"] == max(unregistered, key=lambda k: unregistered[k])
    assert 'id = "BrightPathMatrix"' in spend.set_index("tag_value").loc["BrightPathMatrix", "claim"]

    # never a new app: the P&L has zoom and _unallocated, which carries the unregistered spend
    frame = pnl.app_pnl(f, cfg, Period(date(2020, 1, 1), date(2026, 12, 1)), books=books)
    assert set(frame["app_id"]) == {"zoom", UNALLOCATED}
    shared = float(frame.set_index("app_id").loc[UNALLOCATED, "cost"])
    assert shared == pytest.approx(float(sum(every_tag.values()) + expected.get(UNALLOCATED, Decimal(0))), abs=1e-4)
    assert float(frame.set_index("app_id").loc["zoom", "cost"]) == pytest.approx(float(expected["ZoomMapMax"]), abs=1e-5)
    # ... nor a retirement candidate ("orphaned" was what an unknown id became)
    assert set(retirement.retirement_findings(f, cfg, books=books)["app_id"]) <= {"zoom"}
    assert set(recommend.recommendations(f, cfg, books=books)["app_id"]) == {"zoom"}

    # the reconciliation counts it as unallocated, and every bill still foots
    rec = pnl.reconciliation(f, cfg, books=books)
    assert (rec["status"] == "ok").all()
    assert rec["unregistered"].sum() == pytest.approx(float(sum(every_tag.values())), abs=1e-4)
    assert (rec["unregistered"] <= rec["unallocated"] + 1e-9).all()

    # `mlportfolio check` lists the top tag values and the [[apps]] entries that would claim them
    assert cli.main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"unregistered spend ({len(got)} tag value(s)" in out
    top = sorted(unregistered, key=lambda k: (-abs(unregistered[k]), k))[:10]
    for tag in top:
        assert f'  id = "{tag}"' in out and f"{float(unregistered[tag]):,.2f} USD" in out
    assert "ZoomMapMax" not in out.split("unregistered spend")[1]


def test_discover_apps_opts_in(synced) -> None:
    path, sample = synced
    text = path.read_text(encoding="utf-8")
    path.write_text("discover_apps = true\n" + text, encoding="utf-8")
    cfg = config.load(path)
    f = load_facts(make_engine(cfg.database_url), today=TODAY)
    books = Books(f, cfg)
    assert books.unregistered_spend().empty
    inv = books.inventory().set_index("app_id")
    assert inv.loc["BrightPathMatrix", "team"] == "_unknown"


def test_other_facts_of_unregistered_ids_count_for_no_app_and_are_listed() -> None:
    from .build import config as test_config
    from .build import outcome, work

    f = facts(
        apps=[app("a")],
        costs=[cost("a", date(2026, 5, 2), 10), cost("churn-predicter", date(2026, 5, 3), 7)],
        outcomes=[outcome("churn-predicter", date(2026, 5, 1), 1000)],
        maintenance=[work("churn-predicter", date(2026, 5, 4), 3)],
    )
    books = Books(f, test_config())
    assert list(books.unregistered_spend()[["tag_value", "amount", "rows"]].itertuples(index=False, name=None)) == [
        ("churn-predicter", 7.0, 1.0)
    ]
    other = books.unregistered_facts()
    assert list(other[["kind", "app_id", "rows"]].itertuples(index=False, name=None)) == [
        ("outcome", "churn-predicter", 1.0), ("maintenance", "churn-predicter", 1.0)
    ]  # fmt: skip
    monthly = books.monthly()
    assert set(monthly["app_id"]) == {"a", UNALLOCATED}
    assert monthly["value"].sum() == 0 and monthly["maintenance_hours"].sum() == 0
    assert monthly.set_index("app_id").loc[UNALLOCATED, "cost"] == 7
