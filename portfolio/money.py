"""Money as people read it and as files carry it: one formatter for every surface.

The dashboard (tiles, tables, charts), the quarterly review, the alerts and the CLI all write
amounts through this module, in the configured reporting currency (``€1,234`` for EUR, ``$1,234``
for USD, ``1,234 CHF`` for a currency without a symbol here). It lives outside the dashboard
package because the review, the alerts and the CLI have no Streamlit.

Two kinds of output:

- for people (:func:`fmt`, :func:`short`, :func:`delta`): rounded for display only (half to even,
  as Python formats), never ``-$0``;
- for files (:func:`exact`, :func:`plain`): the exact decimal amount. The domain sums money as
  float (the DataFrame edge); every fact is stored in micro-units (records.Money), so a sum is a
  whole number of micro-units and quantising to 0.000001 recovers it exactly while the float still
  resolves a micro-unit (amounts below about 10^9; pandas sums with compensated summation).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

MICRO = Decimal("0.000001")
CENT = Decimal("0.01")

#: currency code -> (prefix, suffix) as written in front of / after the amount
_AFFIXES: dict[str, tuple[str, str]] = {
    "USD": ("$", ""),
    "EUR": ("€", ""),
    "GBP": ("£", ""),
    "JPY": ("¥", ""),
    "CNY": ("¥", ""),
    "INR": ("₹", ""),
    "KRW": ("₩", ""),
    "CAD": ("CA$", ""),
    "AUD": ("A$", ""),
}
#: currencies with no minor unit in everyday use
_NO_DECIMALS = {"JPY", "KRW"}


def affixes(currency: str) -> tuple[str, str]:
    """``(prefix, suffix)`` of ``currency``: ``("€", "")`` for EUR, ``("", " CHF")`` for CHF."""
    code = (currency or "USD").upper()
    return _AFFIXES.get(code, ("", f" {code}"))


def symbol(currency: str) -> str:
    """The symbol (``€``) or, without one, the code (``CHF``)."""
    prefix, suffix = affixes(currency)
    return prefix or suffix.strip()


def missing(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict | set) else False
    except (TypeError, ValueError):
        return False


def exact(value: Any) -> Decimal | None:
    """The exact amount: a Decimal quantised to micro-units (no ``-0``); None when missing."""
    if missing(value):
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
        amount = amount.quantize(MICRO, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, TypeError, ValueError, OverflowError):
        return None
    return amount if amount != 0 else Decimal("0.000000")


def plain(value: Any, min_decimals: int = 2) -> str:
    """Exact decimal text for a file: ``2329329.91``, ``0.00``, ``12.345678``; ``""`` when missing.

    At least ``min_decimals`` decimals, trailing zeros beyond them dropped; never an exponent,
    never ``-0``.
    """
    amount = exact(value)
    if amount is None:
        return ""
    return exact_text(amount, min_decimals)


def exact_text(amount: Decimal, min_decimals: int = 2) -> str:
    """:func:`plain` of an amount that :func:`exact` made already (no second quantize)."""
    text = f"{amount:f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    frac = frac + "0" * max(0, min_decimals - len(frac))
    return f"{whole}.{frac}" if frac else whole


def _rounded(value: Any, decimals: int) -> Decimal | None:
    amount = exact(value)
    if amount is None:
        return None
    out = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    return out if out != 0 else abs(out)


def fmt(value: Any, currency: str = "USD", decimals: int | None = None) -> str:
    """``$1,234,567`` / ``-€1,234`` / ``1,234 CHF``: rounded for display (whole units by default);
    ``–`` when missing."""
    if decimals is None:
        decimals = 0
    if (currency or "").upper() in _NO_DECIMALS:
        decimals = 0
    amount = _rounded(value, decimals)
    if amount is None:
        return "–"
    prefix, suffix = affixes(currency)
    sign = "-" if amount < 0 else ""
    return f"{sign}{prefix}{abs(amount):,.{decimals}f}{suffix}"


def short(value: Any, currency: str = "USD") -> str:
    """``$12.69M`` / ``-€950.3K`` / ``$812``: four significant digits for a tile; ``–`` when missing."""
    amount = exact(value)
    if amount is None:
        return "–"
    prefix, suffix = affixes(currency)
    for size, unit in ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "K")):
        if abs(amount) >= size:
            scaled = amount / size
            digits = 2 if abs(scaled) < 100 else 1
            scaled = scaled.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
            sign = "-" if scaled < 0 else ""
            return f"{sign}{prefix}{abs(scaled)}{unit}{suffix}"
    return fmt(amount, currency)


def delta(value: Any, currency: str = "USD", *, compact: bool = False) -> str | None:
    """A signed change (``+$1,234`` / ``-$1,234``; ``compact``: ``+$1.2M``); None when missing.

    A change that rounds to nothing is None too: a green "+$0" would read as a gain.
    """
    if missing(value) or _rounded(value, 0) == 0:
        return None
    text = short(value, currency) if compact else fmt(value, currency)
    return text if text.startswith("-") else f"+{text}"


def vega_locale(currency: str) -> dict[str, Any]:
    """The d3-format locale that makes Vega's ``$`` format write ``currency`` (charts' axes and tooltips)."""
    prefix, suffix = affixes(currency)
    return {"decimal": ".", "thousands": ",", "grouping": [3], "currency": [prefix, suffix]}
