"""The aggregating SQL over raw FOCUS lines, written once for DuckDB and PostgreSQL (dialect hooks)."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.focus.settings import ALIASES, CANONICAL, UNUSED_SERVICE, Settings


def lit(value: str) -> str:
    """A SQL string literal (standard SQL quoting: DuckDB and PostgreSQL)."""
    return "'" + value.replace("'", "''") + "'"


def glob_to_like(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class SqlDialect:
    """What differs between SQL engines; everything else in the query is written once."""

    name = "generic"

    def quote(self, ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'

    def decimal(self, expr: str) -> str:
        return f"CAST({expr} AS DECIMAL(38,12))"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def day(self, expr: str, typ: str = "VARCHAR") -> str:
        """UTC date of a FOCUS timestamp (a string in any ISO-8601 style, or a timestamp)."""
        return f"CAST(CAST({expr} AS TIMESTAMPTZ) AS DATE)"

    def month_start(self, day_expr: str) -> str:
        return f"CAST(date_trunc('month', {day_expr}) AS DATE)"

    def regex(self, expr: str, pattern: str) -> str:
        raise NotImplementedError

    def tag(self, tags: str, tags_type: str, key: str) -> str:
        raise NotImplementedError


class DuckDialect(SqlDialect):
    name = "duckdb"

    def day(self, expr: str, typ: str = "VARCHAR") -> str:
        # Days from epoch microseconds: a TIMESTAMPTZ -> DATE cast goes through ICU's calendar
        # and costs ~20x more (4.5 s per 10M lines). FOCUS timestamps are UTC, so a naive
        # TIMESTAMP is read as UTC; strings are parsed as TIMESTAMPTZ so that offsets count.
        t = typ.upper()
        if t == "DATE":
            return expr
        ts = expr if t.startswith("TIMESTAMP") else f"CAST({expr} AS TIMESTAMPTZ)"
        return f"(DATE '1970-01-01' + CAST(epoch_us({ts}) // 86400000000 AS INTEGER))"

    def regex(self, expr: str, pattern: str) -> str:
        return f"regexp_matches({expr}, {lit(pattern)})"

    def tag(self, tags: str, tags_type: str, key: str) -> str:
        norm = key.strip().lower()
        if tags_type.upper().startswith("MAP"):
            # fast path: the key as written; else scan the entries (case/whitespace tolerant)
            return (
                f"coalesce({tags}[{lit(key)}], "
                f"(list_filter(map_entries({tags}), lambda e: lower(trim(e.key)) = {lit(norm)})[1]).value)"
            )
        text = tags if tags_type.upper() in ("VARCHAR", "JSON") else f"CAST(to_json({tags}) AS VARCHAR)"
        path = '$."' + key.replace('"', '\\"') + '"'
        slow = (
            f"(list_filter(map_entries(CAST(CAST({text} AS JSON) AS MAP(VARCHAR, VARCHAR))), "
            f"lambda e: lower(trim(e.key)) = {lit(norm)})[1]).value"
        )
        # the slow, tolerant lookup only runs where the exact key is absent but the name appears
        return (
            f"coalesce(json_extract_string({text}, {lit(path)}), "
            f"CASE WHEN contains(lower({text}), {lit(norm)}) THEN {slow} END)"
        )


class PostgresDialect(SqlDialect):
    name = "postgresql"

    def decimal(self, expr: str) -> str:
        return f"CAST({expr} AS NUMERIC(38,12))"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def day(self, expr: str, typ: str = "VARCHAR") -> str:
        # the session runs with TIME ZONE 'UTC' (set by the connector)
        return f"CAST(CAST({expr} AS TIMESTAMPTZ) AS DATE)"

    def regex(self, expr: str, pattern: str) -> str:
        return f"({expr} ~ {lit(pattern)})"

    def tag(self, tags: str, tags_type: str, key: str) -> str:
        norm = key.strip().lower()
        j = f"CAST(NULLIF(NULLIF(TRIM(CAST({tags} AS TEXT)), ''), 'NULL') AS JSONB)"
        return (
            f"coalesce({j} ->> {lit(key)}, "
            f"(SELECT e.value FROM jsonb_each_text({j}) AS e WHERE lower(trim(e.key)) = {lit(norm)} LIMIT 1))"
        )


def resolve_columns(names: Sequence[str]) -> dict[str, str]:
    """canonical FOCUS column -> the column's name in the data (case/space-insensitive, 1.3 aliases)."""
    lower = {c.lower(): c for c in CANONICAL}
    found: dict[str, str] = {}
    aliased: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if key in lower:
            found.setdefault(lower[key], name)
        elif key in ALIASES:
            aliased.setdefault(ALIASES[key], name)
    for canon, name in aliased.items():
        found.setdefault(canon, name)
    return found


