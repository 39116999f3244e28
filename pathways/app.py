"""The composition root: the only place that knows the engine, notifications and settings."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from pathways_engine import Database
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.ports import Clock
from pathways_engine.ports import MessageComposer
from pathways_engine.ports import NoComposer
from pathways_engine.ports import SystemClock
from pathways_engine.store.database import Access

from .config import Settings

if TYPE_CHECKING:
    from pathways_engine.loader import Definition
    from pathways_engine.ports import NotificationRequest
    from pathways_engine.store.models import Instance
    from pathways_engine.store.models import Subject
    from pathways_notifications.parties import Parties
    from sqlalchemy.orm import Session

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
        return Database(self.settings.database_url, access=self.access)

    @cached_property
    def registry(self) -> Registry:
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
        return Composer(self.parties)

    @cached_property
    def actors(self) -> Actors:
        from pathways_engine.errors import NotAuthorized

        from .actors import load_actors

        if self.settings.actors is None:
            raise NotAuthorized("no actors file, so nobody may act: give --actors FILE or set "
                                "PATHWAYS_ACTORS (the deployment's list of who may act in which "
                                "role; the demo's is used only by `pathways demo`)")
        return load_actors(self.settings.actors)

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
        return PathwayEngine(self.db, self.registry, clock=self.clock,
                             composer=_ComposerOnFirstUse(self))

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()


class _ComposerOnFirstUse:
    """Builds the Jinja2 composer only when a step really queues a message (fast `show`)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def compose(self, session: Session, definition: Definition, instance: Instance,
                subject: Subject, request: NotificationRequest) -> int:
        return self.app.composer.compose(session, definition, instance, subject, request)
