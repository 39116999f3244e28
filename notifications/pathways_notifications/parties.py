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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from typing import Literal

from pathways_engine.areas import AREA_PATTERN
from pathways_engine.definition.files import load_model
from pathways_engine.definition.files import roles_by_line
from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem
from pathways_engine.errors import did_you_mean
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import StringConstraints
from pydantic import field_validator

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class Party(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,127}$")
    roles: list[str] = Field(min_length=1)
    name: str = Field(min_length=1)
    email: str | None = None
    channel: Literal["email", "file", "console"] = "email"
    language: Literal["da", "nb", "sv", "en"] = "en"
    areas: list[Annotated[str, StringConstraints(pattern=AREA_PATTERN)]] = []

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not a valid email address")
        return value


class PartiesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    areas: list[Annotated[str, StringConstraints(pattern=AREA_PATTERN)]] = []
    parties: list[Party]


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
    parsed, document = load_model(path, PartiesFile)
    problems = []
    for i, party in enumerate(parsed.parties):
        if party.channel == "email" and not party.email:
            problems.append(Problem(document.path, document.line_of(("parties", i)),
                                    f"party {party.id!r} has channel email but no email address"))
        for j, area in enumerate(party.areas):
            if parsed.areas and area not in parsed.areas:
                problems.append(Problem(document.path, document.line_of(("parties", i, "areas", j)),
                                        f"party {party.id!r}: area {area!r} is not in `areas:`"
                                        f"{did_you_mean(area, parsed.areas)}"))
    if problems:
        raise DefinitionError(problems)
    return Parties(document.path, {p.id: p for p in parsed.parties},
                   roles_by_line(document, "parties", parsed.parties),
                   frozenset(parsed.areas))


def unknown_role_problems(parties: Parties, known_roles: set[str]) -> list[Problem]:
    return [Problem(parties.path, line, f"unknown role {role!r}: no shipped pathway has it")
            for role, line in sorted(parties.line_of_role.items()) if role not in known_roles]