#: a token line's direction, from its SKU meter, description and SKU id (first match wins)
TOKEN_METRIC_PATTERNS = (
    ("cached_input_tokens", r"cache[ _-]?(read|hit)|cached"),
    ("cache_write_tokens", r"cache[ _-]?(write|creation|storage)"),
    ("output_tokens", r"(^|[^a-z])(output|outp|completion|generat)"),
    ("input_tokens", r"(^|[^a-z])(input|inp|prompt)"),
)
#: words of a SKU meter that say direction, unit or deployment, not the model (removed to name it)
_NOT_MODEL = (
    r"(?i)(^|[^a-z0-9])(input|output|inp|outp|prompt|completion|cache[ _-]?(read|write|hit|creation)|cached"
    r"|tokens?|count|text|global|glbl|regional|rgnl|data ?zone|batch|on-?demand)([^a-z0-9]|$)"
)


def token_scale_sql(unit: str) -> str:
    """How many tokens one unit of ``ConsumedUnit`` is (NULL: not a token count this reads)."""
    u = f"lower(TRIM({unit}))"
    return (
        f"CASE WHEN NOT contains({u}, 'token') OR contains({u}, '/') THEN NULL "
        f"WHEN regexp_matches({u}, '^(1 ?m|1,?000,?000|million)[^a-z0-9]') THEN 1000000 "
        f"WHEN regexp_matches({u}, '^(1 ?k|1,?000|thousand)[^a-z0-9]') THEN 1000 "
        f"WHEN regexp_matches({u}, '^tokens?$') THEN 1 END"
    )


