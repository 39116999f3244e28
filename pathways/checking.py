"""`pathways check`: engine checks plus template checks, every problem at once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pathways_engine.errors import Problem
from pathways_engine.registry import load_all


def check_paths(paths: Iterable[Path]) -> tuple[list[Problem], int]:
    """(problems, number of definitions looked at)."""
    paths = list(paths)
    definitions, problems = load_all(paths)
    from pathways_notifications.checks import template_problems

    for definition in definitions:
        problems.extend(template_problems(definition))
    looked_at = len(definitions) + len({p.path for p in problems} - {d.path for d in definitions})
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message)), looked_at
