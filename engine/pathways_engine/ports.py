"""The engine's ports: the clock it is given and the composer it hands notifications to.

The engine never reads the wall clock itself (tests and `--now` drive time) and never
renders or delivers a message: it asks a `MessageComposer` to write outbox rows inside the
same transaction as the change that caused them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol

from sqlalchemy.orm import Session

from .loader import Definition
from .store.models import Instance
from .store.models import Subject


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FixedClock:
    """A clock tests and `--now` set by hand."""

    current: dt.datetime

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, delta: dt.timedelta) -> None:
        self.current = self.current + delta


@dataclass(frozen=True)
class NotificationRequest:
    """One `notifications:` entry of a definition that has come due for one instance."""

    template: str
    roles: tuple[str, ...]
    trigger: str  # started | enter | event | reminder | due | escalation | timeout
    name: str  # the state, event or deadline name
    at: dt.datetime
    cause_key: str  # unique per cause: makes the outbox write idempotent
    extra: dict[str, Any] = field(default_factory=dict)


class MessageComposer(Protocol):
    """Renders and queues messages. Raises NotificationError when a message cannot be made."""

    def compose(self, session: Session, definition: Definition, instance: Instance,
                subject: Subject, request: NotificationRequest) -> int:
        """Write outbox rows for `request` in `session`; return how many were written."""
        ...


class NoComposer:
    """Used where no notifications are wanted (the engine alone, some tests)."""

    def compose(self, session: Session, definition: Definition, instance: Instance,
                subject: Subject, request: NotificationRequest) -> int:
        return 0
