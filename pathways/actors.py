"""The deployment's actors file: which person may act in which roles, for which organisation.

```yaml
actors:
  - id: anne.ppr                # what `--as` names
    name: Anne Holm
    organisation: ppr_norddjurs # a party id of the parties file (optional)
    roles: [ppr]                # roles `--role` may name for this actor
    areas: [norddjurs]          # optional: the municipalities/regions she works for
```
The CLI refuses `--as A --role R` unless A holds R; the pathway definition then decides which
roles may send each event. An actor works for the areas listed, else for the areas of its
organisation's party, else for every area; acting on or reading the personal data of an
instance of another area is refused. A missing actors file refuses every acting command: a
deployment has to say who may act (fail closed). The Python API trusts its caller (see
RELIABILITY.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from pathways_engine import areas as area_rules
from pathways_engine.definition import files
from pathways_engine.definition.files import load_checked
from pathways_engine.definition.files import roles_by_line
from pathways_engine.definition.yamlsafe import Document
from pathways_engine.errors import DefinitionError
from pathways_engine.errors import NotAuthorized
from pathways_engine.errors import Problem
from pathways_engine.errors import did_you_mean

if TYPE_CHECKING:
    from pathways_notifications.parties import Parties


@dataclass(frozen=True)
class Actor:
    """One entry of the file, as actors_file.Actor validated it (tests check they agree)."""

    id: str
    name: str
    roles: list[str]
    organisation: str | None = None
    areas: list[str] | None = None
    may: list[str] = field(default_factory=list)


def _entries(document: Document) -> list[Actor]:
    return [Actor(**entry) for entry in document.data["actors"]]


def _format() -> type[Any]:
    from .actors_file import ActorsFile

    return ActorsFile


# the modules whose checks a kept pass stands for (files.load_checked)
RULES = (str(Path(__file__).with_name("actors_file.py")), area_rules.__file__, files.__file__)


@dataclass(frozen=True)
class Actors:
    path: str
    by_id: dict[str, Actor]
    line_of_role: dict[str, int]
    line_of_actor: dict[str, int]
    scopes: dict[str, frozenset[str] | None]  # actor -> the areas it works for (None: all)

    def scope(self, actor_id: str) -> frozenset[str] | None:
        return self.scopes.get(actor_id)

    def check_area(self, actor_id: str, area: str | None, instance_id: str | None = None) -> None:
        """Refuse (exit 4) unless the actor works for `area`."""
        scope = self.scopes.get(actor_id)
        if scope is None or (area is not None and area in scope):
            return
        what = f"instance {instance_id}" if instance_id else "this case"
        raise NotAuthorized(f"actor {actor_id!r} works for {', '.join(sorted(scope))}; {what} "
                            f"belongs to {area or 'no area'}")

    def area_for_start(self, actor_id: str, area: str | None) -> str | None:
        """The area a start is for: the one given, or the actor's only area."""
        scope = self.scopes.get(actor_id)
        if area is None and scope is not None and len(scope) == 1:
            return next(iter(scope))
        if area is None and scope:
            raise NotAuthorized(f"actor {actor_id!r} works for {', '.join(sorted(scope))}: "
                                "give --area for the child's municipality or region")
        self.check_area(actor_id, area)
        return area

    def known(self, actor_id: str) -> Actor:
        actor = self.by_id.get(actor_id)
        if actor is None:
            raise NotAuthorized(f"--as {actor_id!r} is not in the actors file {self.path}"
                                f"{did_you_mean(actor_id, self.by_id)}")
        return actor

    def authorize(self, actor_id: str, role: str) -> Actor:
        """The actor, if it holds `role`; NotAuthorized otherwise."""
        actor = self.known(actor_id)
        if role not in actor.roles:
            raise NotAuthorized(f"actor {actor_id!r} does not hold role {role!r}; "
                                f"{actor_id} holds: {', '.join(actor.roles)}")
        return actor

    def permit(self, actor_id: str, act: str, role: str) -> Actor:
        """The actor, if the actors file lets it `act` (correct, undo, withdraw) in `role`."""
        actor = self.authorize(actor_id, role)
        if act not in actor.may:
            raise NotAuthorized(f"actor {actor_id!r} may not {act}: the actors file "
                                f"{self.path} does not list {act!r} under its `may:`")
        return actor

    def authorize_any(self, actor_id: str, roles: set[str]) -> str:
        """The first of `roles` the actor holds (for acts any party to the pathway may do)."""
        actor = self.known(actor_id)
        held = [r for r in actor.roles if r in roles]
        if not held:
            raise NotAuthorized(f"actor {actor_id!r} holds no role of this pathway "
                                f"({', '.join(sorted(roles))})")
        return held[0]


def load_actors(path: Path, parties: Parties | None = None) -> Actors:
    actors, document = load_checked(path, _format, RULES, _entries)
    problems, seen = [], set()
    for i, actor in enumerate(actors):
        if actor.id in seen:
            problems.append(Problem(document.path, document.line_of(("actors", i, "id")),
                                    f"actor {actor.id!r} is listed twice"))
        seen.add(actor.id)
    if problems:
        raise DefinitionError(problems)
    return Actors(document.path, {a.id: a for a in actors},
                  roles_by_line(document, "actors", actors),
                  {a.id: document.line_of(("actors", i)) for i, a in enumerate(actors)},
                  {a.id: _scope(a, parties) for a in actors})


def _scope(actor: Actor, parties: Parties | None) -> frozenset[str] | None:
    if actor.areas is not None:
        return frozenset(actor.areas)
    party = parties.get(actor.organisation) if parties and actor.organisation else None
    return frozenset(party.areas) if party is not None and party.areas else None


def unknown_role_problems(actors: Actors, known_roles: set[str]) -> list[Problem]:
    return [Problem(actors.path, line, f"unknown role {role!r}: no configured pathway has it")
            for role, line in sorted(actors.line_of_role.items()) if role not in known_roles]


def organisation_problems(actors: Actors, party_ids: set[str]) -> list[Problem]:
    return [Problem(actors.path, actors.line_of_actor[a.id],
                    f"actor {a.id!r}: organisation {a.organisation!r} is not a party of the "
                    f"parties file{did_you_mean(a.organisation, party_ids)}")
            for a in actors.by_id.values() if a.organisation and a.organisation not in party_ids]
