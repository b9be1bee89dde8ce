"""Demo portfolio: 22 synthetic ML apps with two years of cost, usage, uptime, value and tickets.

The embedded demo (``mlportfolio demo``) runs on this connector. It generates a realistic,
deterministic portfolio relative to an as-of date (param ``as_of``, ``YYYY-MM-DD``, default today
UTC; data ends at the last complete day, ``as_of - 1``) from ``random.Random`` seeded by ``seed``
(default 7). ``months`` (default 24) is how many calendar months of history it covers.

What is in it, so every page and every retirement rule has something to show:

* clear winners in five teams (search ranking, card fraud, demand forecast, ...), each with a
  recent keep / invest decision;
* one app per retirement rule that trips it with the default thresholds of
  :class:`portfolio.config.Rules`: a zombie (``legacy-image-tagger``: GPU still reserved, traffic
  moved away), underwater (``email-send-time``), decaying (``promo-uplift``), a maintenance sink
  (``eta-predictor``), unreliable (``kyc-doc-check``), and two orphans (``social-sentiment`` has no
  owner, ``warehouse-slotting`` was never reviewed);
* a retired app (``spam-filter-v1``), a pilot, an app launched inside the window (no data before
  its launch), shared ``_unallocated`` spend, and a bill total per month that reconciles to the cent.

Random draws are keyed by (seed, app, calendar month), so a later sync in the same month restates
nothing that was already there; the shapes (growth, decay, degradation) are anchored on the month
of the last complete day. With ``since`` (incremental sync) only days from ``since`` on are
yielded, together with ``Replace`` markers for exactly that window.
"""

from __future__ import annotations

import calendar
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from pydantic import Field

from connectors.base import ConnectorConfig, Replace, Rows
from connectors.settings import ConnectorParams
from portfolio.records import (
    UNALLOCATED,
    App,
    BillingTotal,
    CostRecord,
    Decision,
    MaintenanceRecord,
    OutcomeRecord,
    UptimeRecord,
    UsageRecord,
)

NAME = "demo"
#: the record types this connector yields (checked by the standard connector suite)
RECORDS: tuple[type, ...] = (App, CostRecord, UsageRecord, UptimeRecord, OutcomeRecord, MaintenanceRecord, BillingTotal, Decision)

DEFAULT_SEED = 7
DEFAULT_MONTHS = 24


class Params(ConnectorParams):
    """Settings of the demo connector."""

    seed: int = Field(DEFAULT_SEED, description="random seed: the same seed gives the same portfolio")
    as_of: date | None = Field(None, description="last day of the generated history (YYYY-MM-DD); default today")
    months: int = Field(DEFAULT_MONTHS, ge=1, le=120, description="months of history to generate (1 to 120)")


CURRENCY = "USD"
SAMPLES_PER_DAY = 1440  # one availability probe a minute
TRACKER = "https://tracker.example.com/browse"

#: ticket project of each team (refs look like "SRCH-81234"); incidents go to "OPS"
PROJECTS = {"search": "SRCH", "risk": "RISK", "supply-chain": "SCM", "growth": "GRO", "support": "SUP"}


@dataclass(frozen=True)
class _Decision:
    decision: str
    days_ago: int  # decided this many days before as_of
    next_review_in: int | None  # days after as_of (negative: in the past)
    by: str
    rationale: str


@dataclass(frozen=True)
class _Spec:
    """One demo app. Money is per month at today's level; ``*_k`` are month offsets (<= 0) from the
    month of the last complete day."""

    app_id: str
    name: str
    team: str
    owner: str | None
    sponsor: str
    value_kind: str
    description: str
    launched_k: int
    launch_day: int = 12
    stage: str = "production"
    slo: float = 0.995
    review_every_days: int = 90
    value: float = 0.0  # gross monthly value (before attribution)
    evidence: str = "observational"
    attribution: float = 1.0
    growth: float = 0.01  # month-over-month growth of usage and value
    shape: str = "steady"  # steady | decaying | zombie
    requests: float = 10_000.0  # per day
    predictions_per_request: float = 1.0
    weekend: float = 0.6  # weekend traffic as a share of a weekday's
    infra: dict[str, float] = field(default_factory=dict)
    vendor: dict[str, float] = field(default_factory=dict)
    other: dict[str, float] = field(default_factory=dict)
    klo_hours: float = 10.0
    incidents: float = 0.3  # per month
    ttr_hours: float = 1.5  # mean time to restore
    improvement_hours: float = 10.0
    availability: float = 0.9994  # typical daily availability
    degraded_k: int | None = None  # from this month on, availability is ``degraded``
    degraded: float = 0.98
    retired_k: int | None = None  # no data from this month on
    decisions: tuple[_Decision, ...] = ()


