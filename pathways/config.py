"""Where the database, the definitions and the deployment files are: flags, environment, defaults.

The shipped `definitions/` folder carries a demo deployment (`actors.yaml`, `parties.yaml`)
so the README's examples run in a checkout. An installed package never uses those two files
unless asked: outside the checkout, acting commands need `--actors`/`PATHWAYS_ACTORS`, so demo
people can never authorize or route a real deployment. `pathways demo` names them explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path

DATABASE_ENV = "PATHWAYS_DATABASE_URL"
DEFINITIONS_ENV = "PATHWAYS_DEFINITIONS"
PARTIES_ENV = "PATHWAYS_PARTIES"
ACTORS_ENV = "PATHWAYS_ACTORS"
DEFAULT_DATABASE = "sqlite:///pathways.db"
_HERE = Path(__file__).resolve().parent
_INSTALLED_DEFINITIONS = _HERE / "_definitions"  # where the wheel puts definitions/


def shipped_definitions() -> Path:
    """The definitions folder that ships with pathways (repo checkout or installed wheel)."""
    for candidate in (_HERE.parent / "definitions", _INSTALLED_DEFINITIONS):
        if candidate.is_dir():
            return candidate
    return _HERE.parent / "definitions"


def is_installed_copy(folder: Path) -> bool:
    """True for the definitions an installed wheel carries (not a checkout, not a deployment's)."""
    try:
        return folder.resolve() == _INSTALLED_DEFINITIONS.resolve()
    except OSError:
        return False


def demo_file(name: str) -> Path:
    """The demo deployment's `actors.yaml` or `parties.yaml` (only `pathways demo` uses them)."""
    return shipped_definitions() / name


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

    def with_demo_deployment(self) -> Settings:
        """These settings, with the demo actors and parties where none were configured."""
        return replace(self, parties=self.parties or demo_file("parties.yaml"),
                       actors=self.actors or demo_file("actors.yaml"))


def _deployment_file(given: Path | None, env: str, definitions: tuple[Path, ...],
                     name: str) -> Path | None:
    """The flag, else the environment, else `name` beside the first definitions folder.

    The last default never applies to an installed package's own definitions: those files are
    demo data.
    """
    if given is not None:
        return given
    if os.environ.get(env):
        return Path(os.environ[env])
    folder = definitions[0] if definitions and definitions[0].is_dir() else None
    if folder is None or is_installed_copy(folder):
        return None
    default = folder / name
    return default if default.is_file() else None
