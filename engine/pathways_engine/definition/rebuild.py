"""A definition's parts (parts.py) from plain JSON, without pydantic.

Two kinds of input come here. What spec.py has just validated, dumped (every value already
of its type). And a stored snapshot: it was validated when an instance started on it, and
validating it again on every command (`pathways advance` reads it each time) cost the CLI
most of its start. Definition files hold numbers and yes/no as the text written (yamlsafe.py),
which validation converts; only the forms the YAML core schema resolves (`17`, `-2`, `1.5`,
`true`, `false`) are converted here, to what validation makes of them. Anything else raises
`NotExact` and the caller validates as before. The format's validators check values and never
change them, so what is built here is what validation would build:
tests/test_definition_format.py compares the two for every shipped definition.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any
from typing import Literal
from typing import TypeVar
from typing import Union

from .parts import Part

P = TypeVar("P", bound=Part)


class NotExact(Exception):
    """A value that validation would convert (or refuse): validate instead."""


def rebuild(part: type[P], data: Any) -> P:
    """`part` filled from `data` (plain JSON) without validation, or NotExact."""
    return typing.cast(P, _part(part, data))


def _part(part: type[Part], data: Any) -> Part:
    if not isinstance(data, dict):
        raise NotExact(part.__name__)
    by_key = part._by_key
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = by_key.get(key)
        if name is None:
            raise NotExact(f"{part.__name__}.{key}")
        values[name] = _value(part._types[name], value)
    for name in part._fields:
        if name not in values and name not in part._defaults:
            raise NotExact(f"{part.__name__}.{name}")  # required: validation says so
    return part(**values)


def _value(annotation: Any, value: Any, exact: bool = False) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):  # like pydantic's smart mode: an exact match first
        for strict in (True, False) if not exact else (True,):
            for option in typing.get_args(annotation):
                try:
                    return _value(option, value, strict)
                except NotExact:
                    continue
        raise NotExact(repr(value))
    if origin is Literal:
        if any(type(value) is type(choice) and value == choice
               for choice in typing.get_args(annotation)):
            return value
        raise NotExact(repr(value))
    if origin is list:
        if not isinstance(value, list):
            raise NotExact(repr(value))
        (item,) = typing.get_args(annotation)
        return [_value(item, v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise NotExact(repr(value))
        key, item = typing.get_args(annotation)
        return {_value(key, k): _value(item, v) for k, v in value.items()}
    return _plain(annotation, value, exact)


_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_BOOL = {"true": True, "false": False}


def _plain(annotation: Any, value: Any, exact: bool) -> Any:
    if annotation is type(None) and value is None:
        return None
    if isinstance(annotation, type) and issubclass(annotation, Part):
        return _part(annotation, value)
    if annotation is Any or type(value) is annotation:
        return value
    if not exact:
        return _converted(annotation, value)
    raise NotExact(f"{value!r} as {annotation!r}")


def _converted(annotation: Any, value: Any) -> Any:
    """The text forms YAML's core schema resolves, as validation converts them."""
    if annotation is float and type(value) is int:
        return float(value)
    if type(value) is str:
        if annotation is int and _INT.fullmatch(value):
            return int(value)
        if annotation is float and _FLOAT.fullmatch(value):
            return float(value)
        if annotation is bool and value in _BOOL:
            return _BOOL[value]
    raise NotExact(f"{value!r} as {annotation!r}")