def _keep(days_ago: int, next_in: int, by: str, why: str, decision: str = "keep") -> tuple[_Decision, ...]:
    return (_Decision(decision, days_ago, next_in, by, why),)


def _reviewed_late(by: str, why: str) -> tuple[_Decision, ...]:
    """A review whose next date passed less than the grace period ago: neither snoozed nor overdue."""
    return (_Decision("review", 100, -12, by, why),)


APPS: tuple[_Spec, ...] = (
    # ---------------------------------------------------------------- search
    _Spec(
        "search-ranking",
        "Search ranking",
        "search",
        "maria.lopez@example.com",
        "VP Commerce",
        "revenue_capture",
        "Learning-to-rank model ordering product search results.",
        launched_k=-40,
        value=185_000,
        evidence="experiment",
        attribution=0.8,
        requests=420_000,
        predictions_per_request=48,
        weekend=0.8,
        infra={"compute": 9_000, "gpu": 14_000, "storage": 1_200, "network": 2_500},
        klo_hours=40,
        incidents=0.4,
        improvement_hours=60,
        decisions=(
            _Decision(
                "invest",
                400,
                -310,
                "director.ml@example.com",
                "Holdout shows +2.1% GMV; fund the GPU re-ranker.",
            ),
            _Decision(
                "keep", 24, 66, "director.ml@example.com", "Quarterly review: A/B holdout still +1.8% GMV."
            ),
        ),
    ),
    _Spec(
        "homepage-recs",
        "Homepage recommendations",
        "search",
        "arjun.mehta@example.com",
        "VP Commerce",
        "revenue_capture",
        "Two-tower recommender for the homepage carousels.",
        launched_k=-30,
        value=95_000,
        evidence="experiment",
        attribution=0.7,
        requests=650_000,
        predictions_per_request=24,
        weekend=0.9,
        infra={"compute": 6_000, "gpu": 8_000, "storage": 2_000, "network": 1_500},
        klo_hours=30,
        incidents=0.3,
        improvement_hours=40,
        decisions=_keep(31, 59, "director.ml@example.com", "Carousel CTR lift holds; keep."),
    ),
    _Spec(
        "query-autocomplete",
        "Query autocomplete",
        "search",
        "maria.lopez@example.com",
        "VP Commerce",
        "revenue_capture",
        "Prefix completion model for the search box.",
        launched_k=-28,
        value=28_000,
        evidence="observational",
        attribution=0.5,
        requests=1_200_000,
        predictions_per_request=8,
        weekend=0.85,
        infra={"compute": 3_500, "storage": 300, "network": 600},
        klo_hours=12,
        incidents=0.2,
        improvement_hours=8,
        slo=0.99,
        decisions=_keep(45, 45, "director.ml@example.com", "Cheap to run, measurable search-exit reduction."),
    ),
    _Spec(
        "legacy-image-tagger",
        "Legacy image tagger",
        "search",
        "tom.becker@example.com",
        "VP Commerce",
        "cost_avoidance",
        "CNN tagging catalogue images; traffic moved to the new vision pipeline.",
        launched_k=-34,
        shape="zombie",
        value=12_000,
        evidence="observational",
        requests=60_000,
        predictions_per_request=5,
        weekend=0.7,
        infra={"compute": 900, "gpu": 3_200, "storage": 700},
        klo_hours=3,
        incidents=0.1,
        improvement_hours=0,
        review_every_days=180,
        decisions=_reviewed_late(
            "tom.becker@example.com", "Check whether anything still calls the old tagger."
        ),
    ),
    # ---------------------------------------------------------------- risk
    _Spec(
        "card-fraud",
        "Card fraud detector",
        "risk",
        "sofia.rossi@example.com",
        "Chief Risk Officer",
        "cost_avoidance",
        "Gradient-boosted scorer blocking fraudulent card payments in real time.",
        launched_k=-44,
        value=240_000,
        evidence="experiment",
        requests=180_000,
        weekend=0.9,
        infra={"compute": 7_000, "gpu": 4_000, "storage": 1_500, "network": 800},
        other={"labeling": 2_500},
        klo_hours=45,
        incidents=0.5,
        ttr_hours=1.0,
        improvement_hours=50,
        decisions=_keep(18, 72, "cro.office@example.com", "Chargebacks avoided measured on a 2% holdout."),
    ),
    _Spec(
        "credit-risk-score",
        "Credit risk score",
        "risk",
        "daniel.kim@example.com",
        "Chief Risk Officer",
        "both",
        "Probability-of-default model for instalment loans: approvals up, defaults down.",
        launched_k=-26,
        value=130_000,
        evidence="experiment",
        attribution=0.9,
        requests=25_000,
        weekend=0.5,
        infra={"compute": 2_500, "storage": 400, "network": 200},
        vendor={"bureau-data": 6_000},
        klo_hours=25,
        incidents=0.2,
        improvement_hours=30,
        decisions=_keep(52, 38, "cro.office@example.com", "Champion/challenger confirms lift; keep."),
    ),
    _Spec(
        "aml-triage",
        "AML alert triage",
        "risk",
        "sofia.rossi@example.com",
        "Head of Compliance",
        "cost_avoidance",
        "Ranks anti-money-laundering alerts so analysts close false positives faster.",
        launched_k=-14,
        launch_day=3,
        value=55_000,
        evidence="observational",
        requests=9_000,
        weekend=0.3,
        infra={"compute": 1_800, "storage": 300},
        vendor={"llm-api": 1_200},
        klo_hours=20,
        incidents=0.2,
        improvement_hours=20,
        decisions=_keep(40, 50, "compliance.lead@example.com", "Analyst hours per alert down 35%."),
    ),
    _Spec(
        "kyc-doc-check",
        "KYC document check",
        "risk",
        "daniel.kim@example.com",
        "Head of Compliance",
        "cost_avoidance",
        "Checks identity documents at onboarding; depends on an external OCR API.",
        launched_k=-22,
        value=45_000,
        evidence="experiment",
        requests=14_000,
        weekend=0.6,
        infra={"compute": 1_600, "storage": 250},
        vendor={"ocr-api": 2_400},
        klo_hours=15,
        incidents=0.3,
        improvement_hours=10,
        degraded_k=-4,
        degraded=0.982,
        decisions=_reviewed_late("daniel.kim@example.com", "Re-check after the OCR vendor migration."),
    ),
    # ---------------------------------------------------------------- supply-chain
    _Spec(
        "demand-forecast",
        "Demand forecast",
        "supply-chain",
        "li.wei@example.com",
        "VP Operations",
        "cost_avoidance",
        "Daily SKU x store demand forecast driving replenishment orders.",
        launched_k=-48,
        value=150_000,
        evidence="observational",
        attribution=0.75,
        requests=40_000,
        predictions_per_request=120,
        weekend=0.4,
        infra={"compute": 5_000, "storage": 1_400, "network": 300},
        klo_hours=35,
        incidents=0.3,
        improvement_hours=40,
        decisions=_keep(12, 78, "vp.ops@example.com", "Stock-outs and write-offs both down year on year."),
    ),
    _Spec(
        "route-optimizer",
        "Delivery route optimizer",
        "supply-chain",
        "omar.haddad@example.com",
        "VP Operations",
        "cost_avoidance",
        "Vehicle routing with learned travel times; fewer kilometres per parcel.",
        launched_k=-20,
        value=75_000,
        evidence="experiment",
        requests=15_000,
        predictions_per_request=30,
        weekend=0.7,
        infra={"compute": 3_200, "storage": 200, "network": 150},
        vendor={"maps-api": 2_200},
        klo_hours=20,
        incidents=0.2,
        improvement_hours=25,
        decisions=_keep(
            60, 30, "vp.ops@example.com", "Fuel savings confirmed on the depot split test.", "invest"
        ),
    ),
    _Spec(
        "inventory-anomaly",
        "Inventory anomaly detector",
        "supply-chain",
        "omar.haddad@example.com",
        "VP Operations",
        "cost_avoidance",
        "Flags shrinkage and mis-scans in warehouse stock counts.",
        launched_k=-36,
        value=60_000,
        evidence="observational",
        attribution=0.8,
        requests=30_000,
        weekend=0.5,
        infra={"compute": 1_500, "storage": 500, "network": 100},
        klo_hours=14,
        incidents=0.2,
        improvement_hours=10,
        decisions=_keep(70, 20, "vp.ops@example.com", "Shrinkage losses avoided well above cost."),
    ),
    _Spec(
        "eta-predictor",
        "Delivery ETA predictor",
        "supply-chain",
        "li.wei@example.com",
        "VP Operations",
        "cost_avoidance",
        "Predicts delivery ETAs shown to customers; brittle feature pipeline.",
        launched_k=-25,
        value=40_000,
        evidence="observational",
        attribution=0.75,
        requests=90_000,
        weekend=0.8,
        slo=0.99,
        infra={"compute": 2_500, "storage": 300},
        klo_hours=120,
        incidents=3.0,
        ttr_hours=3.5,
        improvement_hours=30,
        decisions=_reviewed_late("li.wei@example.com", "Decide whether to harden the feature pipeline."),
    ),
    _Spec(
        "warehouse-slotting",
        "Warehouse slotting model",
        "supply-chain",
        "li.wei@example.com",
        "VP Operations",
        "cost_avoidance",
        "Suggests where to store fast-moving SKUs; set up once, never reviewed since.",
        launched_k=-20,
        value=22_000,
        evidence="observational",
        requests=2_500,
        weekend=0.3,
        infra={"compute": 900, "storage": 300},
        review_every_days=180,
        klo_hours=6,
        incidents=0.1,
        improvement_hours=0,
    ),
    # ---------------------------------------------------------------- growth
    _Spec(
        "churn-predictor",
        "Churn predictor",
        "growth",
        "jane.doe@example.com",
        "VP Customer Success",
        "revenue_capture",
        "Scores subscribers by churn risk for retention offers.",
        launched_k=-32,
        value=48_000,
        evidence="experiment",
        attribution=0.6,
        requests=12_000,
        weekend=0.4,
        infra={"compute": 1_200, "storage": 250},
        klo_hours=10,
        incidents=0.1,
        improvement_hours=15,
        decisions=_keep(35, 55, "vp.cs@example.com", "Retention-offer holdout: +0.9pt retention."),
    ),
    _Spec(
        "lead-scoring",
        "Lead scoring",
        "growth",
        "jane.doe@example.com",
        "VP Sales",
        "revenue_capture",
        "Ranks inbound B2B leads for the sales team.",
        launched_k=-29,
        value=36_000,
        evidence="observational",
        attribution=0.5,
        requests=6_000,
        weekend=0.2,
        infra={"compute": 800, "storage": 150},
        vendor={"enrichment-api": 900},
        klo_hours=8,
        incidents=0.1,
        improvement_hours=10,
        decisions=_keep(80, 10, "vp.sales@example.com", "Conversion of top-decile leads 3x baseline."),
    ),
    _Spec(
        "price-elasticity",
        "Price elasticity pilot",
        "growth",
        "nina.petrova@example.com",
        "CFO",
        "revenue_capture",
        "Pilot: elasticity-aware markdowns in two categories.",
        launched_k=-4,
        launch_day=6,
        stage="pilot",
        value=30_000,
        evidence="estimate",
        attribution=0.5,
        growth=0.03,
        requests=3_000,
        weekend=0.3,
        infra={"compute": 1_100, "storage": 100},
        other={"labeling": 400},
        klo_hours=4,
        incidents=0.1,
        improvement_hours=30,
        decisions=_keep(20, 45, "cfo.office@example.com", "Extend the pilot to four categories.", "invest"),
    ),
    _Spec(
        "email-send-time",
        "Email send-time optimizer",
        "growth",
        "nina.petrova@example.com",
        "CMO",
        "revenue_capture",
        "Picks the send hour per subscriber; the ESP now offers the same feature.",
        launched_k=-27,
        value=5_000,
        evidence="estimate",
        attribution=0.5,
        growth=0.0,
        requests=45_000,
        weekend=0.9,
        infra={"compute": 1_800, "storage": 200},
        vendor={"esp-api": 1_500},
        klo_hours=8,
        incidents=0.1,
        improvement_hours=0,
        decisions=_reviewed_late(
            "nina.petrova@example.com", "Compare against the ESP's built-in send-time feature."
        ),
    ),
    _Spec(
        "promo-uplift",
        "Promotion uplift model",
        "growth",
        "arjun.mehta@example.com",
        "CMO",
        "revenue_capture",
        "Targets promotions by predicted uplift; promotions budget moved to loyalty.",
        launched_k=-30,
        shape="decaying",
        value=90_000,
        evidence="experiment",
        attribution=0.6,
        requests=20_000,
        weekend=0.8,
        infra={"compute": 1_500, "storage": 200},
        klo_hours=10,
        incidents=0.1,
        improvement_hours=0,
        decisions=_reviewed_late("arjun.mehta@example.com", "Watch uplift after the promotions budget cut."),
    ),
    _Spec(
        "social-sentiment",
        "Social sentiment monitor",
        "growth",
        None,
        "CMO",
        "cost_avoidance",
        "Brand-risk alerts from social media; its owner left the company.",
        launched_k=-23,
        value=9_000,
        evidence="estimate",
        requests=4_000,
        weekend=0.9,
        infra={"compute": 900},
        vendor={"social-data-api": 1_200},
        klo_hours=4,
        incidents=0.1,
        improvement_hours=0,
        decisions=_reviewed_late("cmo.office@example.com", "Owner left: find a new owner or retire."),
    ),
    # ---------------------------------------------------------------- support
    _Spec(
        "support-copilot",
        "Support reply copilot",
        "support",
        "grace.okafor@example.com",
        "VP Customer Support",
        "cost_avoidance",
        "Drafts replies to support tickets with an LLM; agents edit and send.",
        launched_k=-11,
        launch_day=20,
        value=70_000,
        evidence="observational",
        attribution=0.8,
        growth=0.04,
        requests=22_000,
        weekend=0.5,
        slo=0.99,
        infra={"compute": 900, "storage": 200},
        vendor={"llm-api": 9_500},
        klo_hours=25,
        incidents=0.3,
        improvement_hours=45,
        decisions=_keep(28, 62, "vp.support@example.com", "Handle time down 22%; expand to chat.", "invest"),
    ),
    _Spec(
        "ticket-router",
        "Ticket router",
        "support",
        "grace.okafor@example.com",
        "VP Customer Support",
        "cost_avoidance",
        "Routes incoming tickets to the right queue; replaced spam-filter-v1.",
        launched_k=-9,
        launch_day=2,
        value=32_000,
        evidence="experiment",
        requests=8_000,
        weekend=0.5,
        infra={"compute": 700, "storage": 100},
        klo_hours=8,
        incidents=0.1,
        improvement_hours=6,
        decisions=_keep(15, 75, "vp.support@example.com", "Mis-routes halved on the queue split test."),
    ),
    _Spec(
        "spam-filter-v1",
        "Spam filter v1",
        "support",
        "grace.okafor@example.com",
        "VP Customer Support",
        "cost_avoidance",
        "Retired: superseded by the ticket router.",
        launched_k=-40,
        stage="retired",
        value=8_000,
        evidence="estimate",
        requests=30_000,
        weekend=0.6,
        infra={"compute": 1_100, "storage": 150},
        klo_hours=10,
        incidents=0.2,
        improvement_hours=0,
        retired_k=-6,
        decisions=(
            _Decision("retire", 190, None, "vp.support@example.com", "Ticket router covers it; retire."),
        ),
    ),
)

