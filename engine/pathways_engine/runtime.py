"""Starting and advancing pathway instances: one transaction per step, nothing half-written.

An advance reads the instance, lets the compiled python-statemachine class choose the
transition, and then - in one write transaction that re-reads the instance under a lock and
refuses if its version moved - stores the new state, data, audit entry, deadlines, timers and
outgoing messages together. So a concurrent change is refused (exit 3), never overwritten.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import audit
from . import failpoints
from .areas import check_area
from .compiler import CompiledPathway
from .compiler import Fired
from .compiler import compile_definition
from .deadlines import close_deadlines
from .deadlines import open_deadlines
from .errors import ConcurrentModification
from .errors import DatabaseError
from .errors import EventNotAllowed
from .errors import FieldError
from .errors import GuardFailed
from .errors import InstanceFinished
from .errors import InstanceNotFound
from .errors import InvalidArgument
from .errors import NotEligible
from .errors import PathwaysError
from .errors import RoleNotAllowed
from .errors import UnknownRole
from .loader import Definition
from .loader import from_snapshot
from .ports import Clock
from .ports import MessageComposer
from .ports import NoComposer
from .ports import NotificationRequest
from .ports import SystemClock
from .registry import Registry
from .store.database import Database
from .store.models import DefinitionSnapshot
from .store.models import Instance
from .store.models import Subject
from .store.models import bump_revision
from .store.writes import insert_missing
from .values import age_on
from .values import check_values
from .values import coerce

SYSTEM_ACTOR = "system"
SYSTEM_ROLE = "system"
FUTURE_TOLERANCE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Step:
    """What an advance did."""

    instance_id: str
    event: str
    from_state: str
    to_state: str
    version: int
    completed: bool


@dataclass(frozen=True)
class StepRequest:
    """One event for `advance_many`; the same arguments `advance` takes."""

    instance_id: str
    event: str
    actor: str
    role: str
    values: Mapping[str, Any] | None = None
    note: str | None = None
    at: dt.datetime | None = None
    expected_version: int | None = None


class PathwayEngine:
    """The engine's public face: start, advance, and the shared step logic tick reuses."""

    def __init__(self, db: Database, registry: Registry, *, clock: Clock | None = None,
                 composer: MessageComposer | None = None) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock or SystemClock()
        self.composer = composer or NoComposer()
        self._compiled: dict[str, CompiledPathway] = {}

    # ---------------------------------------------------------------- definitions

    def compiled_for(self, session: Session, content_hash: str) -> CompiledPathway:
        """The compiled definition an instance is pinned to (from its stored snapshot)."""
        compiled = self._compiled.get(content_hash)
        if compiled is None:
            snapshot = session.get(DefinitionSnapshot, content_hash)
            if snapshot is None:  # pragma: no cover - guarded by a foreign key
                raise DatabaseError(f"definition snapshot {content_hash[:12]} is missing")
            compiled = compile_definition(from_snapshot(snapshot.source), checked=True)
            self._compiled[content_hash] = compiled
        return compiled

    def store_snapshot(self, session: Session, definition: Definition, now: dt.datetime) -> None:
        if session.get(DefinitionSnapshot, definition.content_hash) is None:
            insert_missing(session, DefinitionSnapshot, {
                "content_hash": definition.content_hash, "pathway_id": definition.spec.id,
                "version": definition.spec.version, "source": definition.snapshot(),
                "created_at": now}, ["content_hash"])

    # ---------------------------------------------------------------- time

    @staticmethod
    def event_time(at: dt.datetime | None, now: dt.datetime, zone: str) -> dt.datetime:
        """`at` as an aware time; a naive one is local time in the pathway's zone."""
        if at is None:
            return now
        if at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo(zone))
        if at > now + FUTURE_TOLERANCE:
            raise InvalidArgument(
                f"--at {at.isoformat()} is in the future; record events when they have happened")
        return at

    # ---------------------------------------------------------------- start

    def start(self, pathway: str, *, subject_ref: str, actor: str, role: str,
              birth_date: dt.date | None = None, values: Mapping[str, Any] | None = None,
              at: dt.datetime | None = None, version: int | None = None,
              area: str | None = None) -> str:
        """Start a pathway for a subject; return the new instance id."""
        definition = self.registry.get(pathway, version)
        compiled = compile_definition(definition)
        spec = definition.spec
        now = self.clock.now()
        at = self.event_time(at, now, spec.timezone)
        _check_subject_ref(subject_ref)
        check_area(area)
        if role not in spec.roles:
            raise UnknownRole(role, spec.roles)
        if role not in spec.start.roles:
            raise RoleNotAllowed(role, "start", spec.start.roles)
        given = check_values(spec, values or {}, spec.start.requires, spec.start.accepts,
                             f"starting {spec.id!r}")
        with self.writing() as session:
            subject = self._subject(session, subject_ref, birth_date, now)
            _check_eligible(definition, subject, at)
            self.store_snapshot(session, definition, now)
            instance = Instance(
                id=secrets.token_hex(8), pathway_id=spec.id, pathway_version=spec.version,
                content_hash=definition.content_hash, subject_id=subject.id,
                state=spec.initial_state, status="active", data=given, version=1,
                audit_head=audit.GENESIS, audit_seq=0, started_at=at, state_entered_at=at,
                updated_at=now, completed_at=None, area=area,
            )
            session.add(instance)
            session.flush()
            changes: dict[str, Any] = {k: [None, v] for k, v in given.items()}
            if area:
                changes["area"] = [None, area]
            audit.append(session, instance, at=at, recorded_at=now, actor=actor, role=role,
                         kind="start", to_state=instance.state, changes=changes)
            open_deadlines(session, spec, instance, None, at)
            open_deadlines(session, spec, instance, instance.state, at)
            self.notify(session, compiled, instance, subject, "started", spec.id, at)
            self.notify(session, compiled, instance, subject, "enter", instance.state, at)
            new_id: str = instance.id
            session.flush()
            failpoints.hit("start.before_commit")
        return new_id

    def _subject(self, session: Session, ref: str, birth_date: dt.date | None,
                 now: dt.datetime) -> Subject:
        subject = session.scalars(select(Subject).where(Subject.ref == ref)).one_or_none()
        if subject is None:
            insert_missing(session, Subject,
                           {"ref": ref, "birth_date": birth_date, "created_at": now}, ["ref"])
            subject = session.scalars(select(Subject).where(Subject.ref == ref)).one()
        if birth_date is not None and subject.birth_date not in (None, birth_date):
            raise FieldError(
                f"subject {ref!r} is recorded with birth date {subject.birth_date}, not {birth_date}")
        elif birth_date is not None:
            subject.birth_date = birth_date
        return subject

    # ---------------------------------------------------------------- advance

    def advance(self, instance_id: str, event: str, *, actor: str, role: str,
                values: Mapping[str, Any] | None = None, note: str | None = None,
                at: dt.datetime | None = None, expected_version: int | None = None) -> Step:
        """Send `event` to an instance as `actor` in `role`."""
        now = self.clock.now()
        with self.db.sessions() as session, session.begin():
            instance = get_instance(session, instance_id)
            compiled = self.compiled_for(session, instance.content_hash)
            at = self.event_time(at, now, compiled.spec.timezone)
            subject = session.get_one(Subject, instance.subject_id)
            seen_version = instance.version
            fired, given = self.choose(compiled, instance, subject, event, role, values or {}, at)
        if expected_version is not None and expected_version != seen_version:
            raise ConcurrentModification(instance_id, expected_version, seen_version)
        failpoints.hit("advance.after_read")
        with self.writing(instance_id) as session:
            instance = get_instance(session, instance_id, lock=True)
            if instance.version != seen_version:
                raise ConcurrentModification(instance_id, seen_version, instance.version)
            subject = session.get_one(Subject, instance.subject_id)
            self.apply(session, compiled, instance, subject, fired, given, actor=actor,
                       role=role, at=at, now=now, note=note)
            session.flush()
            step = Step(instance.id, event, fired.source, fired.target, instance.version,
                        instance.status == "completed")
            failpoints.hit("advance.before_commit")
        failpoints.hit("advance.after_commit")
        return step

    def advance_many(self, requests: Sequence[StepRequest]) -> list[Step | PathwaysError]:
        """Apply many independent steps with one commit (group commit), for integrations.

        A step refused before it writes anything (bad role, failing guard, stale
        `expected_version`) is returned as its error and the others go on. A step that fails
        while writing rolls the batch back; the batch is then redone without it. The batch's
        rows reach the database together at commit, which is what makes bulk imports and
        high-volume integrations fast (bench/, issue 8). A crash loses the whole batch, never
        part of a step.
        """
        results: dict[int, Step | PathwaysError] = {}
        todo = list(range(len(requests)))
        while todo:
            now = self.clock.now()
            try:
                with self.writing() as session, session.no_autoflush:
                    done = self._batch(session, requests, todo, now)
                    failpoints.hit("advance_many.before_commit")
            except _FailedWhileWriting as failed:
                results[failed.position] = failed.error
                todo.remove(failed.position)
                continue
            results.update(done)
            todo = []
        return [results[i] for i in range(len(requests))]

    def _batch(self, session: Session, requests: Sequence[StepRequest], positions: list[int],
               now: dt.datetime) -> dict[int, Step | PathwaysError]:
        done: dict[int, Step | PathwaysError] = {}
        touched: set[str] = set()
        for position in positions:
            request = requests[position]
            if request.instance_id in touched:
                session.flush()  # it is read again under lock: its earlier step must be written
            try:
                instance, compiled, subject, fired, given, at = self._prepare(session, request, now)
            except PathwaysError as refused:
                done[position] = refused
                continue
            touched.add(instance.id)
            try:
                self.apply(session, compiled, instance, subject, fired, given,
                           actor=request.actor, role=request.role, at=at, now=now,
                           note=request.note)
            except PathwaysError as error:
                raise _FailedWhileWriting(position, error) from None
            done[position] = Step(instance.id, request.event, fired.source, fired.target,
                                  instance.version, instance.status == "completed")
        return done

    def _prepare(self, session: Session, request: StepRequest, now: dt.datetime) -> tuple[
            Instance, CompiledPathway, Subject, Fired, dict[str, Any], dt.datetime]:
        """Lock the instance and let the machine choose; write nothing."""
        instance = get_instance(session, request.instance_id, lock=True)
        if request.expected_version is not None and request.expected_version != instance.version:
            raise ConcurrentModification(instance.id, request.expected_version, instance.version)
        compiled = self.compiled_for(session, instance.content_hash)
        at = self.event_time(request.at, now, compiled.spec.timezone)
        subject = session.get_one(Subject, instance.subject_id)
        fired, given = self.choose(compiled, instance, subject, request.event, request.role,
                                   request.values or {}, at)
        return instance, compiled, subject, fired, given, at

    def choose(self, compiled: CompiledPathway, instance: Instance, subject: Subject, event: str,
               role: str, values: Mapping[str, Any], at: dt.datetime) -> tuple[Fired, dict[str, Any]]:
        """Check role and values and let the machine pick the transition; write nothing."""
        spec = compiled.spec
        if instance.status == "completed":
            raise InstanceFinished(instance.id, instance.state)
        if at < instance.state_entered_at:
            raise InvalidArgument(
                f"--at {at.isoformat()} is before the instance's last step "
                f"({instance.state_entered_at.isoformat()})")
        candidates = [(i, t) for i, t in compiled.transitions_from(instance.state) if t.event == event]
        if not candidates:
            allowed = {t.event for _, t in compiled.transitions_from(instance.state)}
            raise EventNotAllowed(event, instance.state, allowed, compiled.events)
        if role != SYSTEM_ROLE:
            if role not in spec.roles:
                raise UnknownRole(role, spec.roles)
            senders = {r for _, t in candidates for r in t.roles}
            if role not in senders:
                raise RoleNotAllowed(role, event, senders)
        typed = {}
        for name, value in values.items():
            if name not in spec.fields:
                check_values(spec, {name: value}, [], [], f"event {event!r}")  # raises
            typed[name] = coerce(name, spec.fields[name], value)
        env = self.guard_values(instance, subject, typed, at)
        fired = compiled.fire(instance.state, event, env)
        if fired is None:
            raise GuardFailed(event, [t.guard for _, t in candidates if t.guard])
        if role != SYSTEM_ROLE and role not in fired.transition.roles:
            raise RoleNotAllowed(role, event, fired.transition.roles)
        given = check_values(spec, values, fired.transition.requires, fired.transition.accepts,
                             f"event {event!r}")
        return fired, given

    @staticmethod
    def guard_values(instance: Instance, subject: Subject, values: Mapping[str, Any],
                     at: dt.datetime) -> dict[str, Any]:
        years, months = age_on(subject.birth_date, at.date())
        return {**instance.data, **values, "age_years": years, "age_months": months}

    def apply(self, session: Session, compiled: CompiledPathway, instance: Instance,
              subject: Subject, fired: Fired, given: Mapping[str, Any], *, actor: str, role: str,
              at: dt.datetime, now: dt.datetime, note: str | None = None) -> None:
        """Write one transition and everything it causes into `session`."""
        with session.no_autoflush:  # one flush per step, not one per query (bench/, issue 8)
            self._apply(session, compiled, instance, subject, fired, given, actor=actor,
                        role=role, at=at, now=now, note=note)

    def _apply(self, session: Session, compiled: CompiledPathway, instance: Instance,
               subject: Subject, fired: Fired, given: Mapping[str, Any], *, actor: str, role: str,
               at: dt.datetime, now: dt.datetime, note: str | None) -> None:
        spec = compiled.spec
        changes = {k: [instance.data.get(k), v] for k, v in given.items()
                   if instance.data.get(k) != v}
        bump_revision(instance)
        instance.data = {**instance.data, **given}
        instance.state = fired.target
        instance.state_entered_at = at
        instance.updated_at = now
        audit.append(session, instance, at=at, recorded_at=now, actor=actor, role=role,
                     kind="transition", event=fired.transition.event, from_state=fired.source,
                     to_state=fired.target, changes=changes, note=note)
        close_deadlines(session, instance, at, state=fired.source)
        final = spec.states[fired.target].final
        if final:
            instance.status = "completed"
            instance.completed_at = at
            close_deadlines(session, instance, at, state=None, whole_pathway=True)
        else:
            open_deadlines(session, spec, instance, fired.target, at)
        self.notify(session, compiled, instance, subject, "event", fired.transition.event, at)
        self.notify(session, compiled, instance, subject, "enter", fired.target, at)

    # ---------------------------------------------------------------- notifications

    def notify(self, session: Session, compiled: CompiledPathway, instance: Instance,
               subject: Subject, trigger: str, name: str, at: dt.datetime,
               extra: Mapping[str, Any] | None = None) -> int:
        """Queue every notification the definition declares for this trigger."""
        written = 0
        for index, spec in enumerate(compiled.spec.notifications):
            if not _matches(spec.when, trigger, name):
                continue
            request = NotificationRequest(
                template=spec.template, roles=tuple(spec.to), trigger=trigger, name=name, at=at,
                cause_key=f"{instance.id}:{instance.audit_seq}:{index}", extra=dict(extra or {}))
            count = self.composer.compose(session, compiled.definition, instance, subject, request)
            if count:
                audit.append(session, instance, at=at, recorded_at=self.clock.now(),
                             actor=SYSTEM_ACTOR, role=SYSTEM_ROLE, kind="notification_queued",
                             changes={"template": spec.template, "to": list(spec.to),
                                      "messages": count, "trigger": trigger, "name": name})
            written += count
        return written

    # ---------------------------------------------------------------- plumbing

    def writing(self, instance_id: str = "?") -> _WriteTransaction:
        return _WriteTransaction(self.db, instance_id)


