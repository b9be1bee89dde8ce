"""Which value figure counts when several sources give one for the same app, month and kind.

A month of value may be reported by a finance warehouse (the ``sql`` connector), by a hand upload
on the dashboard (source ``upload``), by a ledger file (``outcomes_file``) and by the demo: adding
them up would count the same money twice. For each (app, month, kind) exactly one row counts: the
one whose source ranks first in ``[value] precedence``. The others are *overridden*; they stay in
the database (nothing is deleted) and are listed on Data health and in the upload preview.

Ranking (:func:`source_order`, :func:`rank`):

- an entry of ``precedence`` is a source name (a connector's name, or ``upload``) or a connector
  *type* (it then stands for every configured connector of that type, in name order);
- sources the list does not name rank after all listed ones, in alphabetical order of their name,
  so the choice is always deterministic.

The default, :data:`DEFAULT_PRECEDENCE` = ``["sql", "upload", "outcomes_file"]``: the finance
warehouse is the book of record and beats a hand upload; an explicit upload (a restated month)
beats a ledger file and every other connector's figure (the demo's included).

Pure functions of frames and lists: no database, no config file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from portfolio.config import DEFAULT_PRECEDENCE as DEFAULT_PRECEDENCE

if TYPE_CHECKING:
    from portfolio.config import Config

#: the source name of rows uploaded on the dashboard's Value ledger page
UPLOAD = "upload"
KEY = ["app_id", "month", "kind"]
OVERRIDDEN_COLUMNS = ["app_id", "month", "kind", "source", "amount", "counted_source", "counted_amount", "conflict"]


def source_order(precedence: Sequence[str], connector_types: Mapping[str, str]) -> list[str]:
    """The listed sources, in order: each entry a source name, or a connector type standing for
    every configured connector of that type (in name order). ``connector_types``: name -> type."""
    types = set(connector_types.values())
    out: list[str] = []
    for entry in precedence:
        if entry in connector_types or entry == UPLOAD or entry not in types:
            names = [entry]
        else:
            names = sorted(n for n, t in connector_types.items() if t == entry)
        out.extend(n for n in names if n not in out)
    return out


def order_of(cfg: Config) -> list[str]:
    """The configured ranking of value sources (``[value] precedence`` resolved against the connectors)."""
    return source_order(cfg.value.precedence, {n: c.type for n, c in cfg.connectors.items()})


def rank(source: str, order: Sequence[str]) -> tuple[int, int, str]:
    """Sort key of a source: listed ones by position, then every other one by name."""
    try:
        return (0, list(order).index(source), "")
    except ValueError:
        return (1, 0, str(source))


def _ranked(rows: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """``rows`` sorted by key, then by source rank (best first), keeping the original index."""
    keys = {s: rank(s, order) for s in rows["source"].astype(str).unique()}
    ranked = rows.assign(
        _pos=range(len(rows)),
        _r0=rows["source"].astype(str).map(lambda s: keys[s][0]),
        _r1=rows["source"].astype(str).map(lambda s: keys[s][1]),
        _r2=rows["source"].astype(str).map(lambda s: keys[s][2]),
    )
    return ranked.sort_values([*KEY, "_r0", "_r1", "_r2", "_pos"], kind="stable")


def resolve(rows: pd.DataFrame, order: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split outcome rows into ``(counted, overridden)``.

    ``rows`` has at least app_id, month, kind, source and amount. ``counted`` is ``rows`` with one
    row per (app, month, kind), original order and columns kept. ``overridden`` lists every row
    that does not count: its key, source and amount, the source and amount that count instead, and
    ``conflict`` (True when the amounts differ: the sources disagree, not merely repeat).
    """
    if rows.empty or "source" not in rows.columns:
        return rows, pd.DataFrame(columns=OVERRIDDEN_COLUMNS)
    ranked = _ranked(rows, order)
    losing = ranked.duplicated(KEY, keep="first")
    if not losing.any():
        return rows, pd.DataFrame(columns=OVERRIDDEN_COLUMNS)
    counted = rows.iloc[sorted(ranked["_pos"][~losing.to_numpy()])]
    winners = ranked.loc[~losing.to_numpy(), [*KEY, "source", "amount"]].rename(
        columns={"source": "counted_source", "amount": "counted_amount"}
    )
    lost = ranked.loc[losing.to_numpy(), [*KEY, "source", "amount"]].merge(winners, on=KEY, how="left")
    lost["conflict"] = [not _same(a, b) for a, b in zip(lost["amount"], lost["counted_amount"], strict=True)]
    return counted, lost.reset_index(drop=True)[OVERRIDDEN_COLUMNS]


def counted(rows: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """The rows that count: one per (app, month, kind), by precedence."""
    return resolve(rows, order)[0]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return bool(a == b)


def amount_text(amount: Any) -> str:
    """An exact amount for people: thousands separators, 2 decimals (``253,957.54``)."""
    return f"{Decimal(str(amount)):,.2f}"
