"""Template checks for `pathways check`: every template exists and renders, errors as file:line."""

from __future__ import annotations

from pathlib import Path

from pathways_engine.definition.loader import Definition
from pathways_engine.errors import NotificationError
from pathways_engine.errors import Problem

from .composer import sample_context
from .rendering import render
from .rendering import template_path


def template_problems(definition: Definition) -> list[Problem]:
    problems: list[Problem] = []
    folder = Path(definition.path).parent / "templates"
    for i, note in enumerate(definition.spec.notifications):
        line = definition.line_of("notifications", i, "template")
        fallback = template_path(note.template, definition.spec.fallback_language, "subject")
        if fallback not in definition.templates:
            problems.append(Problem(definition.path, line,
                                    f"unknown template {note.template!r}: templates/{fallback} "
                                    "does not exist"))
            continue
        for language in definition.spec.languages:
            if template_path(note.template, language, "subject") not in definition.templates:
                continue
            for role in note.to:
                try:
                    render(definition, note.template, language, sample_context(definition, role, language))
                except NotificationError as exc:
                    text = str(exc).split(": ", 1)[1]
                    where, _, message = text.partition(": ")
                    rel, _, number = where.rpartition(":")
                    problems.append(Problem(str(folder / rel.removeprefix("templates/")),
                                            int(number) if number.isdigit() else 1, message))
                    break
    return sorted(set(problems), key=lambda p: (p.path, p.line))
