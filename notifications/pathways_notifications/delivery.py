"""Draining the outbox: at-least-once delivery with exponential backoff and a dead letter.

A message is claimed in one short transaction (SKIP LOCKED on PostgreSQL; the claim pushes
its next attempt a lease into the future, so no other deliverer takes it), sent with no
transaction open (a slow mail server never holds the database), and marked sent - with its
audit entry - in a second short transaction. A crash after the channel accepted a message but
before it was marked means it is sent again once the lease has passed: the guarantee is at
least once, and the stable Message-ID lets the recipient drop the duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from pathways_engine import audit
from pathways_engine import failpoints
from pathways_engine.runtime import SYSTEM_ACTOR
from pathways_engine.runtime import SYSTEM_ROLE
from pathways_engine.store.database import Database
from pathways_engine.store.models import OutboxMessage
from sqlalchemy import select
from sqlalchemy.orm import Session

from .channels import Channel
from .channels import ChannelError

log = logging.getLogger("pathways.deliver")
MAX_ATTEMPTS = 6
BASE_BACKOFF = dt.timedelta(minutes=1)
LEASE = dt.timedelta(minutes=5)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def backoff(attempts: int) -> dt.timedelta:
    return BASE_BACKOFF * int(2 ** max(attempts - 1, 0))


def deliver(db: Database, channels: Mapping[str, Channel], now: dt.datetime, *,
            max_attempts: int = MAX_ATTEMPTS, limit: int = 1000) -> DeliveryReport:
    report = DeliveryReport()
    for _ in range(limit):
        message = _claim(db, now)
        if message is None:
            break
        failpoints.hit("deliver.after_claim")
        channel = channels.get(message.channel)
        try:
            if channel is None:
                raise ChannelError(f"channel {message.channel!r} is not configured")
            channel.send(message)
        except ChannelError as exc:
            _record_failure(db, message.id, str(exc), now, max_attempts, report)
            continue
        failpoints.hit("deliver.after_send")
        _mark_sent(db, message.id, now)
        report.sent += 1
    return report


def _claim(db: Database, now: dt.datetime) -> OutboxMessage | None:
    """Take the next due message for one lease; return it detached, ready to send."""
    with db.sessions() as session, session.begin():
        message = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1)
            .with_for_update(skip_locked=True)).first()
        if message is None:
            return None
        message.attempts += 1
        message.next_attempt_at = now + LEASE
        session.flush()
        session.expunge(message)
    return message


def _locked(session: Session, message_id: int) -> OutboxMessage | None:
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.id == message_id)
                              .with_for_update()).one()
    return message if message.status == "pending" else None  # another deliverer finished it


def _mark_sent(db: Database, message_id: int, now: dt.datetime) -> None:
    with db.sessions() as session, session.begin():
        message = _locked(session, message_id)
        if message is None:
            return
        message.status = "sent"
        message.sent_at = now
        message.last_error = None
        audit.append_quietly(session, message.instance_id, at=now, actor=SYSTEM_ACTOR,
                             role=SYSTEM_ROLE, kind="notification_sent", changes=_facts(message))


def _record_failure(db: Database, message_id: int, error: str, now: dt.datetime,
                    max_attempts: int, report: DeliveryReport) -> None:
    with db.sessions() as session, session.begin():
        message = _locked(session, message_id)
        if message is None:
            return
        message.last_error = error
        if message.attempts >= max_attempts:
            message.status = "failed"
            report.failed += 1
            log.warning("message %s failed for good after %d attempts", message.id,
                        message.attempts)
            audit.append_quietly(session, message.instance_id, at=now, actor=SYSTEM_ACTOR,
                                 role=SYSTEM_ROLE, kind="notification_failed",
                                 changes={**_facts(message), "error": error})
        else:
            message.next_attempt_at = now + backoff(message.attempts)
            report.retried += 1


def _facts(message: OutboxMessage) -> dict[str, object]:
    return {"message": message.id, "message_id": message.message_id, "role": message.role,
            "party": message.party, "channel": message.channel, "template": message.template,
            "attempts": message.attempts}


def retry(db: Database, message_id: int, now: dt.datetime) -> OutboxMessage:
    from pathways_engine.errors import OutboxMessageNotFound

    with db.sessions() as session, session.begin():
        message = session.get(OutboxMessage, message_id)
        if message is None:
            raise OutboxMessageNotFound(message_id)
        message.status = "pending"
        message.next_attempt_at = now
        message.attempts = 0
        return message
