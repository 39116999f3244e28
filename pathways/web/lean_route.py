"""A route whose parameters are parsed straight from the request, for the step endpoints.

Why: for every request FastAPI solves the endpoint's dependencies and validates its
parameters through machinery general enough for any signature. For a step (`POST
/api/instances`, `POST /api/instances/{instance}/events`), whose parameters are a few path and
header strings and one body model, that machinery was about a quarter of the event loop's
share of the request (py-spy); with the thread hop of server.py the server's CPU a step request
fell from 1.9-2.3 to 1.7-2.0 ms (bench/HISTORY.md). `LeanRoute` uses FastAPI's own extension
point, a custom `APIRoute` whose `get_route_handler` is replaced. Routing, OpenAPI, middleware
and exception handlers stay FastAPI's. Only the parsing is done here, with the same pydantic
types the signature declares, and a bad request raises the same `RequestValidationError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Annotated
from typing import Any
from typing import get_args
from typing import get_origin
from typing import get_type_hints

from fastapi import Request
from fastapi import params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic import TypeAdapter
from pydantic import ValidationError

# (request, errors) -> the parameter's value; problems are appended to errors
Parser = Callable[[Request, list[dict[str, Any]]], Awaitable[Any]]


class LeanRoute(APIRoute):
    """See the module docstring. An endpoint it cannot parse for is refused when the app is
    built, not when a request comes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        if self.dependencies:  # a router's or route's own: this handler would skip them
            raise TypeError(f"LeanRoute {self.path} cannot run route dependencies")
        parsers = _parsers(self.path, endpoint)

        async def handler(request: Request) -> Response:
            errors: list[dict[str, Any]] = []
            values = {name: await parse(request, errors) for name, parse in parsers.items()}
            if errors:
                raise RequestValidationError(errors)
            answer: Response = await endpoint(**values)
            return answer

        return handler


def _parsers(path: str, function: Callable[..., Any]) -> dict[str, Parser]:
    hints = get_type_hints(function, include_extras=True)
    return {name: _parser(path, name, hints.get(name), parameter.default)
            for name, parameter in inspect.signature(function).parameters.items()}


def _parser(path: str, name: str, annotation: Any, default: Any) -> Parser:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _body(annotation)
    where = _source(annotation)
    if isinstance(where, params.Path) and "{" + name + "}" in path:
        return _path(name, TypeAdapter(annotation))
    if isinstance(where, params.Header):
        alias = where.alias or name.replace("_", "-")
        fallback = None if default is inspect.Parameter.empty else default
        return _header(alias, TypeAdapter(annotation), fallback)
    if isinstance(where, params.Depends) and where.dependency is not None:
        return _dependency(path, where.dependency)
    raise TypeError(f"LeanRoute parses path and header parameters, dependencies of those "
                    f"and one body model, not "
                    f"{name}: {annotation!r}")


def _source(annotation: Any) -> Any:
    """The FastAPI parameter kind (Path, Header, Depends, ...) an Annotated type declares."""
    if get_origin(annotation) is Annotated:
        return next((a for a in get_args(annotation)[1:]
                     if isinstance(a, params.Param | params.Depends)), None)
    return None


def _dependency(path: str, dependency: Callable[..., Any]) -> Parser:
    """A dependency whose own parameters this module can parse, called with them."""
    parsers = _parsers(path, dependency)

    async def parse(request: Request, errors: list[dict[str, Any]]) -> Any:
        result = dependency(**{name: await p(request, errors) for name, p in parsers.items()})
        return await result if inspect.isawaitable(result) else result
    return parse


def _body(model: type[BaseModel]) -> Parser:
    async def parse(request: Request, errors: list[dict[str, Any]]) -> Any:
        raw = await request.body()
        if not raw:
            errors.append({"type": "missing", "loc": ("body",), "msg": "Field required"})
            return None
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (kind == "application/json" or kind.startswith("application/")
                and kind.endswith("+json")):  # as FastAPI: a JSON body says it is JSON
            errors.append({"type": "model_attributes_type", "loc": ("body",),
                           "msg": "give a JSON object with Content-Type: application/json"})
            return None
        try:
            return model.model_validate_json(raw)
        except ValidationError as invalid:
            errors += [{**e, "loc": ("body", *e["loc"])} for e in invalid.errors()]
            return None
    return parse


def _path(name: str, adapter: TypeAdapter[Any]) -> Parser:
    async def parse(request: Request, errors: list[dict[str, Any]]) -> Any:
        return _checked(adapter, request.path_params.get(name), ("path", name), errors)
    return parse


def _header(alias: str, adapter: TypeAdapter[Any], fallback: Any) -> Parser:
    async def parse(request: Request, errors: list[dict[str, Any]]) -> Any:
        value = request.headers.get(alias)
        if value is None:
            return fallback
        return _checked(adapter, value, ("header", alias), errors)
    return parse


def _checked(adapter: TypeAdapter[Any], value: Any, loc: tuple[str, ...],
             errors: list[dict[str, Any]]) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as invalid:
        errors += [{**e, "loc": (*loc, *e["loc"])} for e in invalid.errors()]
        return None
