"""Rendering a pathway's templates: sandboxed Jinja2, StrictUndefined, HTML autoescaped.

Templates live beside the definition as `templates/<name>/<lang>.subject.j2`, `<lang>.txt.j2`
and optionally `<lang>.html.j2`; they come from the instance's definition snapshot, so a
running instance keeps the wording it started with. The sandbox refuses access to internals
(`{{ ''.__class__.__mro__ }}`), and StrictUndefined turns a missing variable into an error
instead of an empty string.
"""

from __future__ import annotations

import types
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import DictLoader
from jinja2 import StrictUndefined
from jinja2 import TemplateError
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pathways_engine.errors import NotificationError
from pathways_engine.loader import Definition

PARTS = ("subject", "txt", "html")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    language: str


def environment(templates: Mapping[str, str]) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=DictLoader(dict(templates)), undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        keep_trailing_newline=False,
    )


_environments: OrderedDict[str, ImmutableSandboxedEnvironment] = OrderedDict()
_CACHED_DEFINITIONS = 64


def environment_for(definition: Definition) -> ImmutableSandboxedEnvironment:
    """One environment per definition content, so each template compiles once (not per message)."""
    env = _environments.get(definition.content_hash)
    if env is None:
        env = environment(definition.templates)
        _environments[definition.content_hash] = env
        while len(_environments) > _CACHED_DEFINITIONS:
            _environments.popitem(last=False)
    return env


def template_path(name: str, language: str, part: str) -> str:
    return f"{name}/{language}.{part}.j2"


def choose_language(definition: Definition, name: str, wanted: str | None) -> str:
    """The recipient's language if the template has it, else the declared fallback."""
    for language in (wanted, definition.spec.fallback_language):
        if language and template_path(name, language, "subject") in definition.templates:
            return language
    raise NotificationError(
        f"{definition.path}: template {name!r} has no {definition.spec.fallback_language!r} "
        f"version (templates/{template_path(name, definition.spec.fallback_language, 'subject')})")


def render(definition: Definition, name: str, language: str | None,
           context: Mapping[str, Any]) -> Rendered:
    language = choose_language(definition, name, language)
    env = environment_for(definition)
    parts: dict[str, str | None] = {}
    for part in PARTS:
        path = template_path(name, language, part)
        if path not in definition.templates:
            parts[part] = None
            continue
        try:
            parts[part] = env.get_template(path).render(**context)
        except TemplateError as exc:
            line = error_line(exc, path)
            raise NotificationError(
                f"{definition.path}: templates/{path}:{line}: {exc.message or exc}") from None
    if parts["txt"] is None:
        raise NotificationError(f"{definition.path}: templates/{template_path(name, language, 'txt')}"
                                " is missing")
    subject = " ".join((parts["subject"] or "").split())
    return Rendered(subject, str(parts["txt"]).strip() + "\n", parts["html"], language)


def error_line(exc: BaseException, path: str) -> int:
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        return exc.lineno
    tb: types.TracebackType | None = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in {path, "<template>"}:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
