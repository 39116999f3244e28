"""Draining the outbox: at-least-once delivery with exponential backoff and a dead letter.

Each message is claimed, sent and marked in its own short transaction (SKIP LOCKED on
PostgreSQL, so two deliverers never take the same message). A crash after the channel
accepted a message but before it was marked sent means it is sent again on the next run:
the guarantee is at least once, and the stable Message-ID lets the recipient drop the
duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass

from pathways_engine.store.database import Database
from pathways_engine.store.models import OutboxMessage
from sqlalchemy import select

from .channels import Channel
from .channels import ChannelError

log = logging.getLogger("pathways.deliver")
MAX_ATTEMPTS = 6
BASE_BACKOFF = dt.timedelta(minutes=1)

# Test-only fault injection: called after a channel accepted a message, before it is marked.
fault_hook: Callable[[OutboxMessage], None] | None = None


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
        with db.sessions() as session, session.begin():
            message = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1)
                .with_for_update(skip_locked=True)).first()
            if message is None:
                break
            channel = channels.get(message.channel)
            try:
                if channel is None:
                    raise ChannelError(f"channel {message.channel!r} is not configured")
                channel.send(message)
            except ChannelError as exc:
                message.attempts += 1
                message.last_error = str(exc)
                if message.attempts >= max_attempts:
                    message.status = "failed"
                    report.failed += 1
                    log.warning("message %s failed for good after %d attempts", message.id,
                                message.attempts)
                else:
                    message.next_attempt_at = now + backoff(message.attempts)
                    report.retried += 1
                continue
            if fault_hook is not None:
                fault_hook(message)
            message.attempts += 1
            message.status = "sent"
            message.sent_at = now
            message.last_error = None
            report.sent += 1
    return report


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
