"""The demo generator: cost, usage, uptime, value and tickets per app and day from the app specs."""

from __future__ import annotations

import calendar
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from connectors.demo.apps import (
    _COST_FOLLOWS_USAGE,
    APPS,
    CURRENCY,
    PROJECTS,
    PROPOSALS,
    SAMPLES_PER_DAY,
    SHARED,
    TEAM_RATES,
    TRACKER,
    _Llm,
    _Spec,
)
from portfolio.records import (
    UNALLOCATED,
    App,
    BillingTotal,
    Decision,
    LifecycleEvent,
    MaintenanceRecord,
    OutcomeRecord,
)


def _add_months(d: date, n: int) -> date:
    index = d.year * 12 + d.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _cents(x: float) -> Decimal:
    return Decimal(f"{x:.2f}")


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


#: suffixes of the derived teams: each of the five demo teams gets regional siblings (20 teams in all)
REGIONS = ("emea", "apac", "latam")
#: name suffixes of derived apps; about a quarter of the derived apps keep their spec's display name
#: as is, so a large demo has apps that share a display name (keyed apart by app id)
_VARIANT_NAMES = ("EU", "US", "APAC", "v2", "lite", "B2B", "mobile", "batch", "realtime", "LATAM")


def _scaled(value: dict[str, float], factor: float) -> dict[str, float]:
    return {k: v * factor for k, v in value.items()}


def portfolio_specs(n: int | None, seed: int) -> list[_Spec]:
    """The specs of an ``n``-app demo portfolio (``None``: the specs as written, today's demo).

    The first ``len(APPS)`` apps are the written specs themselves; each further app is a variant of
    spec ``i % len(APPS)``: its own app id, a team among 20 (the five teams and their regional
    siblings), its value and costs scaled together by one factor with a little jitter each (so an
    underwater app stays underwater and a winner stays a winner), its traffic, launch month and
    incident rate varied. Shapes, retirements, degradations and decisions follow the spec, so every
    retirement and health rule trips in every cycle of ``len(APPS)`` apps. Deterministic by ``seed``.
    Fewer than ``len(APPS)`` apps: the first ``n`` specs.
    """
    if n is None or n == len(APPS):
        return list(APPS)
    if n < len(APPS):
        return list(APPS[:n])
    out = list(APPS)
    used = {a.app_id for a in APPS}
    for i in range(len(APPS), n):
        base = APPS[i % len(APPS)]
        cycle = i // len(APPS)
        rng = random.Random(f"{seed}:variant:{i}")
        app_id = f"{base.app_id}-{cycle + 1}"
        while app_id in used:  # pragma: no cover - spec ids never end in a cycle number today
            app_id += "x"
        used.add(app_id)
        region = cycle % (len(REGIONS) + 1)
        team = base.team if region == 0 else f"{base.team}-{REGIONS[region - 1]}"
        name = base.name if rng.random() < 0.25 else f"{base.name} ({rng.choice(_VARIANT_NAMES)} {cycle + 1})"
        size = rng.choice((0.3, 0.5, 0.8, 1.0, 1.0, 1.3, 1.8, 2.5))  # apps come in different sizes
        jitter = 0.9 + 0.2 * rng.random()
        out.append(
            replace(
                base,
                app_id=app_id,
                name=name,
                team=team,
                owner=None if base.owner is None else base.owner.replace("@", f"+{cycle + 1}@"),
                value=base.value * size * jitter,
                infra=_scaled(base.infra, size),
                vendor=_scaled(base.vendor, size * (0.9 + 0.2 * rng.random())),
                other=_scaled(base.other, size),
                requests=base.requests * size * (0.8 + 0.4 * rng.random()),
                klo_hours=base.klo_hours * (0.7 + 0.6 * rng.random()),
                improvement_hours=base.improvement_hours * (0.5 + rng.random()),
                incidents=base.incidents * (0.8 + 0.4 * rng.random()),
                growth=base.growth + rng.uniform(-0.01, 0.01) if base.shape == "steady" else base.growth,
                launched_k=base.launched_k - rng.randrange(0, 7) if base.launched_k < -12 else base.launched_k,
                launch_day=1 + rng.randrange(28),
            )
        )
    return out


def _poisson(rng: random.Random, mean: float) -> int:
    limit, n, p = math.exp(-mean), 0, rng.random()
    while p > limit and n < 50:
        n += 1
        p *= rng.random()
    return n


