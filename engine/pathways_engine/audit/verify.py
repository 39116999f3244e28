"""`pathways audit verify`: every chain intact, every state table what its trail says.

Reads one snapshot (store/database.py `reading`), streams every table ordered by instance and
walks them together, so memory stays flat at any size. For each instance it reports the first
problem found, in this order: the chain (a missing, reordered or edited entry, or a head that
does not match), the keyed MACs (with the deployment key), a checkpoint taken earlier (a trail
cut back or rewritten since, an instance deleted), and the replay of the trail against the
instance row, its deadlines, consents, assignments and messages.

What it cannot see: an attacker who holds the audit key and the database can rewrite a tail
consistently after the newest checkpoint; without a key, whoever can write the database can
recompute hashes (the chain then proves nothing that a checkpoint does not). RELIABILITY.md
has the trust model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pathways_engine.errors import ConfigError
from pathways_engine.store import views
from pathways_engine.store.database import Database

from .chain import GENESIS
from .chain import KEY_ENV
from .chain import digest
from .chain import mac_matches
from .chain import message_digest
from .replay import Expected
from .replay import replay
from .replay import replayable

STATE_TABLES = ("deadlines", "consents", "assignments", "outbox")


@dataclass(frozen=True)
class ChainBreak:
    instance_id: str
    seq: int
    reason: str

    def __str__(self) -> str:
        where = f"audit entry {self.seq}: " if self.seq else ""
        return f"instance {self.instance_id}: {where}{self.reason}"


@dataclass
class Verification:
    instances: int = 0
    entries: int = 0
    replayed: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)


class KeyRequired(ConfigError):
    def __init__(self) -> None:
        super().__init__(f"this audit trail is keyed (its entries carry MACs): set {KEY_ENV} "
                         "to the deployment's audit key to verify it")


def verify_chain(instance_id: str, head: str, last_seq: int, entries: list[Any],
                 key: bytes | None) -> ChainBreak | None:
    """The first break in one instance's entries (in insertion order), or None."""
    expected_prev, expected_seq, keyed = GENESIS, 1, False
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainBreak(instance_id, expected_seq,
                              f"missing or reordered (found entry {entry.seq} next)")
        if entry.prev_hash != expected_prev:
            return ChainBreak(instance_id, entry.seq, "does not follow the previous entry")
        if digest(entry._mapping) != entry.hash:
            return ChainBreak(instance_id, entry.seq, "content was changed after it was written")
        keyed = keyed or entry.mac is not None
        if keyed:
            if key is None:
                raise KeyRequired()
            if not mac_matches(key, entry.hash, entry.mac):
                return ChainBreak(instance_id, entry.seq, "its MAC does not match the audit key: "
                                  "written or rewritten by someone without the key")
        expected_prev, expected_seq = entry.hash, expected_seq + 1
    if expected_seq - 1 != last_seq or expected_prev != head:
        return ChainBreak(instance_id, expected_seq,
                          f"missing (the trail ends before it; the instance records {last_seq})")
    return None


def _merged(stream: Iterator[tuple[str, list[Any]]]) -> Any:
    """A lookup that advances `stream` (ordered by instance id) as ids are asked in order."""
    current: list[Any] = [next(stream, None)]

    def rows_for(instance_id: str) -> list[Any]:
        while current[0] is not None and current[0][0] < instance_id:
            current[0] = next(stream, None)
        if current[0] is not None and current[0][0] == instance_id:
            return list(current[0][1])
        return []

    return rows_for


def verify(db: Database, instance_ids: list[str] | None = None,
           checkpoint: dict[str, tuple[int, str]] | None = None,
           on_instance: Callable[[int], object] | None = None) -> Verification:
    """Check every chain (or these instances') in one snapshot; the first break of each.
    `on_instance(1)` after each instance (a progress bar)."""
    key = db.audit_key
    result = Verification()
    with db.reading() as connection:
        entries = _merged(views.entries(connection, instance_ids))
        tables = {name: _merged(views.state_rows(connection, name, instance_ids))
                  for name in STATE_TABLES}
        seen: set[str] = set()
        for head in views.heads(connection, instance_ids):
            trail = entries(head.id)
            seen.add(head.id)
            result.instances += 1
            result.entries += len(trail)
            found = (verify_chain(head.id, head.audit_head, head.audit_seq, trail, key)
                     or _against_checkpoint(head, trail, checkpoint))
            if found is None and replayable(trail[0] if trail else None):
                result.replayed += 1
                found = _replayed(head, trail, {n: tables[n](head.id) for n in STATE_TABLES})
            if found:
                result.breaks.append(found)
            if on_instance is not None:
                on_instance(1)
    for instance_id in sorted(set(checkpoint or {}) - seen):
        if instance_ids is None or instance_id in instance_ids:
            result.breaks.append(ChainBreak(instance_id, 0, "in the checkpoint but missing from "
                                            "the database (deleted)"))
    result.breaks.sort(key=lambda b: b.instance_id)
    return result