#: shared spend no app claims: (category, service, monthly USD)
SHARED = (
    ("infra", "shared-cluster", 6_500.0),
    ("infra", "data-lake-storage", 2_200.0),
    ("other", "cloud-support", 900.0),
)

#: how a service's daily cost follows usage: fixed share + usage share
_COST_FOLLOWS_USAGE = {"compute": 0.5, "gpu": 0.15, "network": 0.8, "storage": 0.0}


# ----------------------------------------------------------------------------- calendar helpers


def _add_months(d: date, n: int) -> date:
    index = d.year * 12 + d.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _cents(x: float) -> Decimal:
    return Decimal(f"{x:.2f}")


def _parse_params(config: ConnectorConfig) -> tuple[int, date, int]:
    p = Params.of(config)  # types and ranges checked by the settings model
    return p.seed, p.as_of or datetime.now(UTC).date(), p.months


# ----------------------------------------------------------------------------- shapes


def _usage_level(app: _Spec, k: int) -> float:
    """Usage (and value) level in month offset ``k`` relative to today's level."""
    level = (1 + app.growth) ** k
    if app.shape == "decaying":
        level = 0.85 ** max(0, k + 9)  # the decline started nine months ago
    elif app.shape == "zombie" and k >= -4:
        level = 0.0  # traffic moved to the new pipeline four months ago
    since_launch = k - app.launched_k
    if 0 <= since_launch < 3:
        level *= (0.35, 0.65, 0.85)[since_launch]  # ramp-up after launch
    return level


