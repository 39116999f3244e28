"""Rebuild an already validated definition without running validation again.

A stored snapshot was validated when an instance started on it. Validating it again on every
command (`pathways advance` reads it each time) cost the CLI most of its start: building
pydantic's validators for the whole format is ~90 ms before the first value is checked. Here
the models are filled directly. Definition files hold numbers and yes/no as the text written
(yamlsafe.py), which validation converts; only the forms the YAML core schema resolves
(`17`, `-2`, `1.5`, `true`, `false`) are converted here, to what validation makes of them.
Anything else raises `NotExact` and the caller validates as before. The format's validators
check values and never change them, so what is built here is what validation would build:
tests/test_definition_format.py compares the two for every shipped definition.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable
from typing import Any
from typing import Literal
from typing import TypeVar
from typing import Union

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class NotExact(Exception):
    """A value that validation would convert (or refuse): validate instead."""


def rebuild(model: type[M], data: Any) -> M:
    """`model` filled from `data` (plain JSON) without validation, or NotExact."""
    return typing.cast(M, _model(model, data))


def _model(model: type[BaseModel], data: Any) -> BaseModel:
    if not isinstance(data, dict):
        raise NotExact(model.__name__)
    fields = model.model_fields
    by_key = {info.alias or name: name for name, info in fields.items()}
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = by_key.get(key)
        if name is None:
            raise NotExact(f"{model.__name__}.{key}")
        values[name] = _value(fields[name].annotation, value)
    return model.model_construct(_fields_set=set(values), **_with_defaults(model, values))


def _with_defaults(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled here, so a required field missing is NotExact, not a hole."""
    for name, required, make in _defaults(model):
        if name not in values:
            if required:
                raise NotExact(f"{model.__name__}.{name}")
            values[name] = make()
    return values


@functools.cache
def _defaults(model: type[BaseModel]) -> tuple[tuple[str, bool, Callable[[], Any]], ...]:
    """(field, required, make its default) once per model. The format's factories take no
    argument, so they are called directly: pydantic's `get_default` inspects each factory's
    signature on every call, which was a sixth of a CLI step's own time."""
    found = []
    for name, info in model.model_fields.items():
        factory = info.default_factory
        make: Callable[[], Any]
        if isinstance(factory, type) and issubclass(factory, BaseModel):
            make = functools.partial(_model, factory, {})  # calling it would validate
        elif factory is not None:
            make = typing.cast(Callable[[], Any], factory)
        else:
            make = functools.partial(info.get_default, call_default_factory=False)
        found.append((name, info.is_required(), make))
    return tuple(found)


def _value(annotation: Any, value: Any, exact: bool = False) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _value(typing.get_args(annotation)[0], value, exact)
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
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model(annotation, value)
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
