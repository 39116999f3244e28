"""The outbox's SQL for delivery: claim a message for a lease, mark it, retry dead letters.

Lock order is the step path's: an instance row before any of its messages, so marking a
message sent (which appends to the instance's audit trail) never waits in a cycle with a step
that cancels that instance's messages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from .tables import outbox


@dataclass(frozen=True)
class Message:
    """A claimed message, detached from the database while it is sent."""

    id: int
    instance_id: str
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
    attempts: int
    created_at: dt.datetime


_FIELDS = tuple(Message.__dataclass_fields__)


def claim(connection: Connection, now: dt.datetime, lease: dt.timedelta) -> Message | None:
    """The next due message, leased to this deliverer (not counted as an attempt)."""
    row = connection.execute(
        select(*(outbox.c[name] for name in _FIELDS))
        .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
        .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(1)
        .with_for_update(skip_locked=True)).first()
    if row is None:
        return None
    connection.execute(update(outbox).where(outbox.c.id == row.id)
                       .values(next_attempt_at=now + lease, claimed_at=now))
    return Message(**row._mapping)


def due_count(connection: Connection, now: dt.datetime) -> int:
    """How many messages a delivery run at `now` would try (for its progress bar)."""
    return int(connection.execute(select(func.count()).select_from(outbox).where(
        outbox.c.status == "pending", outbox.c.next_attempt_at <= now)).scalar_one())


def locked_pending(connection: Connection, message_id: int) -> Any:
    """The message row locked, if it is still pending (another deliverer may have finished it)."""
    row = connection.execute(select(outbox).where(outbox.c.id == message_id)
                             .with_for_update()).first()
    return row if row is not None and row.status == "pending" else None


def mark_sent(connection: Connection, message_id: int, attempts: int, now: dt.datetime) -> None:
    connection.execute(update(outbox).where(outbox.c.id == message_id).values(
        status="sent", sent_at=now, attempts=attempts, last_error=None, claimed_at=None))


def mark_failed(connection: Connection, message_id: int, attempts: int, error: str,
                retry_at: dt.datetime | None) -> None:
    """Another attempt failed: retry at `retry_at`, or give up (a dead letter) when None."""
    values: dict[str, Any] = {"attempts": attempts, "last_error": error, "claimed_at": None}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    connection.execute(update(outbox).where(outbox.c.id == message_id).values(**values))


def failed_ids(connection: Connection, ids: list[int] | None) -> list[tuple[int, str, str]]:
    """(id, instance, status) of the messages `ids` (of every dead letter for None)."""
    query = select(outbox.c.id, outbox.c.instance_id, outbox.c.status).order_by(outbox.c.id)
    if ids is not None:
        query = query.where(outbox.c.id.in_(ids))
    else:
        query = query.where(outbox.c.status == "failed")
    return [(row.id, row.instance_id, row.status) for row in connection.execute(query)]


def requeue(connection: Connection, message_id: int, now: dt.datetime) -> Any:
    """Put a message back in the queue with a fresh count of attempts; returns its row."""
    connection.execute(update(outbox).where(outbox.c.id == message_id).values(
        status="pending", next_attempt_at=now, attempts=0, claimed_at=None))
    return connection.execute(select(outbox).where(outbox.c.id == message_id)).one()
