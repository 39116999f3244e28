"""Where the database, the definitions and the deployment files are: flags, environment, defaults.

The shipped `definitions/` folder carries a demo deployment (`actors.yaml`, `parties.yaml`)
so the README's examples run in a checkout. An installed package never uses those two files
unless asked: outside the checkout, acting commands need `--actors`/`PATHWAYS_ACTORS`, so demo
people can never authorize or route a real deployment. `pathways demo` names them explicitly.

A deployment may describe itself in `/etc/pathways/deployment.yaml` (operations write it;
`$PATHWAYS_DEPLOYMENT` names another file only where that one does not exist, as in tests):

```yaml
actors: /srv/pathways/actors.yaml    # who may act (relative paths: beside this file)
parties: /srv/pathways/parties.yaml  # who receives messages
lock_actors: true                    # --actors and PATHWAYS_ACTORS may not name another file
switches: [dk_l45]                   # rules not yet in force that this deployment applies
```
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
DEPLOYMENT_ENV = "PATHWAYS_DEPLOYMENT"
CASE_URL_ENV = "PATHWAYS_CASE_URL"
SYSTEM_DEPLOYMENT = Path("/etc/pathways/deployment.yaml")
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
    switches: tuple[str, ...] = ()  # the deployment's rule switches (deadline variants)
    case_url: str | None = None  # messages link here, e.g. https://sag.example.dk/{instance}

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
        deployment = load_deployment()
        switches: tuple[str, ...] = ()
        case_url = os.environ.get(CASE_URL_ENV) or None
        if case_url is not None:
            _check_case_url(Path(f"${CASE_URL_ENV}"), case_url)
        if deployment is not None:
            case_url = deployment.case_url or case_url
            actors = deployment.locked_actors(actors) or actors or deployment.actors
            parties = parties or (None if os.environ.get(PARTIES_ENV) else deployment.parties)
            switches = deployment.switches
        return cls(url, paths, _deployment_file(parties, PARTIES_ENV, paths, "parties.yaml"),
                   _deployment_file(actors, ACTORS_ENV, paths, "actors.yaml"), switches,
                   case_url)

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


@dataclass(frozen=True)
class Deployment:
    path: Path
    actors: Path | None
    parties: Path | None
    lock_actors: bool
    switches: tuple[str, ...] = ()
    case_url: str | None = None

    def locked_actors(self, given: Path | None) -> Path | None:
        """The locked actors file, refusing a flag or environment that names another."""
        if not self.lock_actors:
            return None
        from pathways_engine.errors import NotAuthorized

        wanted = given or (Path(os.environ[ACTORS_ENV]) if os.environ.get(ACTORS_ENV) else None)
        if self.actors is None:
            raise NotAuthorized(f"the deployment ({self.path}) locks the actors file but names "
                                "none: ask operations to set `actors:` in it")
        if wanted is not None and wanted.resolve() != self.actors.resolve():
            raise NotAuthorized(f"the deployment ({self.path}) locks the actors file to "
                                f"{self.actors}; --actors and PATHWAYS_ACTORS cannot change who "
                                "may act")
        return self.actors


def deployment_path() -> Path | None:
    """The system's deployment file wins: it cannot be switched off from a shell."""
    if SYSTEM_DEPLOYMENT.is_file():
        return SYSTEM_DEPLOYMENT
    named = os.environ.get(DEPLOYMENT_ENV)
    return Path(named) if named else None


def load_deployment() -> Deployment | None:
    path = deployment_path()
    if path is None:
        return None
    from typing import Annotated

    from pathways_engine.definition.files import load_model
    from pydantic import BaseModel
    from pydantic import ConfigDict
    from pydantic import Field

    class DeploymentFile(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        actors: str | None = None
        parties: str | None = None
        lock_actors: bool = False
        switches: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] = []
        case_url: Annotated[str, Field(pattern=r"^https://[^\s]+$")] | None = None

    parsed, _ = load_model(path, DeploymentFile)

    def beside(name: str | None) -> Path | None:
        return None if name is None else (path.parent / name if not Path(name).is_absolute()
                                          else Path(name))

    if parsed.case_url is not None:
        _check_case_url(path, parsed.case_url)
    return Deployment(path, beside(parsed.actors), beside(parsed.parties), parsed.lock_actors,
                      tuple(parsed.switches), parsed.case_url)


def _check_case_url(path: Path, url: str) -> None:
    """Only {instance} and {subject} may be filled in: a message must not fail to render."""
    import string

    from pathways_engine.errors import ConfigError

    try:
        names = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"{path}: case_url {url!r}: {exc}") from None
    if not names <= {"instance", "subject"}:
        raise ConfigError(f"{path}: case_url may use {{instance}} and {{subject}} only, not "
                          f"{', '.join(sorted(names - {'instance', 'subject'}))}")
