"""Output that cannot be turned into a weapon: untrusted text made inert for where it goes.

Text that ML Portfolio did not write itself — app names, owners and descriptions from an
inventory, ledger notes, ticket titles, connector error messages, who decided what — ends up in
four kinds of output, each with its own active syntax:

- **CSV** opened in a spreadsheet: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return is a formula (``=HYPERLINK(...)``, ``@SUM(1+1)*cmd|' /C calc'!A0``).
  :func:`csv_cell` / :func:`csv_frame` prefix such *text* cells with a single quote, as OWASP's
  "CSV Injection" page says; numbers stay numbers (a text cell that is just a number, such as
  ``-12.50``, is left alone: a spreadsheet reads it as that number, never as a formula).
- **Streamlit Markdown** (``st.markdown``, ``st.caption``, ``st.error``, metric and expander
  labels, ...): images load from anywhere (``![x](http://...)``), links render, bare URLs and
  e-mails become links, and Streamlit adds ``:material/icon:``, ``:red[...]`` colour directives,
  emoji shortcodes and ``$`` math. :func:`md` backslash-escapes the ASCII punctuation that carries
  that syntax (CommonMark allows a backslash before any of it, and the rendered text reads the
  same) so none of it survives.
- **A Markdown table cell** (the quarterly review): :func:`md_cell` also folds newlines, which
  would end the row and let the text forge rows of its own.
- **Slack mrkdwn** (alerts): :func:`slack` escapes ``&``, ``<`` and ``>`` — the three characters
  Slack's "Formatting text for app surfaces" guide says to escape — so ``<!channel>``,
  ``<@U123>`` and ``<http://evil|a bank>`` arrive as text.

HTML (the HTML review) uses :func:`html.escape`.
"""

from __future__ import annotations

import re
import string
from typing import Any

import pandas as pd

#: what a spreadsheet takes as the start of a formula (OWASP "CSV Injection")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

# "-", ".", ",", "'", '"', "/", ";", "?", "=", "%" and "+" are markup only at the start of a line
# (lists, setext headings) or in "www." (an autolink): escaped there only, so a name such as
# "churn-predictor" stays readable in the Markdown source; every other punctuation mark always
_PLAIN = set("-.,'/;?=%+\"")
_MD_ESCAPES = {ord(c): "\\" + c for c in string.punctuation if c not in _PLAIN}
_LINE_START = re.compile(r"^([ \t]*)([-+=]|\d+[.)])", re.M)
# GFM turns bare URLs and e-mails into links *after* parsing, on the text itself, where a backslash
# is already gone: an invisible WORD JOINER after the scheme, after "www" and before "@" is what
# stops it (the text reads and wraps the same)
_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(https?|ftp|mailto|xmpp)(?=:)|(www)(?=\.)", re.I)


def _no_autolink(text: str) -> str:
    return _AUTOLINK.sub(lambda m: m.group(0) + _JOINER, text).replace("@", _JOINER + "@")
_MD_CELL_ESCAPES = dict(_MD_ESCAPES)
_MD_CELL_ESCAPES.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"})
_NEWLINES = re.compile(r"\r\n|\r|\n|\u2028|\u2029|\x0b|\x0c|\x85")


def csv_cell(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: text that starts a formula gets a leading ``'``.

    Only ``str`` values change; numbers (int, float, Decimal, numpy) and text that is exactly a
    decimal number (``-12.50``, ``+3``, ``1e6``) are returned as they are.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    if _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells went through :func:`csv_cell` (numeric columns untouched)."""
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if not (series.dtype == object or pd.api.types.is_string_dtype(series.dtype)):
            continue  # numbers, dates, booleans: a spreadsheet cannot read them as a formula
        risky = series.map(lambda v: csv_cell(v) is not v)
        if risky.any():
            out[col] = series.astype(object).map(csv_cell)
    return out


def md(text: Any) -> str:
    """Untrusted text for Streamlit's Markdown: shown as written, with no markup of its own.

    Markdown punctuation is backslash-escaped (``-`` ``+`` ``=`` and ``1.`` only at a line start)
    and a WORD JOINER (U+2060, invisible) follows ``http``/``www`` and precedes ``@``: links, images,
    emphasis, code, HTML, headings, lists, tables, autolinked URLs and e-mails, ``$`` math and
    Streamlit's ``:material/...:`` / ``:red[...]`` directives all lose their meaning.
    ``None`` is the empty string.
    """
    if text is None:
        return ""
    out = _no_autolink(str(text)).translate(_MD_ESCAPES)
    return _LINE_START.sub(_escape_line_start, out)


def _escape_line_start(m: re.Match[str]) -> str:
    indent, mark = m.group(1), m.group(2)
    return f"{indent}{mark[:-1]}\\{mark[-1]}"


def md_cell(text: Any) -> str:
    """Untrusted text for one cell of a Markdown table (GitHub-flavoured).

    Newlines become spaces (a newline ends the row: the rest would forge rows), ``|`` is escaped
    (it would split the cell), HTML's ``& < >`` become entities and the other Markdown punctuation
    is backslash-escaped as in :func:`md`.
    """
    if text is None:
        return ""
    return _no_autolink(_NEWLINES.sub(" ", str(text))).translate(_MD_CELL_ESCAPES)


def slack(text: Any) -> str:
    """Untrusted text for a Slack message: ``&``, ``<`` and ``>`` as entities, nothing else.

    Per Slack's documentation these three are the control characters of its markup; escaped,
    ``<!channel>``, ``<!here>``, ``<@U123>`` and ``<url|text>`` no longer mention or link.
    """
    if text is None:
        return ""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_code(text: Any) -> str:
    """Untrusted text as a Markdown code span: a fence one backtick longer than any run inside it."""
    value = _NEWLINES.sub(" ", "" if text is None else str(text))
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"
