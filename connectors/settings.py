"""Typed connector settings: each connector declares its ``[connectors.<name>]`` keys as a model.

A connector module has ``Params``, a subclass of :class:`ConnectorParams`: one field per setting,
with its type, its default and one line of help (``Field(description=...)``). A setting whose name
ends in ``_env`` names an environment variable holding a secret; the value itself is never in
portfolio.toml. :func:`validate` checks a connector's table against its model -- on every load of
portfolio.toml (:func:`portfolio.config.parse`), hence in ``mlportfolio check`` and every sync --
and raises :class:`~portfolio.config.SettingsError` naming the connector and the key (an unknown
key with a did-you-mean), never the value (it may be a secret).

:func:`reference` renders every model as the README's connector reference (``scripts/connector_reference.py``
writes it between the ``<!-- connectors:start -->`` / ``<!-- connectors:end -->`` markers).
"""

from __future__ import annotations

import difflib
import importlib
import json
import re
import types
import typing
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from portfolio.config import COMMON_CONNECTOR_KEYS, ConnectorConfig, SettingsError


class ConnectorParams(BaseModel):
    """Base of every connector's settings model: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def of(cls, config: ConnectorConfig) -> Self:
        """The connector's settings, validated (raises :class:`SettingsError`)."""
        try:
            return cls.model_validate(config.params)
        except ValidationError as exc:
            raise SettingsError(_problems(exc, cls, config)) from None

    @classmethod
    def secret_keys(cls) -> list[str]:
        return [k for k in cls.model_fields if k.endswith("_env")]


_UNION_TAGS = {"bool", "str", "int", "float", "date", "datetime", "none"}


def _problems(exc: ValidationError, model: type[BaseModel], config: ConnectorConfig) -> list[tuple[str, str, str]]:
    """(connector, key, what is wrong) per error; the input value is never part of the text."""
    known = list(model.model_fields) + list(COMMON_CONNECTOR_KEYS)
    out = []
    seen: set[str] = set()
    for err in exc.errors(include_input=False, include_url=False):
        # a union's members appear in the location ("bool", "list[...]"): not part of the key
        loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS))]
        key = ".".join(loc) or "?"
        if key in seen:
            continue  # one line per key (a union reports each member's failure)
        seen.add(key)
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            close = difflib.get_close_matches(loc[0], known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; known settings: {', '.join(model.model_fields)}"
            out.append((config.name, key, f"unknown setting of the {config.type} connector{hint}"))
        elif err["type"] == "extra_forbidden":
            out.append((config.name, key, "unknown key"))
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            out.append((config.name, key, msg[:1].lower() + msg[1:]))
    return out


def params_model(type_name: str) -> type[ConnectorParams] | None:
    """The settings model of a registered connector type (None for an unknown type)."""
    import connectors

    if type_name not in connectors.REGISTRY:
        return None
    module = importlib.import_module(connectors.REGISTRY[type_name])
    model = getattr(module, "Params", None)
    return model if isinstance(model, type) and issubclass(model, ConnectorParams) else None


def validate(config: ConnectorConfig) -> ConnectorParams | None:
    """Check one connector's settings; None when its type is unknown (reported elsewhere)."""
    model = params_model(config.type)
    return model.of(config) if model is not None else None


# ----------------------------------------------------------------------------- reference


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_name(a) for a in args if a is not type(None)))
    if origin is typing.Literal:
        quoted = [f'"{a}"' for a in args]
        return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"table of {_type_name(args[1])}" if len(args) == 2 else "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list | tuple | dict) and not value:
        return "empty"
    if isinstance(value, list | tuple):
        return "`[" + ", ".join(json.dumps(v) for v in value) + "]`"
    return f"`{value}`"


def reference() -> str:
    """Markdown: per registered connector, a table of its settings (name, type, default, help)."""
    import connectors

    parts = [
        "Generated from the connectors' settings models (`scripts/connector_reference.py`); every "
        "connector also takes `schedule`, `enabled`, `lookback_days` and `timeout_minutes`. A key ending in `_env` names "
        "the environment variable holding a secret. An unknown key is an error."
    ]
    for type_name in sorted(connectors.REGISTRY):
        model = params_model(type_name)
        parts.append(f"\n#### `{type_name}`: {connectors.describe(type_name)}\n")
        if model is None:
            parts.append("(no settings model)")
            continue
        parts.append("| setting | type | default | what |\n|---|---|---|---|")
        for key, info in model.model_fields.items():
            secret = " (secret: the variable's name)" if key.endswith("_env") else ""
            help_text = (info.description or "").replace("|", "\\|")
            parts.append(f"| `{key}` | {_type_name(info.annotation)} | {_default(info)} | {help_text}{secret} |")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- shared field types


def _one_or_many(value: Any) -> Any:
    """A single string where a list is expected is the list of that one string."""
    return [value] if isinstance(value, str) else value


#: a list of strings; one string is accepted as a list of one
StrList = Annotated[list[str], BeforeValidator(_one_or_many)]


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc.msg})") from None
    return value


#: a regular expression, compiled once to check it
Regex = Annotated[str, AfterValidator(_regex)]


#: the README's generated section lies between these markers
README_START = "<!-- connectors:start -->"
README_END = "<!-- connectors:end -->"


def with_reference(readme: str) -> str:
    """``readme`` with the text between the markers replaced by :func:`reference`."""
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not start or not end:
        raise ValueError(f"README has no {README_START} ... {README_END} section")
    return f"{head}{README_START}\n{reference()}{README_END}{tail}"