@dataclass
class _Frames:
    costs: list[tuple[Any, ...]] = field(default_factory=list)
    usage: list[tuple[Any, ...]] = field(default_factory=list)
    uptime: list[tuple[Any, ...]] = field(default_factory=list)
    maintenance: list[MaintenanceRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    #: the LLM apps' model cost (billed, and the gateway's estimates) and tokens, per model
    model_costs: list[tuple[Any, ...]] = field(default_factory=list)
    model_usage: list[tuple[Any, ...]] = field(default_factory=list)


def _tickets(
    app: _Spec, idx: int, month: date, k: int, first: date, last: date, seed: int
) -> tuple[list[MaintenanceRecord], dict[date, float]]:
    """One app-month of maintenance tickets (between ``first`` and ``last``) and the downtime
    (share of the day) its incidents caused."""
    rng = random.Random(f"{seed}:{app.app_id}:{month:%Y-%m}:tickets")
    ndays = _days_in(month)
    serial = (month.year - 2000) * 12 + month.month  # keeps ticket numbers growing over time
    counter = iter(range(40))
    project = PROJECTS.get(app.team) or PROJECTS.get(app.team.rsplit("-", 1)[0], "ML")  # regional teams too
    out: list[MaintenanceRecord] = []
    downtime: dict[date, float] = defaultdict(float)
    ramp = 1.6 if 0 <= k - app.launched_k < 2 else 1.0  # launch months need more care

    def ticket(kind: str, hours: float, title: str, prefix: str, **extra: Any) -> None:
        day = month + timedelta(days=rng.randrange(ndays))
        if idx < len(APPS):
            number = serial * 1000 + idx * 40 + next(counter, 39)
        else:  # derived apps of a large demo: refs of their own (idx * 40 would reach the next month's)
            number = serial * 10_000_000 + idx * 40 + next(counter, 39)
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
    seed: int, as_of: date, months: int, start: date, n_apps: int | None = None
) -> tuple[_Frames, list[BillingTotal], list[App], list[Decision]]:
    last = as_of - timedelta(days=1)  # the last complete day
    anchor = _add_months(last, 0)
    window_start = _add_months(anchor, -(months - 1))
    frames = _Frames()
    bills: dict[str, list[Decimal]] = defaultdict(list)

    def add_cost(app_id: str, day: date, category: str, service: str, amount: Decimal, model: str = "") -> None:
        period = f"{day:%Y-%m}"
        bills[period].append(amount)
        if day >= start:
            if model:
                frames.model_costs.append((app_id, day, category, service, amount, CURRENCY, period, model, False))
            else:
                frames.costs.append((app_id, day, category, service, amount, CURRENCY, period))

    apps: list[App] = []
    decisions: list[Decision] = []
    for idx, app in enumerate(portfolio_specs(n_apps, seed)):
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
                retired_on=None if app.retired_k is None else _add_months(anchor, app.retired_k),
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
                _leftover(app, month, last, seed, add_cost)
                continue
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


def _money(x: float) -> Decimal:
    return Decimal(f"{x:.2f}")