def _poisson(rng: random.Random, mean: float) -> int:
    limit, n, p = math.exp(-mean), 0, rng.random()
    while p > limit and n < 50:
        n += 1
        p *= rng.random()
    return n


# ----------------------------------------------------------------------------- generation


@dataclass
class _Frames:
    costs: list[tuple[Any, ...]] = field(default_factory=list)
    usage: list[tuple[Any, ...]] = field(default_factory=list)
    uptime: list[tuple[Any, ...]] = field(default_factory=list)
    maintenance: list[MaintenanceRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)


def _tickets(
    app: _Spec, idx: int, month: date, k: int, first: date, last: date, seed: int
) -> tuple[list[MaintenanceRecord], dict[date, float]]:
    """One app-month of maintenance tickets (between ``first`` and ``last``) and the downtime
    (share of the day) its incidents caused."""
    rng = random.Random(f"{seed}:{app.app_id}:{month:%Y-%m}:tickets")
    ndays = _days_in(month)
    serial = (month.year - 2000) * 12 + month.month  # keeps ticket numbers growing over time
    counter = iter(range(40))
    project = PROJECTS.get(app.team, "ML")
    out: list[MaintenanceRecord] = []
    downtime: dict[date, float] = defaultdict(float)
    ramp = 1.6 if 0 <= k - app.launched_k < 2 else 1.0  # launch months need more care

    def ticket(kind: str, hours: float, title: str, prefix: str, **extra: Any) -> None:
        day = month + timedelta(days=rng.randrange(ndays))
        number = serial * 1000 + idx * 40 + next(counter, 39)
        ref = f"{prefix}-{number}"
        if first <= day <= last:
            out.append(
                MaintenanceRecord(
                    source="",
                    app_id=app.app_id,
                    day=day,
                    ref=ref,
                    hours=round(hours * 4) / 4,
                    kind=kind,
                    url=f"{TRACKER}/{ref}",
                    title=title,
                    **extra,
                )
            )

    incidents_mean = app.incidents
    if app.degraded_k is not None and k >= app.degraded_k:
        incidents_mean = max(incidents_mean, 2.0)
    for _ in range(min(10, _poisson(rng, incidents_mean))):  # at most 10 + 14 + 14 refs < 40 per month
        ttr = max(0.25, rng.expovariate(1 / app.ttr_hours))
        ttr = round(ttr * 4) / 4
        before = len(out)
        ticket(
            "incident",
            ttr * 1.5 + 2.0,
            f"{app.name}: degraded predictions",
            "OPS",
            incidents=1,
            ttr_hours=ttr,
        )
        if len(out) > before:
            downtime[out[-1].day] += min(1.0, ttr / 24 * 0.35)  # partial outage: a share of traffic fails
    for hours, kind, title in (
        (app.klo_hours * ramp, "klo", "retrain / dependency upgrade / data fix"),
        (app.improvement_hours, "improvement", "feature work"),
    ):
        if hours <= 0:
            continue
        n = max(1, min(14, round(hours / 6)))
        for _ in range(n):
            ticket(kind, hours / n * rng.uniform(0.6, 1.4), f"{app.name}: {title}", project)
    return out, downtime


