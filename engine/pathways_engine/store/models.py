"""The tables. Times are stored as naive UTC and come back as aware UTC on every dialect."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Date
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored without zone on every dialect."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class Subject(Base):
    """A child, young person or pregnant woman, known by a pseudonymous reference."""

    __tablename__ = "subjects"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    # Personal data: only rendered into messages where consent or a legal basis allows.
    name: Mapped[str | None] = mapped_column(String(200))
    personal_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime]


class DefinitionSnapshot(Base):
    """The exact definition (and templates) instances were started on."""

    __tablename__ = "definition_snapshots"
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    pathway_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]


class Instance(Base):
    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pathway_id: Mapped[str] = mapped_column(String(64))
    pathway_version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(ForeignKey("definition_snapshots.content_hash"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    state: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # active | completed
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    audit_head: Mapped[str] = mapped_column(String(64))
    audit_seq: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime]
    state_entered_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
    area: Mapped[str | None] = mapped_column(String(64))  # municipality or region; routes messages

    # The revision a caseworker sees: raised once per step (`bump_revision`), checked on every
    # UPDATE, so a concurrent writer gets StaleDataError instead of a lost update.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
    __table_args__ = (
        Index("ix_instances_pathway_state", "pathway_id", "state"),
        Index("ix_instances_subject", "subject_id"),
    )


def bump_revision(instance: Instance) -> None:
    instance.version = instance.version + 1


class AuditEntry(Base):
    """Append-only; each entry's hash covers the previous one of the same instance."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    seq: Mapped[int]
    at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]]
    note: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("instance_id", "seq", name="uq_audit_instance_seq"),)


class Deadline(Base):
    """One deadline of one instance; `status` is pending until met, cancelled or timed out."""

    __tablename__ = "deadlines"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(64))  # None: whole pathway
    responsible: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime]
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16))  # pending | met | cancelled | timed_out
    closed_at: Mapped[dt.datetime | None]
    rule: Mapped[dict[str, Any]]
    # (instance_id, status) outranks (status, due_at) for one instance's pending deadlines, so
    # SQLite's planner never scans every pending deadline to close one instance's (bench/).
    __table_args__ = (Index("ix_deadlines_status_due", "status", "due_at"),
                      Index("ix_deadlines_instance_status", "instance_id", "status"))


class Timer(Base):
    """A durable wake-up: a reminder, the due moment, an escalation or a timeout."""

    __tablename__ = "timers"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    deadline_id: Mapped[int] = mapped_column(ForeignKey("deadlines.id"))
    kind: Mapped[str] = mapped_column(String(16))  # reminder | due | escalation | timeout
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16))  # pending | fired | cancelled
    fired_at: Mapped[dt.datetime | None]
    # set on creation so a step adds a deadline and its timers without a flush in between;
    # never loaded (lazy="raise"): readers use deadline_id
    deadline: Mapped[Deadline] = relationship(lazy="raise")
    __table_args__ = (Index("ix_timers_status_due", "status", "due_at"),
                      Index("ix_timers_instance_status", "instance_id", "status"),
                      Index("ix_timers_deadline_status", "deadline_id", "status"))


class OutboxMessage(Base):
    """A rendered message waiting to be delivered; written with the change that caused it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    message_id: Mapped[str] = mapped_column(String(255))
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    role: Mapped[str] = mapped_column(String(64))
    party: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    personal_data: Mapped[bool]
    legal_basis: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),
                      Index("ix_outbox_instance", "instance_id"))


class Assignment(Base):
    """A named person for one role on one instance (the contact-person scheme)."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    role: Mapped[str] = mapped_column(String(64))
    party: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool]

    __table_args__ = (Index("ix_assignments_instance", "instance_id"),)


class Consent(Base):
    """Consent, or a statutory basis, to share personal data with one sector."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"))
    sector: Mapped[str] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(16))  # consent | statutory
    reference: Mapped[str] = mapped_column(String(200))
    given_by: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[dt.datetime]
    withdrawn_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_consents_instance", "instance_id"),)
