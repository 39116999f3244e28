"""The composition root: the only place that knows the engine, notifications and settings."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from pathways_engine.ports import Clock
from pathways_engine.ports import MessageComposer
from pathways_engine.ports import NoComposer
from pathways_engine.ports import SystemClock

from .config import Settings

if TYPE_CHECKING:  # the engine is imported when a command first needs it (fast --help)
    from pathways_engine import Database
    from pathways_engine import PathwayEngine
    from pathways_engine import Registry
    from pathways_engine.ports import CaseView
    from pathways_engine.ports import NotificationRequest
    from pathways_engine.ports import Outgoing
    from pathways_engine.store.database import Access
    from pathways_notifications.parties import Parties

    from .actors import Actors


class App:
    """Lazily opens what a command needs, so `pathways --help` touches no database."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        # what opening the database may do; commands that write or create say so first
        self.access: Access = "read"

    def may(self, access: Access) -> App:
        """Declare what this command may do to the database before it is opened."""
        self.access = access
        return self

    @cached_property
    def db(self) -> Database:
        from pathways_engine import Database

        return Database(self.settings.database_url, access=self.access,
                        audit_key=audit_key_from_env())

    @cached_property
    def registry(self) -> Registry:
        from pathways_engine import Registry

        return Registry.lazy(self.settings.definitions)

    @cached_property
    def parties(self) -> Parties | None:
        from pathways_notifications.parties import load_parties

        return load_parties(self.settings.parties) if self.settings.parties else None

    @cached_property
    def composer(self) -> MessageComposer:
        try:
            from pathways_notifications.composer import Composer
        except ImportError:  # pragma: no cover - notifications ship with pathways
            return NoComposer()
        return Composer(self.parties, self.settings.case_url)

    @cached_property
    def actors(self) -> Actors:
        from pathways_engine.errors import NotAuthorized

        from .actors import load_actors

        if self.settings.actors is None:
            raise NotAuthorized("no actors file, so nobody may act: give --actors FILE or set "
                                "PATHWAYS_ACTORS (the deployment's list of who may act in which "
                                "role; the demo's is used only by `pathways demo`)")
        return load_actors(self.settings.actors, self.parties)

    def check_area(self, area: str | None) -> None:
        """Refuse an area the parties file does not know, so a typo does not silently reroute."""
        from pathways_engine.areas import check_area
        from pathways_engine.errors import InvalidArgument
        from pathways_engine.errors import did_you_mean

        check_area(area)
        known: set[str] = self.parties.areas if self.parties is not None else set()
        if area is not None and known and area not in known:
            raise InvalidArgument(f"--area {area!r} is not an area of the parties file "
                                  f"{self.settings.parties}{did_you_mean(area, known)}")

    @cached_property
    def engine(self) -> PathwayEngine:
        from pathways_engine import PathwayEngine

        return PathwayEngine(self.db, self.registry, clock=self.clock,
                             composer=_ComposerOnFirstUse(self), switches=self.settings.switches)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()


class _ComposerOnFirstUse:
    """Builds the Jinja2 composer only when a step really queues a message (fast `show`)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def compose(self, case: CaseView, request: NotificationRequest) -> list[Outgoing]:
        return self.app.composer.compose(case, request)


def audit_key_from_env() -> bytes | None:
    """The deployment's audit key (PATHWAYS_AUDIT_KEY), at least 16 characters if set."""
    import os

    from pathways_engine.audit.chain import KEY_ENV
    from pathways_engine.errors import ConfigError

    text = os.environ.get(KEY_ENV)
    if not text:
        return None
    if len(text) < 16:
        raise ConfigError(f"{KEY_ENV} is too short to be a secret: use at least 16 characters "
                          "(e.g. the output of `openssl rand -hex 32`)")
    return text.encode("utf-8")
