"""The append-only, hash-chained audit trail of every instance.

Each entry's hash covers its content and the previous entry's hash; the instance row keeps
the newest hash and sequence number, so an edited, deleted, inserted or reordered entry -
including the last one - breaks the chain where it happened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from .store.models import AuditEntry
from .store.models import Instance

GENESIS = "0" * 64


def _digest(entry: AuditEntry) -> str:
    body = {
        "instance": entry.instance_id, "seq": entry.seq, "at": entry.at.isoformat(),
        "recorded_at": entry.recorded_at.isoformat(), "actor": entry.actor, "role": entry.role,
        "kind": entry.kind, "event": entry.event, "from": entry.from_state,
        "to": entry.to_state, "changes": entry.changes, "note": entry.note,
        "prev": entry.prev_hash,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(session: Session, instance: Instance, *, at: dt.datetime, recorded_at: dt.datetime,
           actor: str, role: str, kind: str, event: str | None = None,
           from_state: str | None = None, to_state: str | None = None,
           changes: dict[str, Any] | None = None, note: str | None = None) -> AuditEntry:
    entry = AuditEntry(
        instance_id=instance.id, seq=instance.audit_seq + 1, at=at.astimezone(dt.UTC),
        recorded_at=recorded_at.astimezone(dt.UTC), actor=actor, role=role, kind=kind,
        event=event, from_state=from_state, to_state=to_state, changes=changes or {},
        note=note, prev_hash=instance.audit_head,
    )
    entry.hash = _digest(entry)
    instance.audit_seq = entry.seq
    instance.audit_head = entry.hash
    session.add(entry)
    return entry


def append_quietly(session: Session, instance_id: str, *, at: dt.datetime, actor: str, role: str,
                   kind: str, changes: dict[str, Any]) -> AuditEntry:
    """Append an entry without raising the instance's revision.

    For facts that change nothing a caseworker decides on (a message was sent), so they never
    make a concurrent `advance` fail with a conflict. The row lock keeps the chain linear.
    """
    head, seq = session.execute(
        select(Instance.audit_head, Instance.audit_seq).where(Instance.id == instance_id)
        .with_for_update()).one()
    entry = AuditEntry(
        instance_id=instance_id, seq=seq + 1, at=at.astimezone(dt.UTC),
        recorded_at=at.astimezone(dt.UTC), actor=actor, role=role, kind=kind, event=None,
        from_state=None, to_state=None, changes=changes, note=None, prev_hash=head,
    )
    entry.hash = _digest(entry)
    session.add(entry)
    session.execute(update(Instance).where(Instance.id == instance_id)
                    .values(audit_head=entry.hash, audit_seq=entry.seq)
                    .execution_options(synchronize_session=False))
    return entry


@dataclass(frozen=True)
class ChainBreak:
    instance_id: str
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"instance {self.instance_id}: audit entry {self.seq}: {self.reason}"


def verify_chain(instance_id: str, head: str, last_seq: int,
                 entries: Iterable[AuditEntry]) -> ChainBreak | None:
    """The first break in one instance's entries (in insertion order), or None."""
    expected_prev, expected_seq = GENESIS, 1
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainBreak(instance_id, expected_seq,
                              f"missing or reordered (found entry {entry.seq} next)")
        if entry.prev_hash != expected_prev:
            return ChainBreak(instance_id, entry.seq, "does not follow the previous entry")
        if _digest(entry) != entry.hash:
            return ChainBreak(instance_id, entry.seq, "content was changed after it was written")
        expected_prev, expected_seq = entry.hash, expected_seq + 1
    if expected_seq - 1 != last_seq or expected_prev != head:
        return ChainBreak(instance_id, expected_seq,
                          f"missing (the trail ends before it; the instance records {last_seq})")
    return None


@dataclass
class Verification:
    instances: int = 0
    entries: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)


def verify(session: Session, instance_ids: Iterable[str] | None = None,
           batch: int = 2000) -> Verification:
    """Check every chain in one streamed pass; report the first break of each instance."""
    heads_query = select(Instance.id, Instance.audit_head, Instance.audit_seq)
    entries_query = select(AuditEntry).order_by(AuditEntry.instance_id, AuditEntry.id)
    if instance_ids is not None:
        wanted = list(instance_ids)
        heads_query = heads_query.where(Instance.id.in_(wanted))
        entries_query = entries_query.where(AuditEntry.instance_id.in_(wanted))
    heads = {row.id: (row.audit_head, row.audit_seq) for row in session.execute(heads_query)}
    result = Verification(instances=len(heads))
    seen: set[str] = set()
    stream = session.scalars(entries_query.execution_options(yield_per=batch))
    for instance_id, group in groupby(stream, key=lambda e: e.instance_id):
        entries = list(group)
        result.entries += len(entries)
        seen.add(instance_id)
        head, last = heads[instance_id]
        found = verify_chain(instance_id, head, last, entries)
        if found:
            result.breaks.append(found)
        session.expunge_all()  # keep memory flat over millions of entries
    for instance_id in sorted(set(heads) - seen):
        found = verify_chain(instance_id, *heads[instance_id], [])
        if found:
            result.breaks.append(found)
    result.breaks.sort(key=lambda b: b.instance_id)
    return result