def _generate(
    seed: int, as_of: date, months: int, start: date
) -> tuple[_Frames, list[BillingTotal], list[App], list[Decision]]:
    last = as_of - timedelta(days=1)  # the last complete day
    anchor = _add_months(last, 0)
    window_start = _add_months(anchor, -(months - 1))
    frames = _Frames()
    bills: dict[str, list[Decimal]] = defaultdict(list)

    def add_cost(app_id: str, day: date, category: str, service: str, amount: Decimal) -> None:
        period = f"{day:%Y-%m}"
        bills[period].append(amount)
        if day >= start:
            frames.costs.append((app_id, day, category, service, amount, CURRENCY, period))

    apps: list[App] = []
    decisions: list[Decision] = []
    for idx, app in enumerate(APPS):
        launched = _add_months(anchor, app.launched_k) + timedelta(days=app.launch_day - 1)
        # the last model version: a few days before this month (before retirement, if retired)
        last_model = _add_months(anchor, 0 if app.retired_k is None else app.retired_k - 1) - timedelta(
            days=3 + idx % 9
        )
        apps.append(
            App(
                app_id=app.app_id,
                name=app.name,
                team=app.team,
                owner=app.owner,
                sponsor=app.sponsor,
                stage=app.stage,
                value_kind=app.value_kind,
                launched=launched,
                slo_availability=app.slo,
                review_every_days=app.review_every_days,
                cost_tags=app.app_id,
                description=app.description,
                last_model_version_at=datetime.combine(last_model, time(9, 30), tzinfo=UTC),
                source="",
            )
        )
        for n, d in enumerate(app.decisions, start=1):
            decisions.append(
                Decision(
                    id=f"demo-{app.app_id}-{n}",
                    app_id=app.app_id,
                    decided_at=datetime.combine(as_of - timedelta(days=d.days_ago), time(10, 0), tzinfo=UTC),
                    decision=d.decision,
                    decided_by=d.by,
                    rationale=d.rationale,
                    next_review=None
                    if d.next_review_in is None
                    else as_of + timedelta(days=d.next_review_in),
                )
            )
        for m in range(months):
            month = _add_months(window_start, m)
            k = m - (months - 1)
            if app.retired_k is not None and k >= app.retired_k:
                break
            first = max(month, launched)
            month_last = min(month + timedelta(days=_days_in(month) - 1), last)
            if first > month_last:
                continue
            _one_month(frames, app, idx, month, k, first, month_last, start, seed, add_cost)
    _shared_costs(seed, window_start, last, add_cost)
    totals = [
        BillingTotal(
            source="",
            billing_period=period,
            currency=CURRENCY,
            total=sum(amounts, Decimal(0)),
            lines=len(amounts),
            detail="demo bill: every line of the synthetic cloud and vendor invoices",
        )
        for period, amounts in sorted(bills.items())
        if period >= f"{start:%Y-%m}"
    ]
    return frames, totals, apps, decisions


