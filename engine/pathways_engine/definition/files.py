"""Deployment YAML files (parties, actors, the deployment file, scenarios) checked against
pydantic models, every problem with its file and line.

Apart from loader.py so that reading such a file does not import the definition format's
models (spec.py). pydantic itself is imported only to validate: `load_checked` skips that
for content that passed before, so `pathways advance`, which reads the actors and parties
files every time, starts without it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from pathways_engine import cachedir
from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem

from .yamlsafe import Document
from .yamlsafe import Loc
from .yamlsafe import parse_file

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic import ValidationError

M = TypeVar("M", bound="BaseModel")
T = TypeVar("T")
PASS_FORMAT = b"pathways deployment file pass 1\0"


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
    return validated(document, model), document


def validated(document: Document, model: type[M]) -> M:
    from pydantic import ValidationError

    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc, document)) from None


def load_checked(path: Path, model: Callable[[], type[BaseModel]], rules: tuple[str, ...],
                 build: Callable[[Document], T]) -> tuple[T, Document]:
    """A deployment file, parsed, validated against `model()` unless this very content passed
    these very rules before, and built into the caller's objects by `build`.

    Why: importing pydantic and declaring the models cost a command about 60 ms of its start.
    A pass is an empty file in the cache folder (cachedir.py) named by a digest of the parsed
    content, of the source files in `rules` (the modules that declare the checks) and of
    pydantic's version, so changed content or changed rules are validated again. A pass holds
    no content: `build` reads the document as parsed whether it was validated now or before,
    so a pass can only ever stand for the content it was made for. Should a pass ever stand
    for content `build` cannot read (the folder is this user's to write), the content is
    validated, and its problems reported with their lines, as without a pass."""
    document = parse_file(path)
    name = _pass_name(document, rules)
    where = cachedir.folder()
    if name is not None and where is not None and cachedir.private(where, want_dir=True) \
            and cachedir.private(where / name, want_dir=False):
        try:
            return build(document), document
        except (KeyError, TypeError, AttributeError, ValueError):
            pass  # not what validation lets through: validate, below
    validated(document, model())
    kept = cachedir.writable() if name is not None else None
    if kept is not None and name is not None:
        try:
            os.close(os.open(kept / name, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError:
            pass  # no pass kept: the next command validates again
    return build(document), document


def _pass_name(document: Document, rules: tuple[str, ...]) -> str | None:
    found = find_spec("pydantic")  # found, not imported: its version is part of the rules
    if found is None or found.origin is None:
        return None
    digest = hashlib.sha256(PASS_FORMAT)
    try:
        for rule in (*rules, str(Path(found.origin).with_name("version.py"))):
            digest.update(Path(rule).read_bytes())
            digest.update(b"\0")
    except OSError:  # rules that cannot be read (a zipped install): validate every time
        return None
    digest.update(json.dumps(document.data, sort_keys=True, ensure_ascii=False).encode())
    return f"pass-{digest.hexdigest()[:40]}"


def roles_by_line(document: Document, items: str, entries: list[Any]) -> dict[str, int]:
    """The first line each role appears at in `items[*].roles` (for unknown-role problems)."""
    lines: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for j, role in enumerate(entry.roles):
            lines.setdefault(role, document.line_of((items, i, "roles", j)))
    return lines
