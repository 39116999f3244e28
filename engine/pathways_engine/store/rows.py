"""Rows as plain objects: what the store reads and the step path changes before it writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from operator import attrgetter
from typing import Any
from typing import Protocol


@dataclass(slots=True)
class InstanceRow:
    """One pathway instance; a step changes a copy and writes it back version-checked."""

    id: str
    pathway_id: str
    pathway_version: int
    content_hash: str
    subject_id: int
    state: str
    status: str
    data: dict[str, Any]
    version: int
    audit_head: str
    audit_seq: int
    started_at: dt.datetime
    state_entered_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    area: str | None
    parent_id: str | None = None
    handover: str | None = None

    def copy(self) -> InstanceRow:
        # positional, through one attrgetter: dataclasses.replace costs a sweep ~5 % (bench/)
        copied = InstanceRow(*_INSTANCE_VALUES(self))
        copied.data = dict(self.data)
        return copied

    def values(self) -> dict[str, Any]:
        return dict(zip(INSTANCE_COLUMNS, _INSTANCE_VALUES(self), strict=True))


INSTANCE_COLUMNS = tuple(f.name for f in fields(InstanceRow))
_INSTANCE_VALUES = attrgetter(*INSTANCE_COLUMNS)


class Head(Protocol):
    """Where an instance's audit trail ends; an entry appended moves it."""

    id: str
    audit_seq: int
    audit_head: str


@dataclass(slots=True)
class TrailHead:
    id: str
    audit_seq: int
    audit_head: str


@dataclass(frozen=True, slots=True)
class SubjectRow:
    id: int
    ref: str
    birth_date: dt.date | None
    name: str | None = None
    personal_id: str | None = None


@dataclass(slots=True)
class DeadlineRow:
    """One deadline and its wake-ups; `id` is None until it is written."""

    instance_id: str
    name: str
    state: str | None
    responsible: str | None
    started_at: dt.datetime
    due_at: dt.datetime
    status: str
    closed_at: dt.datetime | None
    rule: dict[str, Any]
    fires: list[tuple[str, dt.datetime]]
    fire_index: int = 0
    id: int | None = None
    met_by: str | None = None
    cancelled_by: str | None = None
    window_start: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    paused_seconds: int = 0
    extensions: int = 0
    occurrence: int = 1
    changed: bool = field(default=False, compare=False)
    # what `wide()` was when the row was read: a row whose only change since is that a
    # wake-up fired (each row of a sweep) is written with two columns, not nine (writes.py)
    loaded: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def wide(self) -> tuple[Any, ...]:
        """The written columns besides fire_index and next_fire_at."""
        return (self.status, self.closed_at, self.due_at, tuple(self.fires), self.paused_at,
                self.paused_seconds, self.extensions)

    @property
    def only_fired(self) -> bool:
        return self.loaded is not None and self.loaded == self.wide()

    @property
    def next_fire_at(self) -> dt.datetime | None:
        if self.status != "pending" or self.paused_at is not None or \
                self.fire_index >= len(self.fires):
            return None
        return self.fires[self.fire_index][1]

    def marked(self, happening: str, markers: str | None) -> bool:
        return markers is not None and f",{happening}," in markers

    def values(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "name": self.name, "state": self.state,
                "responsible": self.responsible, "started_at": self.started_at,
                "due_at": self.due_at, "status": self.status, "closed_at": self.closed_at,
                "rule": self.rule, "fires": [[k, t.isoformat()] for k, t in self.fires],
                "fire_index": self.fire_index, "next_fire_at": self.next_fire_at,
                "met_by": self.met_by, "cancelled_by": self.cancelled_by,
                "window_start": self.window_start, "paused_at": self.paused_at,
                "paused_seconds": self.paused_seconds, "extensions": self.extensions,
                "occurrence": self.occurrence}


def fires_from_json(value: Any) -> list[tuple[str, dt.datetime]]:
    return [(str(kind), dt.datetime.fromisoformat(at)) for kind, at in value or []]


# an active consent or statutory basis: (id, sector, basis, reference)
ConsentRow = tuple[int, str, str, str]


@dataclass(frozen=True, slots=True)
class Loaded:
    """An instance as the step path reads it, with what its messages need."""

    instance: InstanceRow
    subject: SubjectRow
    assigned: dict[str, str]  # role -> party
    consents: list[ConsentRow]
    subject_assigned: dict[str, str] = field(default_factory=dict)  # for all its pathways


def legal_bases(rows: list[ConsentRow]) -> dict[str, str]:
    """sector -> "basis: reference" of the newest active consent or statutory basis."""
    newest: dict[str, tuple[int, str]] = {}
    for consent_id, sector, basis, reference in rows:
        if sector not in newest or consent_id > newest[sector][0]:
            newest[sector] = (consent_id, f"{basis}: {reference}")
    return {sector: text for sector, (_, text) in newest.items()}