def stage1_sql(
    source: str,
    cols: dict[str, str],
    types: dict[str, str],
    s: Settings,
    d: SqlDialect,
    extra: dict[str, str] | None = None,
    *,
    tokens: bool = False,
) -> str:
    """The one aggregating query over the raw lines: per billing period, currency, day, category,
    service and claim (tag value or directly mapped app), the exact cost sum and line count.

    Each raw column is touched once in the innermost query (every per-line function counts at
    10M lines); the mapping runs on those derived columns. ``extra`` (name -> per-line
    expression) adds grouping columns, e.g. the export folder a line comes from.

    ``tokens`` (DuckDB): the same mapping over the token lines only (``ConsumedUnit`` a token
    count), grouped per billing period, day, claim, model and metric instead: ``tokens`` is
    ``ConsumedQuantity`` times the unit's size; ``metric`` NULL where no direction is named.
    """
    extra = extra or {}
    extra_inner = "".join(f",\n           {expr} AS {name}" for name, expr in extra.items())
    extra_cols = "".join(f", {name}" for name in extra)
    null_text = "CAST(NULL AS VARCHAR)" if d.name == "duckdb" else "CAST(NULL AS TEXT)"

    def c(canon: str) -> str:
        return d.quote(cols[canon])

    def txt(canon: str) -> str:
        if canon not in cols:
            return null_text
        typ = types.get(canon, "VARCHAR").upper()
        raw = c(canon) if typ in ("VARCHAR", "TEXT") else d.text(c(canon))
        return f"NULLIF({raw}, '')"

    day = d.day(c("ChargePeriodStart"), types.get("ChargePeriodStart", "VARCHAR"))
    if "BillingPeriodStart" in cols:
        bp = d.day(c("BillingPeriodStart"), types.get("BillingPeriodStart", "VARCHAR"))
    else:
        bp = d.month_start(day)
    currency = f"TRIM({txt('BillingCurrency')})"
    if s.default_currency:
        currency = f"coalesce({currency}, {lit(s.default_currency)})"
    service = f"coalesce({txt('ServiceName')}, {txt('ServiceCategory')}, {txt('ProviderName')}, {txt('PublisherName')}, 'unknown')"
    unused = f"coalesce(lower(TRIM({txt('CommitmentDiscountStatus')})) = 'unused', false)"
    if s.cost_column == "EffectiveCost" and "ChargeCategory" in cols and "CommitmentDiscountId" in cols:
        excluded = (
            f"coalesce(lower(TRIM({txt('ChargeCategory')})) = 'purchase' "
            f"AND TRIM({txt('CommitmentDiscountId')}) <> '', false)"
        )
    else:
        excluded = "false"
    if s.tag_keys:
        found = [f"NULLIF(TRIM({d.tag(c('Tags'), types['Tags'], k)}), '')" for k in s.tag_keys]
        tag = found[0] if len(found) == 1 else "coalesce(" + ", ".join(found) + ")"
    else:
        tag = null_text
    # the middle query sees the mapping columns under their canonical names
    mapping_cols: list[str] = []
    if s.sub_accounts:
        mapping_cols += [k for k in ("SubAccountId", "SubAccountName") if k in cols]
    if s.patterns:
        mapping_cols.append("ResourceId")

    def mid(canon: str) -> str:
        return f"NULLIF(TRIM({d.text(d.quote(canon))}), '')"

    whens = []
    for key, app in s.sub_accounts.items():
        conds = [f"{mid(k)} = {lit(key)}" for k in ("SubAccountId", "SubAccountName") if k in cols]
        if conds:
            whens.append(f"WHEN {' OR '.join(conds)} THEN {lit(app)}")
    for p in s.patterns:
        rid = mid("ResourceId")
        cond = f"{rid} LIKE {lit(glob_to_like(p.pattern))} ESCAPE '\\'" if p.kind == "glob" else d.regex(rid, p.pattern)
        whens.append(f"WHEN {cond} THEN {lit(p.app)}")
    direct = f"CASE {' '.join(whens)} END" if whens else null_text
    carried = "".join(f", {c(k)} AS {d.quote(k)}" for k in mapping_cols)
    if tokens:
        described = ", ".join(txt(k) for k in ("SkuMeter", "ChargeDescription", "SkuId"))
        words = f"lower(concat_ws(' ', {described}))"
        metric = "CASE " + " ".join(f"WHEN regexp_matches({words}, {lit(rx)}) THEN {lit(m)}" for m, rx in TOKEN_METRIC_PATTERNS) + " END"
        named = f"coalesce({txt('SkuMeter')}, {txt('SkuId')}, {service})"
        # thrice: a removed word takes the separator after it, which the next word needs
        stripped = named
        for _ in range(3):
            stripped = f"regexp_replace({stripped}, {lit(_NOT_MODEL)}, '\\1', 'g')"
        model = (
            f"coalesce(NULLIF(TRIM(regexp_replace(regexp_replace({stripped}, "
            f"'[ _-]*([ _-])[ _-]*', '\\1', 'g'), '^[ _-]+|[ _-]+$', '', 'g')), ''), {named})"
        )
        scale = token_scale_sql(txt("ConsumedUnit"))
        return f"""
SELECT bp_start, day, tag_value, direct_app, metric, model, SUM(tokens) AS tokens, COUNT(*) AS lines{extra_cols}
FROM (
  SELECT bp_start, day{extra_cols}, tag_value,
         CASE WHEN tag_value IS NOT NULL THEN {null_text} ELSE {direct} END AS direct_app, metric, model, tokens
  FROM (
    SELECT {bp} AS bp_start,
           {day} AS day,
           {tag} AS tag_value,
           {metric} AS metric,
           {model} AS model,
           CAST({c('ConsumedQuantity')} AS DECIMAL(38,6)) * ({scale}) AS tokens{carried}{extra_inner}
    FROM {source}
    WHERE ({scale}) IS NOT NULL AND {c('ConsumedQuantity')} IS NOT NULL
  ) AS lines_
) AS mapped_
GROUP BY bp_start, day, tag_value, direct_app, metric, model{extra_cols}
"""
    return f"""
SELECT bp_start, currency, day, category, service, tag_value, direct_app, unused, excluded,
       SUM(cost) AS amount, COUNT(*) AS lines{extra_cols}
FROM (
  SELECT bp_start, currency, day{extra_cols},
         CASE WHEN lower(TRIM(charge_category)) = 'tax' THEN 'other' ELSE 'infra' END AS category,
         CASE WHEN unused THEN '{UNUSED_SERVICE}' ELSE service END AS service,
         CASE WHEN unused THEN {null_text} ELSE tag_value END AS tag_value,
         CASE WHEN unused OR tag_value IS NOT NULL THEN {null_text} ELSE {direct} END AS direct_app,
         unused, excluded, cost
  FROM (
    SELECT {bp} AS bp_start,
           {currency} AS currency,
           {day} AS day,
           {txt('ChargeCategory')} AS charge_category,
           {service} AS service,
           {unused} AS unused,
           {excluded} AS excluded,
           {tag} AS tag_value,
           {d.decimal(c(s.cost_column))} AS cost{carried}{extra_inner}
    FROM {source}
  ) AS lines_
) AS mapped_
GROUP BY bp_start, currency, day, category, service, tag_value, direct_app, unused, excluded{extra_cols}
"""