class _FailedWhileWriting(Exception):
    """A step of a batch failed after it began writing: the batch is redone without it."""

    def __init__(self, position: int, error: PathwaysError) -> None:
        super().__init__(str(error))
        self.position = position
        self.error = error


class _WriteTransaction:
    """A write transaction that turns lock and version conflicts into user errors."""

    def __init__(self, db: Database, instance_id: str) -> None:
        self.db = db
        self.instance_id = instance_id
        self.session: Session | None = None

    def __enter__(self) -> Session:
        self.session = self.db.sessions()
        self.session.begin()
        return self.session

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.session is not None
        session, self.session = self.session, None
        try:
            if exc_type is None:
                try:
                    session.commit()
                except StaleDataError:
                    session.rollback()
                    raise ConcurrentModification(self.instance_id, 0, None) from None
                except OperationalError as error:
                    session.rollback()
                    raise DatabaseError(f"database is busy or unavailable: {error.orig}") from None
            else:
                session.rollback()
        finally:
            session.close()


def get_instance(session: Session, instance_id: str, *, lock: bool = False) -> Instance:
    query = select(Instance).where(Instance.id == instance_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    instance = session.scalars(query).one_or_none()
    if instance is None:
        raise InstanceNotFound(instance_id)
    return instance


def _matches(when: Any, trigger: str, name: str) -> bool:
    if trigger == "started":
        return bool(when.started)
    if trigger == "enter":
        return bool(when.enter == name)
    if trigger == "event":
        return bool(when.event == name)
    return bool(when.deadline == name and (when.kind or "due") == trigger)


def _check_subject_ref(ref: str) -> None:
    if not ref or len(ref) > 64 or not ref.isprintable() or ref != ref.strip():
        raise InvalidArgument(
            f"subject reference {ref!r} must be 1 to 64 printable characters; use the "
            "pseudonymous reference, never a personal identity number")


def _check_eligible(definition: Definition, subject: Subject, at: dt.datetime) -> None:
    rules = definition.spec.eligibility
    needs_age = rules.min_age_years is not None or rules.max_age_years is not None
    if (needs_age or rules.birth_date_required) and subject.birth_date is None:
        raise NotEligible(
            f"pathway {definition.spec.id!r} needs the subject's birth date: give --birth-date")
    years, _ = age_on(subject.birth_date, at.date())
    if years is None:
        return
    if rules.min_age_years is not None and years < rules.min_age_years:
        raise NotEligible(f"subject {subject.ref!r} is {years}; pathway {definition.spec.id!r} "
                          f"starts at age {rules.min_age_years}")
    if rules.max_age_years is not None and years > rules.max_age_years:
        raise NotEligible(f"subject {subject.ref!r} is {years}; pathway {definition.spec.id!r} "
                          f"is for ages up to and including {rules.max_age_years}")
