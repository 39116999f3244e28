"""Where the database and the definitions are: flags, then environment, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATABASE_ENV = "PATHWAYS_DATABASE_URL"
DEFINITIONS_ENV = "PATHWAYS_DEFINITIONS"
PARTIES_ENV = "PATHWAYS_PARTIES"
DEFAULT_DATABASE = "sqlite:///pathways.db"


def shipped_definitions() -> Path:
    """The definitions folder that ships with pathways (repo checkout or installed wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "definitions", here / "_definitions"):
        if candidate.is_dir():
            return candidate
    return here.parent / "definitions"


@dataclass(frozen=True)
class Settings:
    database_url: str
    definitions: tuple[Path, ...]
    parties: Path | None

    @classmethod
    def resolve(cls, db: str | None, definitions: tuple[Path, ...],
                parties: Path | None = None) -> Settings:
        url = db or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE
        if definitions:
            paths = definitions
        elif os.environ.get(DEFINITIONS_ENV):
            paths = tuple(Path(p) for p in os.environ[DEFINITIONS_ENV].split(os.pathsep) if p)
        else:
            paths = (shipped_definitions(),)
        if parties is None and os.environ.get(PARTIES_ENV):
            parties = Path(os.environ[PARTIES_ENV])
        if parties is None:
            default = paths[0] / "parties.yaml" if paths and paths[0].is_dir() else None
            parties = default if default is not None and default.is_file() else None
        return cls(url, paths, parties)
