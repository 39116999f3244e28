"""The tables, as SQLAlchemy Core: the engine writes set-based and in batches, so no ORM.

Times are stored as naive UTC and come back as aware UTC on every dialect. The Alembic
migrations in `migrations/versions/` build exactly this metadata (a test compares them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import Column
from sqlalchemy import Date
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def stored_utc(value: dt.datetime) -> dt.datetime:
    """An aware time as a UTC column stores it: naive, in UTC."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(dt.UTC).replace(tzinfo=None)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored without zone on every dialect."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else stored_utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


IdType = BigInteger().with_variant(Integer(), "sqlite")
metadata = MetaData(naming_convention=NAMING)


def _time(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, UTCDateTime(), nullable=nullable)


def _id() -> Column[Any]:
    return Column("id", IdType, primary_key=True, autoincrement=True)


subjects = Table(
    "subjects", metadata,
    _id(),
    # the reference as first given (NFC); `ref_key` is what matches: case folded (runtime/subjects)
    Column("ref", String(64), nullable=False, unique=True),
    Column("ref_key", String(64), nullable=False, unique=True),
    Column("birth_date", Date),
    # personal data: only rendered or shown where consent or a legal basis allows
    Column("name", String(200)),
    Column("personal_id", String(32)),
    _time("created_at"),
)

