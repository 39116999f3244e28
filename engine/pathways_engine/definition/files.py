"""Deployment YAML files (parties, actors, the deployment file, scenarios) -> pydantic models,
every problem with its file and line.

Apart from loader.py so that reading such a file does not import the definition format's
models (spec.py): building those costs a read command about 50 ms of start-up it does not
need (`python -X importtime -m pathways list`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import TypeVar

from pydantic import BaseModel
from pydantic import ValidationError

from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem

from .yamlsafe import Document
from .yamlsafe import Loc
from .yamlsafe import parse_file

M = TypeVar("M", bound=BaseModel)


def pydantic_problems(error: ValidationError, document: Document) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc: Loc = tuple(item["loc"])
        ctx = item.get("ctx") or {}
        if item["type"] == "unknown_key" and "key" in ctx:
            loc = (*loc, str(ctx["key"]).strip("'\""))
        where = ".".join(str(p) for p in item["loc"]) or "top level"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = f"missing required key {str(item['loc'][-1])!r}"
            where = ".".join(str(p) for p in item["loc"][:-1]) or "top level"
        problems.append(Problem(document.path, document.line_of(loc), f"{where}: {message}"))
    return problems


def load_model(path: Path, model: type[M]) -> tuple[M, Document]:
    """Parse a deployment YAML file (parties, actors) into `model`; problems carry lines."""
    document = parse_file(path)
    try:
        return model.model_validate(document.data), document
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc, document)) from None


def roles_by_line(document: Document, items: str, entries: list[Any]) -> dict[str, int]:
    """The first line each role appears at in `items[*].roles` (for unknown-role problems)."""
    lines: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for j, role in enumerate(entry.roles):
            lines.setdefault(role, document.line_of((items, i, "roles", j)))
    return lines
