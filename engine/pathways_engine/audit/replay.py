"""What an instance's state tables must hold, derived from its audit trail alone.

`audit verify` compares this with the rows: an instance whose state, data, deadlines,
consents, assignments or messages were edited without going through a step no longer matches
the trail it claims. Entries written before 0.2 carry no effects; instances that began then
are checked by their chain only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pathways_engine.rules.status import met_status


@dataclass
class ExpectedDeadline:
    name: str
    state: str | None
    due: str
    status: str = "pending"
    closed_at: dt.datetime | None = None
    fire_index: int = 0
    met_by: str | None = None
    cancelled_by: str | None = None
    window_start: dt.datetime | None = None
    occurrence: int = 1
    paused_at: dt.datetime | None = None
    paused_seconds: int = 0
    extensions: int = 0

    def met(self, at: dt.datetime) -> str:
        return met_status(at, dt.datetime.fromisoformat(self.due), self.window_start,
                          self.paused_at)


@dataclass
class Expected:
    state: str | None = None
    status: str = "active"
    data: dict[str, Any] = field(default_factory=dict)
    area: str | None = None
    version: int | None = None
    content_hash: str | None = None
    deadlines: list[ExpectedDeadline] = field(default_factory=list)
    consents: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    consent_rows: int = 0
    assigned: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # idempotency key -> digest
    cancelled: set[str] = field(default_factory=set)  # keys
    sent: set[int] = field(default_factory=set)  # outbox ids
    failed: set[int] = field(default_factory=set)


def replayable(first: Any) -> bool:
    return first is not None and first.effects is not None


def _pending(expected: Expected) -> list[ExpectedDeadline]:
    return [row for row in expected.deadlines if row.status == "pending"]


def _close(expected: Expected, at: dt.datetime, state: str | None, how: str) -> None:
    """The step path's closes (runtime/step.py), in its order."""
    for row in _pending(expected):
        if how == "state" and (row.state != state or row.met_by is not None):
            continue
        if how in ("state", "end"):
            row.status = "unmet" if how == "end" and row.met_by is not None else row.met(at)
        else:
            row.status = how
        row.closed_at = at


def _happened(expected: Expected, at: dt.datetime, happening: str) -> None:
    marker = f",{happening},"
    for row in _pending(expected):
        if row.met_by is not None and marker in row.met_by:
            row.status, row.closed_at = row.met(at), at
    for row in _pending(expected):
        if row.cancelled_by is not None and marker in row.cancelled_by:
            row.status, row.closed_at = "cancelled", at


def _open(expected: Expected, effects: dict[str, Any]) -> None:
    for name, state, due, *extra in effects.get("opened", []):
        more = extra[0] if extra else {}
        window = more.get("window_start")
        expected.deadlines.append(ExpectedDeadline(
            name, state, due, met_by=more.get("met_by"), cancelled_by=more.get("cancelled_by"),
            window_start=dt.datetime.fromisoformat(window) if window else None,
            occurrence=int(more.get("occurrence", 1))))


def replay(entries: list[Any]) -> Expected:
    """The state the entries (in order) leave behind; see the module docstring."""
    expected = Expected()
    for entry in entries:
        kind = "timer" if entry.kind.startswith("timer_") else entry.kind
        apply = _APPLY.get(kind)
        if apply is not None:
            apply(expected, entry, entry.effects or {}, entry.changes or {})
    return expected


Effects = dict[str, Any]