definition_snapshots = Table(
    "definition_snapshots", metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("pathway_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    _time("created_at"),
)

instances = Table(
    "instances", metadata,
    Column("id", String(32), primary_key=True),
    Column("pathway_id", String(64), nullable=False),
    Column("pathway_version", Integer, nullable=False),
    Column("content_hash", String(64), ForeignKey("definition_snapshots.content_hash"),
           nullable=False),
    Column("subject_id", IdType, ForeignKey("subjects.id"), nullable=False),
    Column("state", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # active | completed
    Column("data", JSON, nullable=False),
    # the revision a caseworker sees: raised once per step; every UPDATE checks it
    Column("version", Integer, nullable=False),
    Column("audit_head", String(64), nullable=False),
    Column("audit_seq", Integer, nullable=False),
    _time("started_at"),
    _time("state_entered_at"),
    _time("updated_at"),
    _time("completed_at", nullable=True),
    Column("area", String(64)),  # municipality or region; routes messages, scopes actors
    # the pathway whose handover started this one, and which of its handovers it was
    Column("parent_id", String(32), ForeignKey("instances.id")),
    Column("handover", String(64)),
    Index("ix_instances_pathway_state", "pathway_id", "state"),
    Index("ix_instances_subject", "subject_id"),
    Index("ix_instances_parent", "parent_id"),
)

audit = Table(
    "audit", metadata,
    _id(),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    _time("at"),
    _time("recorded_at"),
    Column("actor", String(128), nullable=False),
    Column("role", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("event", String(64)),
    Column("from_state", String(64)),
    Column("to_state", String(64)),
    Column("changes", JSON, nullable=False),
    Column("note", Text),
    # what the entry did to the state tables (deadlines opened, messages queued, ...), so
    # `audit verify` can replay them; covered by the hash. NULL on entries before 0005.
    Column("effects", JSON),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64)),  # HMAC of `hash` with the deployment's audit key, if it has one
    UniqueConstraint("instance_id", "seq", name="uq_audit_instance_seq"),
)

deadlines = Table(
    "deadlines", metadata,
    _id(),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("state", String(64)),  # None: whole pathway
    Column("responsible", String(64)),
    _time("started_at"),
    _time("due_at"),
    Column("status", String(16), nullable=False),  # pending | met | met_late | cancelled | timed_out
    _time("closed_at", nullable=True),
    Column("rule", JSON, nullable=False),
    # the deadline's wake-ups (reminders, due, escalation, timeout) as [[kind, utc iso], ...];
    # `fire_index` is the next one to fire and `next_fire_at` its time (NULL: none left)
    Column("fires", JSON, nullable=False),
    Column("fire_index", Integer, nullable=False),
    _time("next_fire_at", nullable=True),
    # an obligation is met (or cancelled) by what these list - ",event,enter:state," - rather
    # than by leaving its state; one LIKE closes it set-based (store/writes.py)
    Column("met_by", String(500)),
    Column("cancelled_by", String(500)),
    _time("window_start", nullable=True),  # met before this is met_early
    _time("paused_at", nullable=True),  # the clock stands still since then
    Column("paused_seconds", Integer, nullable=False),  # time paused so far, for reports
    Column("extensions", Integer, nullable=False),
    Column("occurrence", Integer, nullable=False),  # 1, 2, ... for a repeating deadline
    Index("ix_deadlines_status_due", "status", "due_at"),
    Index("ix_deadlines_instance_status", "instance_id", "status"),
    Index("ix_deadlines_status_next_fire_at", "status", "next_fire_at"),  # due wake-ups (0009)
)

outbox = Table(
    "outbox", metadata,
    _id(),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("message_id", String(255), nullable=False),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("role", String(64), nullable=False),
    Column("party", String(128)),
    Column("channel", String(16), nullable=False),
    Column("address", String(320)),
    Column("language", String(8), nullable=False),
    Column("template", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("personal_data", Boolean, nullable=False),
    Column("legal_basis", String(200)),
    Column("status", String(16), nullable=False),  # pending | sent | failed | cancelled
    Column("attempts", Integer, nullable=False),
    _time("next_attempt_at"),
    _time("claimed_at", nullable=True),  # a deliverer's lease; a killed one is not an attempt
    Column("last_error", Text),
    _time("created_at"),
    _time("sent_at", nullable=True),
    Column("digest", String(64)),  # of what was queued; the audit entry that queued it has it
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    Index("ix_outbox_instance", "instance_id"),
)

assignments = Table(
    "assignments", metadata,
    _id(),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("role", String(64), nullable=False),
    Column("party", String(128), nullable=False),
    _time("at"),
    Column("actor", String(128), nullable=False),
    Column("active", Boolean, nullable=False),
    Index("ix_assignments_instance", "instance_id"),
)

subject_assignments = Table(
    # a party named for a role across every pathway of one child (the contact person)
    "subject_assignments", metadata,
    _id(),
    Column("subject_id", IdType, ForeignKey("subjects.id"), nullable=False),
    Column("role", String(64), nullable=False),
    Column("party", String(128), nullable=False),
    _time("at"),
    Column("actor", String(128), nullable=False),
    Column("active", Boolean, nullable=False),
    Index("ix_subject_assignments_subject", "subject_id"),
)

signals = Table(
    # what one pathway owes another across a handover, delivered under the receiver's lock:
    # a child's completion to its waiting parent (kind "event"), a parent's end to a child it
    # cancels (kind "cancel"); `delivered_at` is set in the transaction that applies it
    "signals", metadata,
    _id(),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("event", String(64)),
    Column("payload", JSON, nullable=False),
    Column("source_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("handover", String(64), nullable=False),
    _time("at"),
    _time("delivered_at", nullable=True),
    Column("outcome", Text),
    Index("ix_signals_pending", "delivered_at", "instance_id"),
)

consents = Table(
    "consents", metadata,
    _id(),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("sector", String(64), nullable=False),
    Column("basis", String(16), nullable=False),  # consent | statutory
    Column("reference", String(200), nullable=False),
    Column("given_by", String(128)),
    _time("at"),
    _time("withdrawn_at", nullable=True),
    Index("ix_consents_instance", "instance_id"),
)

requests = Table(
    "requests", metadata,
    # an idempotency key: the first request with it acts, a retry gets the same result
    Column("key", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),  # start | advance | assign | consent | correct
    Column("fingerprint", String(64), nullable=False),
    Column("instance_id", String(32), nullable=False),
    Column("result", JSON, nullable=False),
    _time("created_at"),
)

api_tokens = Table(
    # a bearer token for `pathways serve`, bound to an actor of the actors file; only its
    # SHA-256 is kept, so a copy of the database gives nobody a working token
    "api_tokens", metadata,
    _id(),
    Column("digest", String(64), nullable=False, unique=True),
    Column("actor", String(128), nullable=False),
    Column("note", Text),
    _time("created_at"),
    _time("revoked_at", nullable=True),
    _time("last_used_at", nullable=True),
    _time("expires_at", nullable=True),  # NULL: until revoked
)

