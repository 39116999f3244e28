"""`pathways check`: engine checks plus template checks, every problem at once."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pathways_engine.definition.registry import load_all
from pathways_engine.errors import Problem

if TYPE_CHECKING:
    from pathways_engine.definition.loader import Definition


def check_paths(paths: Iterable[Path], parties: Path | None = None,
                actors: Path | None = None, switches: tuple[str, ...] = (),
                context: Iterable[Path] = ()) -> tuple[list[Problem], int]:
    """(problems, number of definitions looked at); the parties and actors files and the
    deployment's switches too."""
    paths = list(paths)
    definitions, problems = load_all(paths, context)
    from pathways_notifications.checks import template_problems

    for definition in definitions:
        problems.extend(template_problems(definition))
    if parties is not None:
        problems.extend(_party_problems(parties, {r for d in definitions for r in d.spec.roles}))
    if actors is not None:
        problems.extend(_actor_problems(actors, {r for d in definitions for r in d.spec.roles},
                                        parties))
    problems.extend(_switch_problems(switches, definitions))
    looked_at = len(definitions) + len({p.path for p in problems} - {d.path for d in definitions})
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message)), looked_at


def _switch_problems(switches: tuple[str, ...],
                     definitions: Sequence[Definition]) -> list[Problem]:
    """A switch no variant names is a typo that would leave the old rule quietly in force."""
    from pathways_engine.errors import did_you_mean

    from .config import deployment_path

    named = {v.switch for d in definitions for _, deadline in d.spec.all_deadlines()
             for v in deadline.variants if v.switch}
    where = str(deployment_path() or "deployment")
    return [Problem(where, 1, f"switches: {switch!r} is named by no deadline variant of these "
                    f"definitions{did_you_mean(switch, named)}; they name: "
                    f"{', '.join(sorted(named)) or '(none)'}")
            for switch in switches if switch not in named]


def _party_problems(path: Path, roles: set[str]) -> list[Problem]:
    from pathways_engine.errors import DefinitionError
    from pathways_notifications.parties import load_parties
    from pathways_notifications.parties import unknown_role_problems

    try:
        return unknown_role_problems(load_parties(path), roles)
    except DefinitionError as exc:
        return exc.problems


def _actor_problems(path: Path, roles: set[str], parties: Path | None) -> list[Problem]:
    from pathways_engine.errors import DefinitionError
    from pathways_notifications.parties import load_parties

    from .actors import load_actors
    from .actors import organisation_problems
    from .actors import unknown_role_problems

    try:
        actors = load_actors(path)
    except DefinitionError as exc:
        return exc.problems
    problems = unknown_role_problems(actors, roles)
    if parties is not None:
        try:
            problems += organisation_problems(actors, set(load_parties(parties).by_id))
        except DefinitionError:
            pass  # reported with the parties file
    return problems
