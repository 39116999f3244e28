"""The parties file's format, in pydantic: what `load_parties` checks a file against.

Apart from parties.py so that a command whose parties file passed before does not import
pydantic (pathways_engine definition/files.py, `load_checked`). The objects messages are
addressed with are parties.py's.
"""

from __future__ import annotations

import re
from typing import Annotated
from typing import Literal

from pathways_engine.areas import AREA_PATTERN
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
