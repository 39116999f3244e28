"""Where the database and the definitions are: flags, then environment, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATABASE_ENV = "PATHWAYS_DATABASE_URL"
DEFINITIONS_ENV = "PATHWAYS_DEFINITIONS"
PARTIES_ENV = "PATHWAYS_PARTIES"
ACTORS_ENV = "PATHWAYS_ACTORS"
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
    actors: Path | None = None

    @classmethod
    def resolve(cls, db: str | None, definitions: tuple[Path, ...],
                parties: Path | None = None, actors: Path | None = None) -> Settings:
        url = db or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE
        if definitions:
            paths = definitions
        elif os.environ.get(DEFINITIONS_ENV):
            paths = tuple(Path(p) for p in os.environ[DEFINITIONS_ENV].split(os.pathsep) if p)
        else:
            paths = (shipped_definitions(),)
        return cls(url, paths, _deployment_file(parties, PARTIES_ENV, paths, "parties.yaml"),
                   _deployment_file(actors, ACTORS_ENV, paths, "actors.yaml"))


def _deployment_file(given: Path | None, env: str, definitions: tuple[Path, ...],
                     name: str) -> Path | None:
    """The flag, else the environment, else `name` beside the first definitions folder."""
    if given is not None:
        return given
    if os.environ.get(env):
        return Path(os.environ[env])
    folder = definitions[0] if definitions and definitions[0].is_dir() else None
    default = folder / name if folder is not None else None
    return default if default is not None and default.is_file() else None
