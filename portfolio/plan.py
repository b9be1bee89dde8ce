"""Plan versus actual: business cases, value assumptions, hard and soft value.

**Business case** (optional, per app): expected annual value, expected annual run cost, build
cost, approved by, approved on. It is given in ``portfolio.toml`` (``[plan.business_case.<app id>]``)
or in a ledger file (``[plan] business_case_file``, CSV or .xlsx) read and checked like the
outcomes ledger (:mod:`portfolio.ledger`: caps, UTF-8, every bad cell named by file, row and
column; all-or-nothing). An app given in both places is an error, never a silent pick.

**Actual against plan** (:func:`plan_vs_actual`): the actual annual figures are the last 12 full
months ending on or before the as-of day (value and cost as the P&L counts them, people included);
an app launched inside those months is annualised from its full months since launch (``months``
says how many), and one with no full month yet is not compared. variance = actual − plan;
% of plan = actual / plan; net = value − run cost. Ahead of plan = actual net ≥ planned net.

**Value assumptions** (:func:`assumptions`): an ``estimate`` row of the outcomes ledger names the
assumption behind it (column ``assumption``), and ``[plan.assumptions.<name>]`` declares it with
its owner, approver and expiry day (and, for rows that name none, the app, kind and months it
covers). An assumption without an approver is *unapproved*, one whose expiry day is before the
last complete day is *expired*, one named by rows but declared nowhere is *undeclared*; estimate
value no assumption covers is listed as *no assumption*. All of them are **soft value**; **hard value** is experiment + observational
evidence. Every total shows both (:func:`hard_soft`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from portfolio import ledger, precedence
from portfolio.books import Books
from portfolio.config import BusinessCase, Config
from portfolio.errors import ConfigError
from portfolio.frames import as_dates, empty_frame, to_ts
from portfolio.periods import full_months, month_start
from portfolio.records import UNALLOCATED

CASE_COLUMNS = [
    "app_id",
    "expected_annual_value",
    "expected_annual_run_cost",
    "build_cost",
    "approved_by",
    "approved_on",
]
CASE_REQUIRED = ["app_id"]
PLAN_COLUMNS = [
    "app_id", "name", "approved_by", "approved_on", "source", "months", "expected_annual_value", "actual_annual_value",
    "value_variance", "value_pct_of_plan", "expected_annual_run_cost", "actual_annual_run_cost", "run_cost_variance",
    "run_cost_pct_of_plan", "expected_annual_net", "actual_annual_net", "net_variance", "build_cost", "status",
]  # fmt: skip
ASSUMPTION_COLUMNS = [
    "assumption",
    "app_id",
    "kind",
    "owner",
    "approver",
    "expires",
    "status",
    "months",
    "value",
]
HARD = ("experiment", "observational")
#: assumption statuses that are flagged
FLAGGED = ("expired", "unapproved", "undeclared")
PLAN_MONTHS = 12


class PlanError(ConfigError):
    """A business case file or entry that cannot be used: names the file, row and column."""


@dataclass(frozen=True)
class Case:
    app_id: str
    expected_annual_value: Decimal | None
    expected_annual_run_cost: Decimal | None
    build_cost: Decimal | None
    approved_by: str | None
    approved_on: date | None
    source: str  # "portfolio.toml" or the file's name


def _dec(x: float | None) -> Decimal | None:
    return None if x is None else Decimal(str(x))


# ----------------------------------------------------------------------------- business cases


def validate_cases(
    df: pd.DataFrame, file: str, known: set[str] | None = None
) -> tuple[list[Case], pd.DataFrame]:
    """Check a business-case frame (text cells, as :func:`portfolio.ledger.read_ledger` returns).

    Returns ``(cases, errors)``; ``errors`` has the ledger's columns (row, column, value, reason),
    rows numbered as a spreadsheet shows them; when it is not empty ``cases`` is empty.
    ``known``: the inventory's app ids (a row naming another app is refused).
    """
    errors: list[tuple[int, str, str, str]] = []
    columns = [str(c).strip().lower() for c in df.columns]
    for col in CASE_REQUIRED:
        if col not in columns:
            errors.append(
                (1, col, "", f"missing column; a business case file needs {', '.join(CASE_REQUIRED)}")
            )
    for col in columns:
        if col not in CASE_COLUMNS:
            errors.append((1, col, col, f"unknown column; expected columns: {', '.join(CASE_COLUMNS)}"))
    if len(set(columns)) != len(columns):
        errors.append(
            (
                1,
                ",".join(sorted({c for c in columns if columns.count(c) > 1})),
                "",
                "column appears more than once",
            )
        )
    if errors:
        return [], ledger._errors_frame(errors)
    frame = df.copy()
    frame.columns = columns
    out: list[Case] = []
    seen: dict[str, int] = {}
    for index, raw in frame.iterrows():
        row = int(index) + 2  # type: ignore[call-overload]
        cell = {c: ledger._cell_text(raw.get(c)) for c in CASE_COLUMNS}
        bad: list[tuple[int, str, str, str]] = []

        def fail(
            col: str, reason: str, row: int = row, cell: dict[str, str | None] = cell, bad: list[Any] = bad
        ) -> None:
            bad.append((row, col, ledger._shown(cell.get(col) or ""), reason))

        for col, text in cell.items():
            if text is not None and (len(text) > ledger.MAX_TEXT or ledger._CONTROL.search(text)):
                fail(col, "too long or holds a control character (such as NUL)")
        if bad:
            errors += bad
            continue
        app_id = cell["app_id"]
        if not app_id:
            fail("app_id", "empty: every row needs the app's id")
        elif app_id in seen:
            fail("app_id", f"duplicate of row {seen[app_id]}: one business case per app")
        elif known is not None and app_id not in known:
            fail("app_id", f"no registered app {app_id!r}")
        money: dict[str, Decimal | None] = {}
        for col in ("expected_annual_value", "expected_annual_run_cost", "build_cost"):
            money[col] = ledger._parse_money(cell[col], col, fail) if cell[col] else None
            if money[col] is not None and money[col] < 0:  # type: ignore[operator]
                fail(col, "negative: expected an amount of 0 or more")
        if money["expected_annual_value"] is None and money["expected_annual_run_cost"] is None and not bad:
            fail(
                "expected_annual_value",
                "empty: a business case needs expected_annual_value or expected_annual_run_cost",
            )
        approved_on = None
        if cell["approved_on"]:
            try:
                approved_on = date.fromisoformat(cell["approved_on"])
            except ValueError:
                fail("approved_on", "not a date: expected YYYY-MM-DD")
        if bad:
            errors += bad
            continue
        assert app_id is not None
        seen[app_id] = row
        out.append(
            Case(app_id, money["expected_annual_value"], money["expected_annual_run_cost"], money["build_cost"],
                 cell["approved_by"], approved_on, file)
        )  # fmt: skip
    if errors:
        return [], ledger._errors_frame(errors)
    return out, ledger._errors_frame([])


def _file_path(cfg: Config) -> Path | None:
    raw = cfg.plan.business_case_file
    if not raw:
        return None
    p = Path(raw).expanduser()
    return p if p.is_absolute() else Path(cfg.base_dir) / p


def business_cases(cfg: Config, known: set[str] | None = None) -> dict[str, Case]:
    """Every business case: the config's and the file's. Raises :class:`PlanError` naming the file,
    row and column of each bad cell, or the app given in both places."""
    cases = {
        app_id: Case(app_id, _dec(c.expected_annual_value), _dec(c.expected_annual_run_cost), _dec(c.build_cost),
                     c.approved_by, c.approved_on, "portfolio.toml")
        for app_id, c in cfg.plan.business_case.items()
    }  # fmt: skip
    path = _file_path(cfg)
    if path is None:
        return cases
    name = path.name
    try:
        frame = ledger.read_ledger(path)
    except FileNotFoundError:
        raise PlanError(f"plan.business_case_file: {path} not found") from None
    except ledger.LedgerFileError as exc:
        raise PlanError(f"plan.business_case_file: {exc}") from None
    rows, errors = validate_cases(frame, name, known)
    if not errors.empty:
        raise PlanError(
            f"plan.business_case_file: {name} is refused\n"
            + ledger.describe_errors(errors, file=name, limit=20)
        )
    for case in rows:
        if case.app_id in cases:
            raise PlanError(
                f"plan: the business case of {case.app_id!r} is given both in portfolio.toml "
                f"([plan.business_case.{case.app_id}]) and in {name}: keep one"
            )
        cases[case.app_id] = case
    return cases


def case_of(cfg: Config, app_id: str) -> BusinessCase | Case | None:
    return business_cases(cfg).get(app_id)


def _window(end: date) -> tuple[date, date]:
    months = full_months(end, PLAN_MONTHS)
    return months[0], months[-1]


def plan_vs_actual(
    books: Books, end: date | None = None, cases: dict[str, Case] | None = None
) -> pd.DataFrame:
    """Per app with a business case: actual annual value, run cost and net against the plan.

    Columns: see :data:`PLAN_COLUMNS`. ``months`` = full months the actual figures rest on (12, or
    fewer since launch; annualised × 12 / months); actual figures are None when it is 0.
    ``*_pct_of_plan`` is None when the plan's figure is 0 or missing.
    """
    end = books._end(end)
    cases = business_cases(books.cfg, set(books.known())) if cases is None else cases
    if not cases:
        return empty_frame(PLAN_COLUMNS)
    first, last = _window(end)
    monthly = books.monthly(end)
    monthly = monthly[(monthly["month"] >= pd.Timestamp(first)) & (monthly["month"] <= pd.Timestamp(last))]
    inventory = books.inventory().set_index("app_id")
    launched = pd.to_datetime(inventory["launched"], errors="coerce")
    rows = []
    for app_id, case in sorted(cases.items()):
        start = first
        launch = launched.get(app_id)
        if launch is not None and not pd.isna(launch):
            launch_month = month_start(launch.date())
            # a launch month is partial: count from the first full month after it
            if launch.date() != launch_month:
                launch_month = month_start(
                    date(launch_month.year + (launch_month.month == 12), launch_month.month % 12 + 1, 1)
                )
            start = max(start, launch_month)
        mine = monthly[(monthly["app_id"] == app_id) & (monthly["month"] >= pd.Timestamp(start))]
        n = 0 if start > last else (last.year - start.year) * 12 + last.month - start.month + 1
        actual_value = actual_cost = None
        if n > 0:
            factor = Decimal(PLAN_MONTHS) / Decimal(n)
            actual_value = Decimal(str(round(float(mine["value"].sum()), 6))) * factor
            actual_cost = Decimal(str(round(float(mine["cost"].sum()), 6))) * factor
        ev, ec = case.expected_annual_value, case.expected_annual_run_cost
        row: dict[str, Any] = {
            "app_id": app_id, "name": inventory["name"].get(app_id, app_id), "approved_by": case.approved_by,
            "approved_on": case.approved_on, "source": case.source, "months": n,
            "expected_annual_value": ev, "actual_annual_value": actual_value,
            "expected_annual_run_cost": ec, "actual_annual_run_cost": actual_cost, "build_cost": case.build_cost,
        }  # fmt: skip
        row["value_variance"] = None if ev is None or actual_value is None else actual_value - ev
        row["value_pct_of_plan"] = None if not ev or actual_value is None else float(actual_value / ev)
        row["run_cost_variance"] = None if ec is None or actual_cost is None else actual_cost - ec
        row["run_cost_pct_of_plan"] = None if not ec or actual_cost is None else float(actual_cost / ec)
        row["expected_annual_net"] = (ev or Decimal(0)) - (ec or Decimal(0))
        row["actual_annual_net"] = (
            None if actual_value is None or actual_cost is None else actual_value - actual_cost
        )
        row["net_variance"] = (
            None
            if row["actual_annual_net"] is None
            else row["actual_annual_net"] - row["expected_annual_net"]
        )
        if row["net_variance"] is None:
            row["status"] = "no full month yet"
        else:
            row["status"] = "ahead of plan" if row["net_variance"] >= 0 else "behind plan"
        rows.append(row)
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


# ----------------------------------------------------------------------------- assumptions, hard and soft value


def _named(books: Books) -> pd.DataFrame:
    """(app_id, month, kind) -> the assumption the counted outcome row names (None when it names none)."""
    o = books.facts.outcomes
    if o.empty or "assumption" not in o.columns:
        return pd.DataFrame(columns=["app_id", "month", "kind", "assumption"])
    o = o[o["assumption"].notna()]
    if o.empty:
        return pd.DataFrame(columns=["app_id", "month", "kind", "assumption"])
    counted = precedence.counted(books.facts.outcomes, precedence.order_of(books.cfg))  # the figure that counts
    counted = counted[counted["assumption"].notna()]
    return pd.DataFrame(
        {"app_id": counted["app_id"].astype(str).to_numpy(), "month": to_ts(counted["month"]).to_numpy(),
         "kind": counted["kind"].to_numpy(dtype=object), "assumption": counted["assumption"].astype(str).to_numpy()}
    )  # fmt: skip


def assumptions(books: Books, start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """Soft (estimate) value by the assumption behind it, over the months ``start`` .. ``end``.

    A row names its assumption in the outcomes ledger (column ``assumption``); a row naming none is
    covered by the first ``[plan.assumptions]`` entry (by name) whose app, kind and months match it.
    One row per assumption with its status as of the last complete day: ``approved``,
    ``unapproved`` (no approver), ``expired`` (expiry day passed) or ``undeclared`` (named by ledger
    rows but not in portfolio.toml: nobody owns or approved it); then one row per app with estimate
    value no assumption covers (assumption ``""``, status ``no assumption``). Columns:
    :data:`ASSUMPTION_COLUMNS`.
    """
    end = books._end(end)
    o = books.outcomes(end)
    if start is not None and not o.empty:
        o = o[o["month"] >= pd.Timestamp(month_start(start))]
    soft = o[o["evidence"] == "estimate"] if not o.empty else o
    if soft.empty:
        return empty_frame(ASSUMPTION_COLUMNS)
    named = _named(books)
    soft = soft.reset_index(drop=True).merge(named, on=["app_id", "month", "kind"], how="left")
    declared = books.cfg.plan.assumptions
    covered = soft["assumption"].notna()
    rows = []
    as_of = books.last_day
    for name in sorted(set(declared) | {str(x) for x in soft["assumption"].dropna()}):
        a = declared.get(name)
        mask = soft["assumption"] == name
        if a is not None:
            match = (soft["app_id"] == a.app) & ~covered
            if a.kind is not None:
                match &= soft["kind"] == a.kind
            if a.first_month is not None:
                match &= soft["month"] >= pd.Timestamp(month_start(a.first_month))
            if a.last_month is not None:
                match &= soft["month"] <= pd.Timestamp(month_start(a.last_month))
            covered |= match
            mask |= match
            status = "expired" if a.expires is not None and a.expires < as_of else ("unapproved" if not a.approver else "approved")
        else:
            status = "undeclared"
        apps = sorted({str(x) for x in soft.loc[mask, "app_id"]})
        rows.append(
            {"assumption": name, "app_id": a.app if a is not None else ", ".join(apps), "kind": (a.kind or "") if a else "",
             "owner": a.owner if a else None, "approver": a.approver if a else None, "expires": a.expires if a else None,
             "status": status, "months": int(soft.loc[mask, "month"].nunique()), "value": float(soft.loc[mask, "value"].sum())}
        )  # fmt: skip
    rest = soft[~covered]
    for app_id, group in rest.groupby("app_id", sort=True):
        if str(app_id) == UNALLOCATED:
            continue
        rows.append(
            {"assumption": "", "app_id": str(app_id), "kind": "", "owner": None, "approver": None, "expires": None,
             "status": "no assumption", "months": int(group["month"].nunique()), "value": float(group["value"].sum())}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=ASSUMPTION_COLUMNS)


def flagged_assumptions(books: Books, start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """The assumptions that are expired or unapproved (what a finance partner must chase)."""
    frame = assumptions(books, start, end)
    return frame[frame["status"].isin(FLAGGED)].reset_index(drop=True)


def hard_soft(frame: pd.DataFrame) -> dict[str, float]:
    """{hard, soft} of a P&L frame (monthly or per app): hard = experiment + observational, soft = estimate."""
    if frame.empty:
        return {"hard": 0.0, "soft": 0.0}
    return {
        "hard": float(frame["value_experiment"].sum() + frame["value_observational"].sum()),
        "soft": float(frame["value_estimate"].sum()),
    }


def dates_of(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    frame = frame.copy()
    frame[col] = as_dates(pd.to_datetime(frame[col], errors="coerce"))
    return frame