def lifecycle(as_of: date, specs: list[_Spec] | None = None) -> list[LifecycleEvent]:
    """The demo's lifecycle trail (stable ids): each retirement carried out (proposal, approval, the
    "retiring" stage, the "retired" stage on the day it stopped) and each proposal still waiting.

    A proposal freezes a projection as :func:`portfolio.lifecycle.project` would have made it from the
    spec's run-rate then: infra + vendor + other + (KLO + improvement hours) x the team's rate, a year.
    ``specs`` (default: the written ones) are the portfolio's apps: a variant of a larger demo
    (``<spec id>-<cycle>``, :func:`portfolio_specs`) gets its spec's trail with its own figures, and an
    app the portfolio does not have gets none.
    """
    anchor = _add_months(as_of - timedelta(days=1), 0)
    by_spec = {p.app_id: p for p in PROPOSALS}
    pairs = []
    for spec in APPS if specs is None else specs:
        spec_id, _, cycle = spec.app_id.rpartition("-")
        found = by_spec.get(spec.app_id) or (by_spec.get(spec_id) if cycle.isdigit() else None)
        if found is not None:
            pairs.append((found, spec))
    out: list[LifecycleEvent] = []
    for p, app in pairs:
        if p.approved_by is not None and app.retired_k is not None:
            planned = _add_months(anchor, app.retired_k)
            made = planned - timedelta(days=45)
            level = _usage_level(app, app.retired_k - 1)
        else:
            planned = as_of + timedelta(days=p.planned_in)
            made = as_of - timedelta(days=p.days_ago)
            level = _usage_level(app, 0)
        monthly_cost = sum(app.infra.values()) + sum(app.vendor.values()) + sum(app.other.values())
        hours = app.klo_hours + app.improvement_hours
        savings = _money((monthly_cost + hours * TEAM_RATES.get(app.team, 100.0)) * 12)
        at_risk = _money(app.value * app.attribution * level * 12)
        base: dict[str, Any] = {"app_id": app.app_id, "currency": CURRENCY}
        pid = f"demo-{app.app_id}-proposal"
        out.append(LifecycleEvent(
            id=pid, kind="proposal", at=datetime.combine(made, time(9, 0), tzinfo=UTC), actor=p.by, action=p.action,
            planned=planned, rationale=p.rationale, evidence=p.evidence, projected_annual_savings=savings,
            value_at_risk=at_risk, net_effect=savings - at_risk, freed_hours_per_year=hours * 12, **base,
        ))  # fmt: skip
        if p.approved_by is None:
            continue
        approved = datetime.combine(made + timedelta(days=5), time(11, 0), tzinfo=UTC)
        out.append(LifecycleEvent(id=f"demo-{app.app_id}-approval", kind="approval", at=approved, actor=p.approved_by,
                                  proposal_id=pid, rationale=p.comment, **base))  # fmt: skip
        out.append(LifecycleEvent(id=f"demo-{app.app_id}-retiring", kind="stage", at=approved, actor=p.approved_by,
                                  proposal_id=pid, stage="retiring", effective=approved.date(), planned=planned,
                                  rationale=p.rationale, evidence=p.evidence, **base))  # fmt: skip
        out.append(LifecycleEvent(id=f"demo-{app.app_id}-retired", kind="stage",
                                  at=datetime.combine(planned, time(16, 0), tzinfo=UTC), actor=p.by, stage="retired",
                                  effective=planned, rationale="Traffic switched off and the service stopped.", **base))  # fmt: skip
    return out


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
                    llm = next((m for m in app.llm if m.service == service), None)
                    add_cost(app.app_id, day, category, service, _cents(amount), llm.model if llm else "")
                    if llm is not None and day >= start:
                        _llm_day(frames, app.app_id, llm, day, requests, _cents(amount), seed)
        day += timedelta(days=1)
    _outcomes(frames, app, month, k, first, last, start, seed)


def _llm_day(frames: _Frames, app_id: str, llm: _Llm, day: date, requests: float, cost: Decimal, seed: int) -> None:
    """One day of one of an LLM app's models: tokens and calls and, behind a gateway, the gateway's
    estimate of the cost it also billed (own draws, so the other apps' draws stay put)."""
    rng = random.Random(f"{seed}:{app_id}:{llm.model}:{day.isoformat()}:llm")
    calls = float(round(requests * llm.calls_per_request * (0.97 + 0.06 * rng.random())))
    for metric, per_call in (
        ("input_tokens", llm.input_tokens),
        ("cached_input_tokens", llm.cached_input_tokens),
        ("output_tokens", llm.output_tokens),
    ):
        if per_call:
            frames.model_usage.append((app_id, day, metric, llm.model, float(round(calls * per_call))))
    frames.model_usage.append((app_id, day, "requests", llm.model, calls))
    if llm.gateway:
        # the price table is a little high; on about one day in twelve a price change it missed puts it far off
        off = 0.09 if rng.random() < 1 / 12 else llm.gateway_drift * (0.5 + rng.random())
        estimate = _cents(float(cost) * (1 + off))
        frames.model_costs.append(
            (app_id, day, "vendor", "llm-gateway", estimate, CURRENCY, None, llm.model, True)
        )


def _leftover(app: _Spec, month: date, last: date, seed: int, add_cost: Any) -> None:
    """A retired app's resources that still bill (``leftover``): every day of ``month`` up to ``last``."""
    if not app.leftover:
        return
    rng = random.Random(f"{seed}:{app.app_id}:{month:%Y-%m}:leftover")
    day, end = month, min(_add_months(month, 1) - timedelta(days=1), last)
    while day <= end:
        for service, monthly in app.leftover.items():
            add_cost(app.app_id, day, "infra", service, _cents(monthly * 12 / 365 * (0.98 + 0.04 * rng.random())))
        day += timedelta(days=1)


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
                assumption=app.assumption if evidence == "estimate" else None,
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
