"""Draining the outbox: at least once, through outages of days, recognisably.

A message is claimed in one short transaction (SKIP LOCKED on PostgreSQL) for a lease: no
other deliverer takes it for `LEASE`, and a deliverer killed meanwhile has not used up an
attempt. It is sent with no transaction open (a slow mail server never holds the database),
then marked sent - with its audit entry - in a second short transaction. A crash after the
channel accepted it but before the mark sends it again once the lease has passed: at least
once, and the stable Message-ID lets the recipient drop the duplicate.

A failed attempt is retried with exponential backoff capped at `MAX_BACKOFF`, for as long as
`GIVE_UP_AFTER` (from the message's creation, default 3 days; `PATHWAYS_DELIVERY_GIVE_UP`).
Only then, and after at least `MIN_ATTEMPTS` attempts, does it become a dead letter
(status `failed`), which an operator puts back with `pathways outbox retry` (audited).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pathways_engine import failpoints
from pathways_engine.audit.chain import new_entry
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import OutboxMessageNotFound
from pathways_engine.runtime.step import SYSTEM_ACTOR
from pathways_engine.runtime.step import SYSTEM_ROLE
from pathways_engine.store import outbox as store
from pathways_engine.store.database import Database
from pathways_engine.store.outbox import Message
from pathways_engine.store.reads import lock_head
from pathways_engine.store.rows import TrailHead
from pathways_engine.store.writes import append_entry
from sqlalchemy import Connection

from .channels import Channel
from .channels import ChannelError

log = logging.getLogger("pathways.deliver")
BASE_BACKOFF = dt.timedelta(minutes=1)
MAX_BACKOFF = dt.timedelta(hours=1)
GIVE_UP_AFTER = dt.timedelta(days=3)
MIN_ATTEMPTS = 3
LEASE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Policy:
    give_up_after: dt.timedelta = GIVE_UP_AFTER
    min_attempts: int = MIN_ATTEMPTS
    max_backoff: dt.timedelta = MAX_BACKOFF

    def backoff(self, attempts: int) -> dt.timedelta:
        return min(BASE_BACKOFF * int(2 ** min(max(attempts - 1, 0), 20)), self.max_backoff)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def deliver(db: Database, channels: Mapping[str, Channel], now: dt.datetime, *,
            policy: Policy | None = None, limit: int = 1000,
            on_message: Callable[[], object] | None = None) -> DeliveryReport:
    """Send due messages one at a time; `on_message` is told after each (a progress bar)."""
    policy = policy or Policy()
    report = DeliveryReport()
    for _ in range(limit):
        with db.writing() as connection:
            message = store.claim(connection, now, LEASE)
        if message is None:
            break
        failpoints.hit("deliver.after_claim")
        channel = channels.get(message.channel)
        try:
            if channel is None:
                raise ChannelError(f"channel {message.channel!r} is not configured")
            channel.send(message)
        except ChannelError as exc:
            _record_failure(db, message, str(exc), now, policy, report)
        else:
            failpoints.hit("deliver.after_send")
            _mark_sent(db, message, now)
            report.sent += 1
        if on_message is not None:
            on_message()
    return report


def _audit(db: Database, connection: Connection, head: TrailHead, at: dt.datetime, kind: str,
           changes: dict[str, Any], actor: str = SYSTEM_ACTOR) -> None:
    """A fact about delivery: appended without raising the instance's revision."""
    entry = new_entry(head, at=at, recorded_at=at, actor=actor, role=SYSTEM_ROLE, kind=kind,
                      key=db.audit_key, changes=changes)
    append_entry(connection, entry)


def _mark_sent(db: Database, message: Message, now: dt.datetime) -> None:
    with db.writing() as connection:
        head = lock_head(connection, message.instance_id)  # the instance first, then the row
        if store.locked_pending(connection, message.id) is None:
            return
        store.mark_sent(connection, message.id, message.attempts + 1, now)
        _audit(db, connection, head, now, "notification_sent",
               {**_facts(message), "attempts": message.attempts + 1})


def _record_failure(db: Database, message: Message, error: str, now: dt.datetime,
                    policy: Policy, report: DeliveryReport) -> None:
    attempts = message.attempts + 1
    give_up = now - message.created_at >= policy.give_up_after and attempts >= policy.min_attempts
    with db.writing() as connection:
        head = lock_head(connection, message.instance_id)
        if store.locked_pending(connection, message.id) is None:
            return
        if give_up:
            store.mark_failed(connection, message.id, attempts, error, None)
            _audit(db, connection, head, now, "notification_failed",
                   {**_facts(message), "attempts": attempts, "error": error})
        else:
            store.mark_failed(connection, message.id, attempts, error, now + policy.backoff(attempts))
    if give_up:
        report.failed += 1
        log.warning("message %s is a dead letter after %d attempts over %s", message.id,
                    attempts, now - message.created_at)
    else:
        report.retried += 1


def _facts(message: Message) -> dict[str, Any]:
    return {"message": message.id, "message_id": message.message_id, "role": message.role,
            "party": message.party, "channel": message.channel, "template": message.template}


def retry(db: Database, message_ids: list[int] | None, actor: str, now: dt.datetime) -> list[int]:
    """Put dead letters (these, or all for None) back in the queue; each audited for `actor`."""
    with db.writing() as connection:
        found = store.failed_ids(connection, message_ids)
        missing = sorted(set(message_ids or []) - {i for i, _, _ in found})
        if missing:
            raise OutboxMessageNotFound(missing[0])
        for message_id, _, status in found:
            if status != "failed":
                raise InvalidArgument(f"message {message_id} is {status}, not a dead letter; "
                                      "only failed messages are retried")
        done = []
        for message_id, instance_id, _ in sorted(found, key=lambda f: (f[1], f[0])):
            head = lock_head(connection, instance_id)
            row = store.requeue(connection, message_id, now)
            _audit(db, connection, head, now, "notification_retried",
                   {"message": row.id, "message_id": row.message_id, "role": row.role,
                    "party": row.party, "by": actor}, actor=actor)
            done.append(message_id)
    if message_ids is None and not done:
        raise InvalidArgument("there are no dead letters (failed messages) to retry")
    return done