def _one_month(
    frames: _Frames,
    app: _Spec,
    idx: int,
    month: date,
    k: int,
    first: date,
    last: date,
    start: date,
    seed: int,
    add_cost: Any,
) -> None:
    rng = random.Random(f"{seed}:{app.app_id}:{month:%Y-%m}:daily")
    tickets, downtime = _tickets(app, idx, month, k, first, last, seed)
    frames.maintenance.extend(t for t in tickets if t.day >= start)
    level = _usage_level(app, k)
    avail = app.availability if app.degraded_k is None or k < app.degraded_k else app.degraded
    services = (
        [("infra", s, v) for s, v in app.infra.items()]
        + [("vendor", s, v) for s, v in app.vendor.items()]
        + [("other", s, v) for s, v in app.other.items()]
    )
    storage_level = 1.015**k
    day = month
    while day <= last:
        # a fixed number of draws per day keeps every day's values independent of the window
        u_req, u_pred, u_up, *u_cost = (rng.random() for _ in range(3 + len(services)))
        if day >= first:
            weekday = 1.0 if day.weekday() < 5 else app.weekend
            if app.shape == "zombie" and k >= -4:
                requests = float(int(u_req * 7))  # a forgotten cron job and a health check
            else:
                requests = float(round(app.requests * level * weekday * (0.9 + 0.2 * u_req)))
            predictions = float(round(requests * app.predictions_per_request * (0.95 + 0.1 * u_pred)))
            down = (1 - avail) * (0.3 + 1.4 * u_up) + downtime.get(day, 0.0)
            if day >= start:
                frames.usage.append((app.app_id, day, "requests", requests))
                frames.usage.append((app.app_id, day, "predictions", predictions))
                frames.uptime.append((app.app_id, day, round(max(0.0, 1.0 - down), 6), SAMPLES_PER_DAY))
            usage_rel = min(level, 1.5)
            for (category, service, monthly), u in zip(services, u_cost, strict=True):
                if category == "vendor":
                    follows = 1.0  # priced per call
                elif category == "other":
                    follows = 0.0
                else:
                    follows = _COST_FOLLOWS_USAGE.get(service, 0.5)
                scale = storage_level if service == "storage" else (1 - follows) + follows * usage_rel
                amount = monthly * 12 / 365 * scale * (0.92 + 0.16 * u)
                if amount >= 0.005:
                    add_cost(app.app_id, day, category, service, _cents(amount))
        day += timedelta(days=1)
    _outcomes(frames, app, month, k, first, last, start, seed)