def _against_checkpoint(head: Any, trail: list[Any],
                        checkpoint: dict[str, tuple[int, str]] | None) -> ChainBreak | None:
    if checkpoint is None or head.id not in checkpoint:
        return None
    seq, entry_hash = checkpoint[head.id]
    if head.audit_seq < seq:
        return ChainBreak(head.id, 0, f"the trail is shorter than the checkpoint "
                                      f"({head.audit_seq} < {seq}): entries were removed")
    if trail[seq - 1].hash != entry_hash:
        return ChainBreak(head.id, seq, "differs from the checkpoint: the trail was rewritten")
    return None


def _replayed(head: Any, trail: list[Any], rows: dict[str, list[Any]]) -> ChainBreak | None:
    expected = replay(trail)
    reason = (_instance_row(head, expected) or _deadlines(rows["deadlines"], expected)
              or _consents(rows["consents"], expected)
              or _assignments(rows["assignments"], expected)
              or _messages(rows["outbox"], expected))
    return ChainBreak(head.id, 0, reason) if reason else None


def _instance_row(head: Any, expected: Expected) -> str | None:
    if head.state != expected.state:
        return f"state {head.state!r}, its audit trail says {expected.state!r}"
    if head.status != expected.status:
        return f"status {head.status!r}, its audit trail says {expected.status!r}"
    if dict(head.data or {}) != expected.data:
        return "data differs from its audit trail"
    if head.area != expected.area:
        return f"area {head.area!r}, its audit trail says {expected.area!r}"
    if expected.content_hash is not None and head.content_hash != expected.content_hash:
        return "its definition differs from the one its audit trail moved it to"
    return None


def _deadlines(rows: list[Any], expected: Expected) -> str | None:
    if len(rows) != len(expected.deadlines):
        return (f"{len(rows)} deadlines, its audit trail opened {len(expected.deadlines)}")
    for row, want in zip(rows, expected.deadlines, strict=True):
        if (row.name, row.state, row.due_at.isoformat()) != (want.name, want.state, want.due):
            return f"deadline {row.name!r} differs from the one its audit trail opened"
        if row.status != want.status:
            return f"deadline {row.name!r} is {row.status}, its audit trail says {want.status}"
        if row.closed_at != want.closed_at or row.fire_index != want.fire_index:
            return f"deadline {row.name!r} was closed or fired unlike its audit trail says"
        if (row.met_by, row.cancelled_by, row.window_start, row.occurrence, row.paused_at,
                row.paused_seconds, row.extensions) != (
                want.met_by, want.cancelled_by, want.window_start, want.occurrence,
                want.paused_at, want.paused_seconds, want.extensions):
            return f"deadline {row.name!r}'s rule or clock differs from its audit trail"
    return None


def _consents(rows: list[Any], expected: Expected) -> str | None:
    active = Counter((r.sector, r.basis, r.reference) for r in rows if r.withdrawn_at is None)
    if active != +expected.consents or len(rows) != expected.consent_rows:
        return "consents differ from its audit trail"
    return None


def _assignments(rows: list[Any], expected: Expected) -> str | None:
    active = {r.role: r.party for r in rows if r.active}
    if active != expected.assigned:
        return "assignments differ from its audit trail"
    return None


def _messages(rows: list[Any], expected: Expected) -> str | None:
    keys = {row.idempotency_key for row in rows}
    for row in rows:
        want = expected.messages.get(row.idempotency_key)
        if want is None or message_digest(row._mapping) != want or row.digest != want:
            return f"outbox message {row.id} differs from what its audit trail queued"
        status = ("cancelled" if row.idempotency_key in expected.cancelled else
                  "sent" if row.id in expected.sent else
                  "failed" if row.id in expected.failed else "pending")
        if row.status != status:
            return f"outbox message {row.id} is {row.status}, its audit trail says {status}"
    missing = sorted(set(expected.messages) - keys)
    if missing:
        return f"outbox message {missing[0]!r} its audit trail queued is missing"
    return None
