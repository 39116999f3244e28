"""`pathways check`: engine checks plus template checks, every problem at once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pathways_engine.errors import Problem
from pathways_engine.registry import load_all


def check_paths(paths: Iterable[Path], parties: Path | None = None) -> tuple[list[Problem], int]:
    """(problems, number of definitions looked at); the parties file is checked too."""
    paths = list(paths)
    definitions, problems = load_all(paths)
    from pathways_notifications.checks import template_problems

    for definition in definitions:
        problems.extend(template_problems(definition))
    if parties is not None:
        problems.extend(_party_problems(parties, {r for d in definitions for r in d.spec.roles}))
    looked_at = len(definitions) + len({p.path for p in problems} - {d.path for d in definitions})
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message)), looked_at


def _party_problems(path: Path, roles: set[str]) -> list[Problem]:
    from pathways_engine.errors import DefinitionError
    from pathways_notifications.parties import load_parties
    from pathways_notifications.parties import unknown_role_problems

    try:
        return unknown_role_problems(load_parties(path), roles)
    except DefinitionError as exc:
        return exc.problems
