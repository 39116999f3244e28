"""The engine's ports: the clock it is given and the composer it hands notifications to.

The engine never reads the wall clock itself (tests and `--now` drive time) and never
renders or delivers a message: it asks a `MessageComposer` for the rows to queue and writes
them in the same transaction as the change that caused them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

if TYPE_CHECKING:
    from .definition.loader import Definition
    from .store.rows import InstanceRow
    from .store.rows import SubjectRow


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
    trigger: str  # started | enter | event | reminder | due | escalation | timeout | preview
    name: str  # the state, event or deadline name
    at: dt.datetime
    cause_key: str  # unique per cause: a message's idempotency key is this plus its role
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseView:
    """What a composer may know of an instance: read under the step's lock, never written."""

    definition: Definition
    instance: InstanceRow
    subject: SubjectRow
    assigned: Mapping[str, str]  # role -> party named for this instance
    bases: Mapping[str, str]  # sector -> "consent: ..." / "statutory: ..." (legal basis)


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one recipient, ready to be queued."""

    idempotency_key: str
    message_id: str
    role: str
    party: str | None
    channel: str
    address: str | None
    language: str
    template: str
    subject: str
    body_text: str
    body_html: str | None
    personal_data: bool
    legal_basis: str | None


class MessageComposer(Protocol):
    """Renders messages. Raises NotificationError when a message cannot be made."""

    def compose(self, case: CaseView, request: NotificationRequest) -> list[Outgoing]:
        """The messages `request` sends, one per recipient; the engine writes them."""
        ...


class NoComposer:
    """Used where no notifications are wanted (the engine alone, some tests)."""

    def compose(self, case: CaseView, request: NotificationRequest) -> list[Outgoing]:
        return []
