"""Field values: text from `--set` or Python values from the API, checked by declared type.

Values are stored as JSON: bool, int, decimal as text (no float rounding), text, date as
ISO text, enum as one of its declared values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from pathways_engine.errors import FieldError
from pathways_engine.errors import did_you_mean
from pathways_engine.errors import shown

from .parts import FieldSpec
from .parts import PathwaySpec

_TRUE = {"true", "yes", "ja", "1"}
_FALSE = {"false", "no", "nej", "nei", "0"}
MAX_TEXT = 4000


def coerce(name: str, spec: FieldSpec, value: Any) -> Any:
    """Return the JSON value for `value`, or raise FieldError naming the field and type."""
    kind = spec.type
    try:
        result = _coerce(kind, spec, value)
    except (ValueError, InvalidOperation, TypeError):
        expected = {
            "bool": "true or false", "int": "a whole number", "decimal": "a number",
            "text": "text", "date": "a date (YYYY-MM-DD)",
            "enum": f"one of {', '.join(spec.values or [])}",
        }[kind]
        raise FieldError(f"field {name!r} must be {expected}, not {shown(value)}") from None
    if kind in {"int", "decimal"}:
        number = Decimal(str(result))
        if spec.min is not None and number < Decimal(str(spec.min)):
            raise FieldError(f"field {name!r} must be at least {spec.min:g}, not {shown(value)}")
        if spec.max is not None and number > Decimal(str(spec.max)):
            raise FieldError(f"field {name!r} must be at most {spec.max:g}, not {shown(value)}")
    return result


def _coerce(kind: str, spec: FieldSpec, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        return int(str(value).strip())
    if kind == "decimal":
        if isinstance(value, bool):
            raise ValueError
        number = Decimal(str(value).strip())
        if not number.is_finite():
            raise ValueError
        return str(number)
    if kind == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value.isoformat()
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    if kind == "enum":
        text = str(value).strip()
        if text not in (spec.values or []):
            raise ValueError
        return text
    text = str(value)
    if len(text) > MAX_TEXT:
        raise ValueError
    return text


def check_values(spec: PathwaySpec, given: Mapping[str, Any], requires: Iterable[str],
                 accepts: Iterable[str], what: str) -> dict[str, Any]:
    """Coerce `given`; refuse unknown fields, fields `what` may not set, and missing ones."""
    requires, accepts = list(requires), list(accepts)
    allowed = set(requires) | set(accepts)
    result: dict[str, Any] = {}
    for name, value in given.items():
        if name not in spec.fields:
            raise FieldError(
                f"unknown field {name!r}{did_you_mean(name, spec.fields)}; fields of this "
                f"pathway: {', '.join(sorted(spec.fields)) or '(none)'}"
            )
        if name not in allowed:
            raise FieldError(
                f"field {name!r} cannot be set by {what}; it sets: "
                f"{', '.join(sorted(allowed)) or '(no fields)'}"
            )
        result[name] = coerce(name, spec.fields[name], value)
    missing = [name for name in requires if result.get(name) is None]
    if missing:
        raise FieldError(
            f"{what} needs {', '.join(repr(m) for m in missing)}: give "
            + " ".join(f"--set {m}=..." for m in missing)
        )
    return result


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """`FIELD=VALUE` strings from the command line into a dict (values stay text)."""
    result: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise FieldError(f"--set takes FIELD=VALUE, not {shown(pair)}")
        if name.strip() in result:
            raise FieldError(f"field {name.strip()!r} is given twice")
        result[name.strip()] = value
    return result
