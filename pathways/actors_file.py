"""The actors file's format, in pydantic: what `load_actors` checks a file against.

Apart from actors.py so that a command whose actors file passed before does not import
pydantic (definition/files.py, `load_checked`). The objects the CLI uses are actors.py's.
"""

from __future__ import annotations

from typing import Annotated
from typing import Literal

from pathways_engine.areas import AREA_PATTERN
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import StringConstraints

ACTOR_ID = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=ACTOR_ID)
    name: str = Field(min_length=1)
    organisation: str | None = None
    roles: list[str] = Field(min_length=1)
    areas: list[Annotated[str, StringConstraints(pattern=AREA_PATTERN)]] | None = None
    may: list[Literal["correct", "undo", "withdraw"]] = Field(
        default_factory=list, description="Acts beyond the pathway's own steps this actor may "
        "do: correct entered fields, undo a step, withdraw a pathway.")


class ActorsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    actors: list[Actor]
