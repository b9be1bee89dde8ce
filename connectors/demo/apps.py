"""The demo portfolio's app specs: teams, owners, shapes of usage and value, decisions and shared costs."""

from __future__ import annotations

from dataclasses import dataclass, field

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
class _Llm:
    """An LLM app's model: which cost service is the model's, and the tokens a call takes."""

    model: str
    service: str  # the key of ``vendor`` (bought through an API) or ``infra`` (self-hosted) that is the model's cost
    calls_per_request: float
    input_tokens: int  # per call, not cached
    cached_input_tokens: int  # per call
    output_tokens: int  # per call
    gateway: bool = False  # the calls pass through an LLM gateway that estimates their cost from a price table
    gateway_drift: float = 0.02  # the gateway's usual over-estimate against the bill (a few days are far off)


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
    retired_k: int | None = None  # no data from this month on (retired on its first day)
    # services that keep billing after retirement (monthly USD): a resource nobody deleted (leftover spend)
    leftover: dict[str, float] = field(default_factory=dict)
    assumption: str | None = None  # the value assumption its estimate rows name (portfolio/demo.toml [plan.assumptions])
    decisions: tuple[_Decision, ...] = ()
    llm: tuple[_Llm, ...] = ()  # an LLM app's models: tokens per model, and each model's cost tagged with it


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
    _Spec(
        "visual-search-v1",
        "Visual search v1",
        "search",
        "tom.becker@example.com",
        "VP Commerce",
        "revenue_capture",
        "Retired: shop-the-look search moved to the new vision pipeline; its GPU endpoint was never deleted.",
        launched_k=-30,
        stage="retired",
        value=14_000,
        evidence="observational",
        attribution=0.5,
        requests=35_000,
        predictions_per_request=4,
        weekend=0.9,
        infra={"compute": 1_400, "gpu": 5_500, "storage": 300},
        klo_hours=12,
        incidents=0.2,
        improvement_hours=0,
        retired_k=-2,
        leftover={"gpu": 5_500},
        decisions=(
            _Decision("retire", 75, None, "director.ml@example.com", "The new vision pipeline serves shop-the-look; retire."),
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
        assumption="markdown-elasticity",
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
        assumption="send-time-uplift",
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
        # RAG prompts: about 18,600 tokens a call, three calls a reply, about 0.26 USD per 1M tokens
        llm=(_Llm("gpt-4o-mini-2024-07-18", "llm-api", 3.0, 12_000, 6_000, 600, gateway=True, gateway_drift=0.03),),
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
    # ---------------------------------------------------------------- an LLM app appended last (keeps the others' draws)
    _Spec(
        "contract-clauses",
        "Contract clause extractor",
        "risk",
        "sofia.rossi@example.com",
        "General Counsel",
        "cost_avoidance",
        "Extracts clauses from supplier contracts with a self-hosted Llama model on our GPU node pool.",
        launched_k=-8,
        launch_day=15,
        value=26_000,
        evidence="observational",
        attribution=0.7,
        growth=0.03,
        requests=1_500,
        weekend=0.2,
        infra={"gpu-llm": 7_500, "storage": 120},
        vendor={"llm-api": 350},  # long contracts overflow to the API model
        klo_hours=12,
        incidents=0.2,
        improvement_hours=20,
        decisions=_keep(35, 55, "legal.ops@example.com", "Review time per contract down 40%; API pricing compared."),
        # self-hosted at low volume: dearer per 1M tokens than the API it is compared with
        llm=(
            _Llm("meta-llama/Llama-3.1-8B-Instruct", "gpu-llm", 10.0, 6_000, 0, 600),
            _Llm("gpt-4o-mini-2024-07-18", "llm-api", 0.4, 60_000, 0, 1_500),
        ),
    ),
)

#: loaded hourly rates of the demo's teams (as portfolio/demo.toml's [teams]): the people cost in the
#: projections the demo's proposals froze
TEAM_RATES = {"search": 125.0, "risk": 135.0, "supply-chain": 110.0, "growth": 105.0, "support": 95.0}


@dataclass(frozen=True)
class _Proposal:
    """A lifecycle proposal of the demo. ``approved_by`` None: waiting for an approver. A retirement
    carried out is planned for, and stopped on, its app's ``retired_k`` month's first day."""

    app_id: str
    action: str
    by: str
    rationale: str
    evidence: str
    approved_by: str | None = None
    comment: str = ""
    days_ago: int = 0  # a waiting proposal: made this many days before as_of ...
    planned_in: int = 30  # ... for a retirement planned this many days after as_of


#: the lifecycle: two retirements carried out (one whose bill stopped, one whose GPU endpoint still bills)
#: and a proposal waiting for approval
PROPOSALS = (
    _Proposal("spam-filter-v1", "retire", "grace.okafor@example.com", "The ticket router covers spam; retire v1.",
              f"{TRACKER}/SUP-1870", approved_by="vp.support@example.com", comment="Agreed; delete the endpoint."),
    _Proposal("visual-search-v1", "retire", "tom.becker@example.com",
              "Shop-the-look traffic is on the new vision pipeline; retire v1.", f"{TRACKER}/SRCH-4410",
              approved_by="director.ml@example.com", comment="Approved. Make sure the GPU endpoint goes too."),
    _Proposal("email-send-time", "retire", "nina.petrova@example.com",
              "Underwater for a year; the ESP's built-in send-time feature does the same.", f"{TRACKER}/GRO-2231",
              days_ago=4, planned_in=30),
)  # fmt: skip

#: shared spend no app claims: (category, service, monthly USD)
SHARED = (
    ("infra", "shared-cluster", 6_500.0),
    ("infra", "data-lake-storage", 2_200.0),
    ("other", "cloud-support", 900.0),
)

#: how a service's daily cost follows usage: fixed share + usage share
_COST_FOLLOWS_USAGE = {"compute": 0.5, "gpu": 0.15, "gpu-llm": 0.15, "network": 0.8, "storage": 0.0}