def _outcomes(
    frames: _Frames, app: _Spec, month: date, k: int, first: date, last: date, start: date, seed: int
) -> None:
    if month < _add_months(start, 0) or app.value <= 0:
        return
    level = _usage_level(app, k)  # value follows usage
    if level <= 0:
        return
    rng = random.Random(f"{seed}:{app.app_id}:{month:%Y-%m}:value")
    ndays = _days_in(month)
    covered = (last - first).days + 1
    share = covered / ndays  # launch month and the current month: value of the days covered
    evidence = "estimate" if k - app.launched_k < 3 else app.evidence
    spread = {"experiment": (0.92, 1.08), "observational": (0.8, 1.2), "estimate": (0.5, 1.3)}[evidence]
    kinds = (
        [("revenue_capture", 0.6), ("cost_avoidance", 0.4)]
        if app.value_kind == "both"
        else [(app.value_kind, 1.0)]
    )
    note = {
        "experiment": "A/B holdout readout",
        "observational": "before/after comparison against the pre-launch baseline",
        "estimate": "business-case estimate, not yet measured",
    }[evidence]
    if first > month:
        note += f"; from launch on {first.isoformat()}"
    if last.day < ndays:
        note += f"; month to date ({last.day} of {ndays} days)"
    for kind, part in kinds:
        amount = app.value * part * level * share * (0.93 + 0.14 * rng.random())
        frames.outcomes.append(
            OutcomeRecord(
                source="",
                app_id=app.app_id,
                month=month,
                kind=kind,
                amount=_cents(amount),
                currency=CURRENCY,
                attribution=app.attribution,
                evidence=evidence,
                low=_cents(amount * spread[0]),
                high=_cents(amount * spread[1]),
                note=note,
            )
        )


