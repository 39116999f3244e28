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


@dataclass
class ExpectedDeadline:
    name: str
    state: str | None
    due: str
    status: str = "pending"
    closed_at: dt.datetime | None = None
    fire_index: int = 0


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


def _close(expected: Expected, at: dt.datetime, state: str | None, how: str) -> None:
    for row in expected.deadlines:
        if row.status == "pending" and (state is None or row.state == state):
            if how == "met":
                row.status = "met" if at <= dt.datetime.fromisoformat(row.due) else "met_late"
            else:
                row.status = how
            row.closed_at = at


def _open(expected: Expected, effects: dict[str, Any]) -> None:
    for name, state, due in effects.get("opened", []):
        expected.deadlines.append(ExpectedDeadline(name, state, due))


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
    if entry.kind == "transition":
        _close(expected, entry.at, entry.from_state, "met")
    expected.state = entry.to_state
    if effects.get("completed"):
        expected.status = "completed"
        _close(expected, entry.at, None, "met")
    _open(expected, effects)


def _timer(expected: Expected, entry: Any, effects: Effects, changes: Effects) -> None:
    row = next((d for d in expected.deadlines
                if d.name == effects.get("deadline") and d.status == "pending"), None)
    if row is not None:
        row.fire_index = int(effects.get("index", row.fire_index)) + 1
        if effects.get("timed_out"):
            row.status, row.closed_at = "timed_out", entry.at


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
    role, party = effects["assigned"]
    expected.assigned[role] = party


_APPLY = {
    "start": _step, "transition": _step, "timer": _timer, "migration": _migration,
    "notification_queued": _queued, "notification_cancelled": _cancelled,
    "notification_sent": _sent, "notification_failed": _failed,
    "notification_retried": _retried, "consent": _consent, "consent_withdrawn": _withdrawn,
    "assignment": _assignment,
}
