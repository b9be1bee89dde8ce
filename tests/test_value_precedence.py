"""One truth per outcome (issue 10): one figure per app, month and kind, one write path, no unknown apps.

The precedence rules are checked on hand-built rows; the write path on a private copy of the demo
(card-fraud's May 2026 cost avoidance is 253,957.54 from the demo connector, attribution 1.0), on
both backends. Every expected number is written out by hand.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from portfolio import config, facts, ledger, pnl, precedence, records, storage, sync
from portfolio.errors import ConfigError, SyncError
from tests.conftest import DEMO_AS_OF

TODAY = date.fromisoformat(DEMO_AS_OF)
MAY = date(2026, 5, 1)
DEMO_MAY = Decimal("253957.54")  # the demo's card-fraud 2026-05 cost_avoidance (attribution 1.0)


# ----------------------------------------------------------------------------- precedence, pure


def rows(*items: tuple[str, str, str, float]) -> pd.DataFrame:
    """(source, app_id, month YYYY-MM, amount) rows, all of kind cost_avoidance."""
    return pd.DataFrame(
        [{"source": s, "app_id": a, "month": date.fromisoformat(m + "-01"), "kind": "cost_avoidance", "amount": x}
         for s, a, m, x in items]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("given", "order", "counted", "overridden"),
    [
        pytest.param(
            [("demo", "a", "2026-05", 100.0)], ["upload"], [("demo", "a", 100.0)], [], id="one-source",
        ),
        pytest.param(
            [("demo", "a", "2026-05", 100.0), ("upload", "a", "2026-05", 110.0)], ["upload"],
            [("upload", "a", 110.0)], [("demo", 100.0, "upload", 110.0, True)], id="listed-beats-unlisted",
        ),
        pytest.param(
            [("upload", "a", "2026-05", 110.0), ("finance", "a", "2026-05", 120.0), ("demo", "a", "2026-05", 120.0)],
            ["finance", "upload"],
            [("finance", "a", 120.0)],
            [("upload", 110.0, "finance", 120.0, True), ("demo", 120.0, "finance", 120.0, False)],
            id="warehouse-first-a-repeat-is-no-conflict",
        ),
        pytest.param(
            [("zeta", "a", "2026-05", 1.0), ("alpha", "a", "2026-05", 2.0)], [],
            [("alpha", "a", 2.0)], [("zeta", 1.0, "alpha", 2.0, True)], id="unlisted-alphabetical",
        ),
        pytest.param(
            [("demo", "a", "2026-05", 1.0), ("upload", "b", "2026-05", 2.0), ("demo", "a", "2026-06", 3.0)], ["upload"],
            [("demo", "a", 1.0), ("upload", "b", 2.0), ("demo", "a", 3.0)], [], id="different-keys-all-count",
        ),
    ],
)  # fmt: skip
def test_resolve_keeps_one_row_per_key(
    given: list[tuple[str, str, str, float]], order: list[str], counted: list[tuple[object, ...]], overridden: list[tuple[object, ...]]
) -> None:
    kept, lost = precedence.resolve(rows(*given), order)
    assert list(kept[["source", "app_id", "amount"]].itertuples(index=False, name=None)) == counted
    got = list(lost[["source", "amount", "counted_source", "counted_amount", "conflict"]].itertuples(index=False, name=None))
    assert got == overridden


def test_source_order_names_types_and_the_default() -> None:
    types = {"finance-warehouse": "sql", "value-ledger": "outcomes_file", "b-sheet": "outcomes_file", "demo": "demo"}
    # the default: sql connectors, then uploads, then ledger files (in name order); others after, by name
    assert precedence.source_order(precedence.DEFAULT_PRECEDENCE, types) == [
        "finance-warehouse", "upload", "b-sheet", "value-ledger",
    ]  # fmt: skip
    assert precedence.rank("demo", ["upload"]) > precedence.rank("upload", ["upload"])
    assert precedence.rank("alpha", []) < precedence.rank("beta", [])
    # a name wins over a type of the same spelling; an unknown entry stays a (retired) source name
    assert precedence.source_order(["value-ledger", "upload", "old-sheet"], types) == ["value-ledger", "upload", "old-sheet"]
    cfg = config.loads('[value]\nprecedence = ["upload", "demo"]\n[connectors.demo]\ntype = "demo"\n')
    assert precedence.order_of(cfg) == ["upload", "demo"]
    assert config.loads("").value.precedence == ["sql", "upload", "outcomes_file"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[value]\nprecedence = ["upload", "upload"]', "value.precedence[1] 'upload' is listed twice"),
        ('[value]\nprecedence = [" "]', "value.precedence[0] is empty"),
        ('[value]\norder = ["upload"]', "value.order"),
    ],
)
def test_precedence_config_errors(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error.replace("[", r"\[").replace("]", r"\]")):
        config.loads(text)


# ----------------------------------------------------------------------------- the write path, on the demo


def card_fraud(amount: str, month: date = MAY) -> list[records.OutcomeRecord]:
    text = f"app_id,month,kind,amount,currency,attribution,evidence\ncard-fraud,{month:%Y-%m},cost_avoidance,{amount},USD,1,experiment\n"
    recs, errors = ledger.validate_ledger(ledger.read_ledger(io.BytesIO(text.encode())))  # type: ignore[arg-type]
    assert errors.empty
    return recs


def may_value(engine: Engine, cfg: config.Config) -> float:
    monthly = pnl.monthly_pnl(facts.load_facts(engine, today=TODAY), cfg)
    row = monthly[(monthly.app_id == "card-fraud") & (monthly.month == MAY)]
    return float(row["value"].sum())


def upload_runs(engine: Engine) -> list[list[object]]:
    runs = storage.read_frame(engine, records.SyncRun, records.SyncRun.connector == "upload").sort_values("id")  # type: ignore[arg-type]
    runs = runs[["connector_type", "status", "rows_written", "warnings"]].astype(object)
    return runs.where(runs.notna(), None).values.tolist()


def test_upload_over_a_connector_row_counts_once_and_says_what_it_replaces(demo_copy_url: str) -> None:
    engine = storage.make_engine(demo_copy_url)
    cfg = config.demo_config(demo_copy_url)
    order = precedence.order_of(cfg)
    assert may_value(engine, cfg) == pytest.approx(253957.54, abs=0.005)

    # the preview is the writer's dry run: it names the source and both figures, and writes nothing
    preview = ledger.replaced_months(engine, card_fraud("260000.00"), order=order)
    assert list(preview.itertuples(index=False, name=None)) == [
        ("card-fraud", "2026-05", "cost_avoidance", "replaces", "demo", DEMO_MAY, "upload", Decimal("260000.00"))
    ]
    assert ledger.describe_changes(preview) == [
        "replaces 1 row(s) from demo: card-fraud 2026-05 cost_avoidance 253,957.54 -> 260,000.00"
    ]
    assert upload_runs(engine) == []  # a dry run records no SyncRun

    assert ledger.commit(engine, card_fraud("260000.00"), order=order) == 1
    # counted once: 260,000.00, not 253,957.54 + 260,000.00 = 513,957.54 as before
    assert may_value(engine, cfg) == pytest.approx(260000.00, abs=0.005)
    # the demo's row is kept, listed as overridden (Data health), with both amounts
    lost = precedence.resolve(facts.load_facts(engine, today=TODAY).outcomes, order)[1]
    assert list(lost.itertuples(index=False, name=None)) == [
        ("card-fraud", MAY, "cost_avoidance", "demo", 253957.54, "upload", 260000.0, True)
    ]

    # the same file again: the dry run says unchanged, the commit writes nothing
    assert list(ledger.replaced_months(engine, card_fraud("260000.00"), order=order)["status"]) == ["unchanged"]
    assert ledger.commit(engine, card_fraud("260000.00"), order=order) == 0
    # restated: replaces the upload's own earlier row
    restated = ledger.replaced_months(engine, card_fraud("261000.10"), order=order)
    assert list(restated.itertuples(index=False, name=None)) == [
        ("card-fraud", "2026-05", "cost_avoidance", "replaces", "upload", Decimal("260000"), "upload", Decimal("261000.10"))
    ]
    assert ledger.commit(engine, card_fraud("261000.10"), order=order) == 1
    assert may_value(engine, cfg) == pytest.approx(261000.10, abs=0.005)

    # the same SyncRun ledger as syncs: one run per commit, what it replaced in its warnings
    assert upload_runs(engine) == [
        ["upload", "success", 1, "card-fraud 2026-05 cost_avoidance: replaces demo 253,957.54 -> upload 260,000.00"],
        ["upload", "success", 0, None],
        ["upload", "success", 1, "card-fraud 2026-05 cost_avoidance: replaces upload 260,000.00 -> upload 261,000.10"],
    ]


def test_a_warehouse_figure_beats_an_upload(demo_copy_url: str) -> None:
    engine = storage.make_engine(demo_copy_url)
    cfg = config.demo_config(demo_copy_url)
    cfg.connectors["finance-warehouse"] = config.ConnectorConfig(name="finance-warehouse", type="sql")
    order = precedence.order_of(cfg)
    assert order[:2] == ["finance-warehouse", "upload"]
    warehouse = [r.model_copy(update={"amount": Decimal("255000.00")}) for r in card_fraud("1")]
    written = sync.write_records(engine, "finance-warehouse", warehouse, connector_type="sql", order=order)
    assert (written.written, list(written.changes["status"])) == (1, ["replaces"])
    assert may_value(engine, cfg) == pytest.approx(255000.00, abs=0.005)

    preview = ledger.replaced_months(engine, card_fraud("260000.00"), order=order)
    assert list(preview.itertuples(index=False, name=None)) == [
        ("card-fraud", "2026-05", "cost_avoidance", "overridden", "finance-warehouse", Decimal("255000"),
         "finance-warehouse", Decimal("255000")),
    ]  # fmt: skip
    assert ledger.describe_changes(preview) == [
        "1 row(s) will not count: finance-warehouse ranks higher in [value] precedence "
        "(card-fraud 2026-05 cost_avoidance stays 255,000.00)"
    ]
    ledger.commit(engine, card_fraud("260000.00"), order=order)
    assert may_value(engine, cfg) == pytest.approx(255000.00, abs=0.005)


# ----------------------------------------------------------------------------- unknown ids


def test_unknown_app_refused_with_a_did_you_mean(demo_copy_url: str) -> None:
    engine = storage.make_engine(demo_copy_url)
    text = (
        "app_id,month,kind,amount\n"
        "churn-predictor,2026-05,revenue_capture,10\n"
        "churn-predicter,2026-05,revenue_capture,20\n"
        "zzz-nothing-like-it,2026-05,revenue_capture,30\n"
    )
    frame = ledger.read_ledger(io.BytesIO(text.encode()))  # type: ignore[arg-type]
    errors = ledger.unknown_app_errors(frame, ledger.known_apps(engine))
    assert list(errors[["row", "column", "value"]].itertuples(index=False, name=None)) == [
        (3, "app_id", "churn-predicter"), (4, "app_id", "zzz-nothing-like-it"),
    ]  # fmt: skip
    assert errors["reason"][0] == "no app 'churn-predicter' in the inventory: did you mean 'churn-predictor'?"
    assert errors["reason"][1].startswith("no app 'zzz-nothing-like-it' in the inventory (known: ")
    assert "file ledger.csv, row 3, column 'app_id' (value 'churn-predicter'): no app" in ledger.describe_errors(errors, file="ledger.csv")

    # the write path refuses them too (a caller that skipped the check): nothing written, run failed
    recs, _ = ledger.validate_ledger(frame)
    before = storage.read_frame(engine, records.OutcomeRecord)
    with pytest.raises(SyncError, match="did you mean 'churn-predictor'"):
        ledger.commit(engine, recs)
    after = storage.read_frame(engine, records.OutcomeRecord)
    assert len(after) == len(before) and "churn-predicter" not in set(after["app_id"])
    t = storage.table_of(records.App)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(t.c.app_id == "churn-predicter")).scalar() == 0
    runs = upload_runs(engine)
    assert [r[:3] for r in runs] == [["upload", "failed", 0]]
