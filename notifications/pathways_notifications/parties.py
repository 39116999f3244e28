"""The deployment's parties file: which organisation or person receives messages for a role.

```yaml
areas: [norddjurs, syddjurs]  # optional: the municipalities or regions `--area` may name
parties:
  - id: ppr_norddjurs
    roles: [ppr]
    name: PPR Norddjurs
    email: ppr@norddjurs.dk
    channel: email          # email | file | console
    language: da
    areas: [norddjurs]      # optional: serves only instances started with --area norddjurs
```
A recipient is chosen in this order: the party `pathways assign` named for the instance; the
first party for the role whose `areas` include the instance's area (its municipality or region);
the first party for the role without `areas` (the deployment's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from pathways_engine import areas as area_rules
from pathways_engine.definition import files
from pathways_engine.definition.files import load_checked
from pathways_engine.definition.files import roles_by_line
from pathways_engine.definition.yamlsafe import Document
from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem
from pathways_engine.errors import did_you_mean


@dataclass(frozen=True)
class Party:
    """One entry of the file, as parties_file.Party validated it (tests check they agree)."""

    id: str
    roles: list[str]
    name: str
    email: str | None = None
    channel: str = "email"
    language: str = "en"
    areas: list[str] = field(default_factory=list)


def _entries(document: Document) -> tuple[list[str], list[Party]]:
    areas = document.data.get("areas", [])
    if not isinstance(areas, list):
        raise TypeError("areas")
    return list(areas), [Party(**entry) for entry in document.data["parties"]]


def _format() -> type[Any]:
    from .parties_file import PartiesFile

    return PartiesFile


# the modules whose checks a kept pass stands for (files.load_checked)
RULES = (str(Path(__file__).with_name("parties_file.py")), area_rules.__file__, files.__file__)


@dataclass(frozen=True)
class Parties:
    path: str
    by_id: dict[str, Party]
    line_of_role: dict[str, int]
    declared_areas: frozenset[str] = frozenset()

    def for_role(self, role: str, area: str | None = None) -> Party | None:
        """The area's own party for the role, else the role's default (a party without areas)."""
        candidates = [p for p in self.by_id.values() if role in p.roles]
        local = next((p for p in candidates if area is not None and area in p.areas), None)
        return local or next((p for p in candidates if not p.areas), None)

    @property
    def areas(self) -> set[str]:
        """The deployment's areas: the declared list, plus any a party serves."""
        return set(self.declared_areas) | {a for p in self.by_id.values() for a in p.areas}

    def get(self, party_id: str) -> Party | None:
        return self.by_id.get(party_id)


def load_parties(path: Path) -> Parties:
    (declared, parties), document = load_checked(path, _format, RULES, _entries)
    problems = []
    for i, party in enumerate(parties):
        if party.channel == "email" and not party.email:
            problems.append(Problem(document.path, document.line_of(("parties", i)),
                                    f"party {party.id!r} has channel email but no email address"))
        for j, area in enumerate(party.areas):
            if declared and area not in declared:
                problems.append(Problem(document.path, document.line_of(("parties", i, "areas", j)),
                                        f"party {party.id!r}: area {area!r} is not in `areas:`"
                                        f"{did_you_mean(area, declared)}"))
    if problems:
        raise DefinitionError(problems)
    return Parties(document.path, {p.id: p for p in parties},
                   roles_by_line(document, "parties", parties), frozenset(declared))


def unknown_role_problems(parties: Parties, known_roles: set[str]) -> list[Problem]:
    return [Problem(parties.path, line, f"unknown role {role!r}: no shipped pathway has it")
            for role, line in sorted(parties.line_of_role.items()) if role not in known_roles]