def _step(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    for name, change in changes.items():
        if name == "area":
            expected.area = change[1]
        else:
            expected.data[name] = change[1]
    for happening in effects.get("happened", []):
        _happened(expected, entry.at, happening)
    if entry.kind == "transition":
        _close(expected, entry.at, entry.from_state, "state")
    expected.state = entry.to_state
    if effects.get("completed"):
        expected.status = "completed"
        _close(expected, entry.at, None, "end")
    _open(expected, effects)


def _row(expected: Expected, effects: Effects) -> ExpectedDeadline | None:
    return next((d for d in _pending(expected) if d.name == effects.get("deadline")), None)


def _clock(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    """An extension, pause or resume: the results are recorded, the replay takes them."""
    row = _row(expected, effects)
    if row is None:
        return
    if "due" in effects:
        row.due = effects["due"]
    row.fire_index = int(effects.get("fire_index", row.fire_index))
    row.extensions = int(effects.get("extensions", row.extensions))
    row.paused_seconds = int(effects.get("paused_seconds", row.paused_seconds))
    row.paused_at = entry.at if entry.kind == "deadline_paused" else None


def _timer(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    row = _row(expected, effects)
    if row is not None:
        row.fire_index = int(effects.get("index", row.fire_index)) + 1
        if effects.get("timed_out"):
            row.status, row.closed_at = "timed_out", entry.at


def _correction(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    for name, change in changes.items():
        expected.data[name] = change[1]
    for name, state, due, fire_index in effects.get("moved", []):
        row = next((d for d in _pending(expected) if (d.name, d.state) == (name, state)), None)
        if row is not None:
            row.due, row.fire_index = due, int(fire_index)


def _undo(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    expected.state, expected.status = entry.to_state, "active"
    for name, change in changes.items():
        if name in ("undid", "state", "status"):
            continue
        if change[1] is None:
            expected.data.pop(name, None)
        else:
            expected.data[name] = change[1]
    for name, state in effects.get("cancelled_deadlines", []):
        for row in _pending(expected):
            if (row.name, row.state) == (name, state):
                row.status, row.closed_at = "cancelled", entry.at
    undone = dt.datetime.fromisoformat(effects["undone_at"])
    for name, state, fire_index in effects.get("reopened", []):
        reopened = next((d for d in expected.deadlines if (d.name, d.state) == (name, state)
                        and d.status != "pending" and d.closed_at == undone), None)
        if reopened is not None:
            reopened.status, reopened.closed_at = "pending", None
            reopened.fire_index = int(fire_index)
    expected.cancelled.update(effects.get("cancelled", []))


def _withdrawn_instance(expected: Expected, entry: Any, effects: Effects,
                        changes: Effects) -> None:
    _close(expected, entry.at, None, "cancelled")
    expected.status = "withdrawn"
    expected.cancelled.update(effects.get("cancelled", []))


def _migration(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    _close(expected, entry.at, None, "cancelled")
    expected.state = entry.to_state
    expected.version = changes.get("version", [None, None])[1]
    expected.content_hash = effects.get("definition")
    _open(expected, effects)


def _queued(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    for key, _role, _party, digest in effects.get("messages", []):
        expected.messages[key] = digest


def _cancelled(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    expected.cancelled.update(effects.get("cancelled", []))


def _sent(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    expected.sent.add(int(changes["message"]))


def _failed(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    expected.failed.add(int(changes["message"]))


def _retried(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    expected.failed.discard(int(changes["message"]))


def _consent(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    sector, basis, reference = effects["consent"]
    expected.consents[(sector, basis, reference)] += 1
    expected.consent_rows += 1


def _withdrawn(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    sector, basis = effects["withdrawn"]
    for key in [k for k in expected.consents if k[0] == sector and k[1] == basis]:
        del expected.consents[key]


def _assignment(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    if "assigned" not in effects:  # for the child: the subject's row, not this instance's
        return
    role, party = effects["assigned"]
    expected.assigned[role] = party


_APPLY = {
    "start": _step, "transition": _step, "internal": _step, "withdrawn": _withdrawn_instance,
    "correction": _correction, "undo": _undo, "timer": _timer, "migration": _migration,
    "notification_queued": _queued, "notification_cancelled": _cancelled,
    "notification_sent": _sent, "notification_failed": _failed,
    "notification_retried": _retried, "consent": _consent, "consent_withdrawn": _withdrawn,
    "assignment": _assignment, "deadline_extended": _clock, "deadline_paused": _clock,
    "deadline_resumed": _clock,
}