def _shared_costs(seed: int, window_start: date, last: date, add_cost: Any) -> None:
    month = window_start
    while month <= last:
        rng = random.Random(f"{seed}:{UNALLOCATED}:{month:%Y-%m}:daily")
        day = month
        end = min(_add_months(month, 1) - timedelta(days=1), last)
        while day <= end:
            for category, service, monthly in SHARED:
                add_cost(
                    UNALLOCATED,
                    day,
                    category,
                    service,
                    _cents(monthly * 12 / 365 * (0.9 + 0.2 * rng.random())),
                )
            day += timedelta(days=1)
        month = _add_months(month, 1)


# ----------------------------------------------------------------------------- the connector


def pull(config: ConnectorConfig, since: datetime | None) -> Iterator[Any]:
    """Yield the demo portfolio: apps, decisions, and the facts from ``since`` (or the whole window)."""
    seed, as_of, months = _parse_params(config)
    last = as_of - timedelta(days=1)
    window_start = _add_months(last, -(months - 1))
    start = window_start if since is None else min(max(window_start, since.date()), last)
    frames, totals, apps, decisions = _generate(seed, as_of, months, start)
    yield from apps
    yield from decisions
    yield Rows(
        CostRecord,
        pd.DataFrame(
            frames.costs,
            columns=["app_id", "day", "category", "service", "amount", "currency", "billing_period"],
        ),
    )
    yield Rows(UsageRecord, pd.DataFrame(frames.usage, columns=["app_id", "day", "metric", "value"]))
    yield Rows(
        UptimeRecord, pd.DataFrame(frames.uptime, columns=["app_id", "day", "availability", "samples"])
    )
    yield from frames.maintenance
    yield from frames.outcomes
    yield from totals
    for table in (CostRecord, UsageRecord, UptimeRecord, MaintenanceRecord):
        yield Replace(table, start, last)
    yield Replace(OutcomeRecord, _add_months(start, 0), _add_months(last, 0), field="month")
