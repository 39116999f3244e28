"""The engine's public face: start, advance, advance_many - thin calls onto the one step path.

Every call is one write transaction (a `Batch`, runtime/step.py): the instance is read once
under its row lock, the machine chooses, and the new state, audit entries, deadlines and
outgoing messages commit together or not at all. Concurrent steps on one instance queue for
its lock; each is checked against the state it is applied to (`expected_version` refuses a
step whose caller saw an older revision).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pathways_engine import failpoints
from pathways_engine.areas import check_area
from pathways_engine.audit.chain import GENESIS
from pathways_engine.definition.compiler import CompiledPathway
from pathways_engine.definition.compiler import cached
from pathways_engine.definition.compiler import compile_definition
from pathways_engine.definition.loader import Definition
from pathways_engine.definition.loader import from_snapshot
from pathways_engine.definition.loader import same_content
from pathways_engine.definition.registry import Registry
from pathways_engine.definition.values import check_values
from pathways_engine.errors import ConcurrentModification
from pathways_engine.errors import DatabaseError
from pathways_engine.errors import DefinitionError
from pathways_engine.errors import DuplicateInstance
from pathways_engine.errors import FieldError
from pathways_engine.errors import IdempotencyRace
from pathways_engine.errors import NotEligible
from pathways_engine.errors import PathwaysError
from pathways_engine.errors import Problem
from pathways_engine.errors import RoleNotAllowed
from pathways_engine.errors import UnknownRole
from pathways_engine.ports import Clock
from pathways_engine.ports import MessageComposer
from pathways_engine.ports import NoComposer
from pathways_engine.ports import SystemClock
from pathways_engine.rules.ages import age_on
from pathways_engine.store import reads
from pathways_engine.store.database import Database
from pathways_engine.store.rows import InstanceRow
from pathways_engine.store.rows import Loaded
from pathways_engine.store.rows import SubjectRow
from pathways_engine.store.tables import definition_snapshots
from pathways_engine.store.tables import subjects
from pathways_engine.store.writes import insert_missing
from pathways_engine.store.writes import set_birth_date

from .step import Batch
from .step import Case
from .step import Step
from .step import StepContext
from .step import event_time
from .step import fingerprint
from .step import opened_effects
from .step import stored_answer
from .subjects import normalise

# Called inside the step with the instance as read under its lock; raises to refuse (the CLI
# and the HTTP API check the actor's area here, atomically with the step).
Authorize = Callable[[InstanceRow], None]

log = logging.getLogger("pathways.engine")


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


_STORED_ON_COMMIT = "pathways.snapshots_stored"


class PathwayEngine:
    """Start and advance pathways; `batch()` is the step path everything else shares."""

    def __init__(self, db: Database, registry: Registry, *, clock: Clock | None = None,
                 composer: MessageComposer | None = None,
                 switches: Collection[str] = ()) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock or SystemClock()
        self.composer = composer or NoComposer()
        # the deployment's rule switches: a deadline variant with `switch:` applies only then
        self.switches = frozenset(switches)
        self._snapshots_stored: set[str] = set()
        self._delivering = False

    # ---------------------------------------------------------------- definitions

    def compiled_for(self, connection: Connection, content_hash: str) -> CompiledPathway:
        """The compiled definition an instance is pinned to (from its stored snapshot)."""
        compiled = cached(content_hash)
        if compiled is None:
            source = reads.snapshot_source(connection, content_hash)
            if source is None:  # pragma: no cover - guarded by a foreign key
                raise DatabaseError(f"definition snapshot {content_hash[:12]} is missing")
            compiled = compile_definition(from_snapshot(source), checked=True)
        return compiled

    def store_snapshot(self, connection: Connection, definition: Definition,
                       now: dt.datetime) -> None:
        """Store the definition a new instance pins, once. It counts as stored for later steps
        only after this transaction commits: before, another thread's instance must not skip
        it (on PostgreSQL that instance's foreign key would point at an uncommitted row)."""
        if definition.content_hash in self._snapshots_stored:
            return
        if not reads.snapshot_exists(connection, definition.content_hash):
            spec = definition.spec
            earlier = next((at for source, at in reads.other_snapshots(
                connection, spec.id, spec.version, definition.content_hash)
                if not same_content(source, definition.snapshot())), None)
            if earlier is not None:  # two different definitions must not both be "v1"
                raise DefinitionError([Problem(
                    definition.path, definition.line_of("version"),
                    f"pathway {spec.id!r} version {spec.version} has changed since instances "
                    f"started on it ({earlier:%Y-%m-%d}): give the changed definition (or "
                    f"template) a new version, version {spec.version + 1}")])
            insert_missing(connection, definition_snapshots, {
                "content_hash": definition.content_hash, "pathway_id": definition.spec.id,
                "version": definition.spec.version, "source": definition.snapshot(),
                "created_at": now})
        connection.info.setdefault(_STORED_ON_COMMIT, set()).add(definition.content_hash)

    # ---------------------------------------------------------------- the step path

    @contextmanager
    def batch(self, *, commit_point: str | None = None) -> Iterator[Batch]:
        """One write transaction; its steps' rows are written together when it ends.

        Signals the batch wrote (a handed-over pathway completing) are applied right after
        it commits, in their own transactions; if that fails, the sweep applies them."""
        with self.db.writing() as connection:
            connection.info.pop(_STORED_ON_COMMIT, None)  # left by a batch that rolled back
            batch = Batch(self, connection, self.clock.now())
            yield batch
            batch.flush()
            if commit_point:
                failpoints.hit(commit_point)
            stored = connection.info.pop(_STORED_ON_COMMIT, set())
        self._snapshots_stored.update(stored)  # committed now
        if batch.signalled and not self._delivering:
            self._deliver_after(batch.signalled)

    def _deliver_after(self, targets: set[str]) -> None:
        from .signals import deliver

        self._delivering = True
        try:
            deliver(self, only=targets)
        except Exception as exc:  # noqa: BLE001 - committed already; the sweep delivers it
            log.warning("signals to %s wait for the next sweep: %s", sorted(targets), exc)
        finally:
            self._delivering = False

    @contextmanager
    def step(self, instance_id: str) -> Iterator[StepContext]:
        """One step of one instance, in its own transaction (for operations beyond advance)."""
        with self.batch() as batch:
            batch.load([instance_id])
            with batch.step(instance_id) as step:
                yield step

    # ---------------------------------------------------------------- start

    def start(self, pathway: str, *, subject_ref: str, actor: str, role: str,
              birth_date: dt.date | None = None, values: Mapping[str, Any] | None = None,
              at: dt.datetime | None = None, version: int | None = None,
              area: str | None = None, idempotency_key: str | None = None,
              allow_duplicate: bool = False,
              within: Callable[[Connection], None] | None = None) -> str:
        """Start a pathway for a subject; return the new instance id.

        With `idempotency_key`, a repeat of the same request returns the first one's id and
        does nothing; a second running instance of the pathway for the subject is refused
        unless the definition allows parallel ones or `allow_duplicate` says so. `within` runs
        first in the start's transaction, as in `advance`.
        """
        definition = self.registry.get(pathway, version)
        compiled = compile_definition(definition)
        spec = definition.spec
        ref, ref_key = normalise(subject_ref)
        check_area(area)
        if role not in spec.roles:
            raise UnknownRole(role, spec.roles)
        if role not in spec.start.roles:
            raise RoleNotAllowed(role, "start", spec.start.roles)
        given = check_values(spec, values or {}, spec.start.requires, spec.start.accepts,
                             f"starting {spec.id!r}")
        request = fingerprint(kind="start", pathway=pathway, version=version, subject=ref_key,
                              actor=actor, role=role, birth_date=birth_date, values=values,
                              at=at, area=area)
        try:
            return self._start(definition, compiled, ref, ref_key, actor, role, birth_date,
                               given, at, area, idempotency_key, request, allow_duplicate,
                               within)
        except (IdempotencyRace, DuplicateInstance):
            if idempotency_key is None:
                raise
            # the same request, racing: the first one committed meanwhile (PostgreSQL let
            # this one wait on the child's row, then see that pathway running, or on the
            # key itself); answer as the first did
            with self.db.reading() as connection:
                stored = stored_answer(connection, idempotency_key, request)  # or refuse
            if stored is None:
                raise
            return str(stored["id"])

    def _start(self, definition: Definition, compiled: CompiledPathway, ref: str, ref_key: str,
               actor: str, role: str, birth_date: dt.date | None, given: dict[str, Any],
               at: dt.datetime | None, area: str | None, key: str | None, request: str,
               allow_duplicate: bool, within: Callable[[Connection], None] | None) -> str:
        spec = definition.spec
        with self.batch(commit_point="start.before_commit") as batch:
            connection, now = batch.connection, batch.now
            moment = event_time(at, now, spec.timezone)
            if within is not None:
                within(connection)
            if key is not None:
                stored = stored_answer(connection, key, request)
                if stored is not None:
                    return str(stored["id"])
            subject = self._subject(connection, ref, ref_key, birth_date, now)
            with self.open_instance(batch, definition, compiled, subject, actor=actor,
                                    role=role, given=given, at=moment, area=area,
                                    allow_duplicate=allow_duplicate) as step:
                if key is not None:
                    step.writes.requests.append({
                        "key": key, "kind": "start", "fingerprint": request,
                        "instance_id": step.instance.id, "result": {"id": step.instance.id},
                        "created_at": now})
                instance_id = step.instance.id
        failpoints.hit("start.after_commit")
        return instance_id

    @contextmanager
    def open_instance(self, batch: Batch, definition: Definition, compiled: CompiledPathway,
                      subject: SubjectRow, *, actor: str, role: str, given: dict[str, Any],
                      at: dt.datetime, area: str | None, allow_duplicate: bool = False,
                      parent: StepContext | None = None, handover: str | None = None,
                      note: str | None = None) -> Iterator[StepContext]:
        """A new instance in `batch`, as its first step: a start, or a handover from `parent`
        (whose step then holds its writes, so they stand or fall together)."""
        spec = definition.spec
        connection, now = batch.connection, batch.now
        _check_eligible(definition, subject, at)
        if not (allow_duplicate or spec.start.allow_parallel):
            running = reads.running_instance(connection, subject.id, spec.id) or next(
                (c.instance.id for c in batch.cases.values() if c.new and
                 c.instance.subject_id == subject.id and c.instance.pathway_id == spec.id
                 and c.instance.status == "active"), None)
            if running is not None:
                raise DuplicateInstance(subject.ref, spec.id, running)
        self.store_snapshot(connection, definition, now)
        instance = InstanceRow(
            id=secrets.token_hex(8), pathway_id=spec.id, pathway_version=spec.version,
            content_hash=definition.content_hash, subject_id=subject.id,
            state=spec.initial_state, status="active", data=dict(given), version=0,
            audit_head=GENESIS, audit_seq=0, started_at=at, state_entered_at=at,
            updated_at=now, completed_at=None, area=area,
            parent_id=parent.instance.id if parent else None, handover=handover)
        assigned = dict(parent.case.subject_assigned) if parent else {}
        case = Case(Loaded(instance, subject, {}, []), instance, compiled, 0, assigned, [],
                    known=[], new=True, subject_assigned=assigned)
        batch.add(case)
        if parent is not None:
            parent.started.append(instance.id)
        with batch.step(instance.id, into=parent) as step:
            opened = [*step.open_deadlines(None, at),
                      *step.open_deadlines(instance.state, at),
                      *step.open_on(f"enter:{instance.state}", at)]
            changes: dict[str, Any] = {k: [None, v] for k, v in given.items()}
            if area:
                changes["area"] = [None, area]
            effects: dict[str, Any] = {"opened": opened_effects(opened), "completed": False}
            if parent is not None:
                effects["parent"] = [parent.instance.id, handover]
            step.audit("start", at=at, actor=actor, role=role, to_state=instance.state,
                       changes=changes, note=note, effects=effects)
            step.notify("started", spec.id, at)
            step.notify("enter", instance.state, at)
            yield step
            step.hand_over(f"enter:{instance.state}", at, actor)

    def _subject(self, connection: Connection, ref: str, ref_key: str,
                 birth_date: dt.date | None, now: dt.datetime) -> SubjectRow:
        """The subject for this reference, made if new, locked so its starts queue up."""
        subject = reads.subject_by_key(connection, ref_key)
        if subject is None:
            insert_missing(connection, subjects, {"ref": ref, "ref_key": ref_key,
                                                  "birth_date": birth_date, "created_at": now})
        subject = reads.lock_subject(connection, ref_key)
        if birth_date is not None and subject.birth_date not in (None, birth_date):
            raise FieldError(f"subject {subject.ref!r} is recorded with birth date "
                             f"{subject.birth_date}, not {birth_date}")
        if birth_date is not None and subject.birth_date is None:
            set_birth_date(connection, subject.id, birth_date)
            subject = SubjectRow(subject.id, subject.ref, birth_date, subject.name,
                                 subject.personal_id)
        return subject

    # ---------------------------------------------------------------- advance

    def advance(self, instance_id: str, event: str, *, actor: str, role: str,
                values: Mapping[str, Any] | None = None, note: str | None = None,
                at: dt.datetime | None = None, expected_version: int | None = None,
                idempotency_key: str | None = None, authorize: Authorize | None = None,
                within: Callable[[Connection], None] | None = None) -> Step:
        """Send `event` to an instance as `actor` in `role`, in one transaction.

        `within` runs first in that transaction (the API checks its token there): what it
        raises refuses the step, a replayed one included, and what it writes commits with it.
        """
        request = fingerprint(kind="advance", instance=instance_id, event=event, actor=actor,
                              role=role, values=values, note=note, at=at)
        failpoints.hit("step.before_begin")
        with self.batch(commit_point="advance.before_commit") as batch:
            batch.load([instance_id])
            failpoints.hit("advance.after_read")
            with batch.step(instance_id) as step:
                if within is not None:
                    within(batch.connection)
                if idempotency_key is not None:
                    stored = step.replayed(idempotency_key, request)
                    if stored is not None:
                        return Step(stored["id"], stored["event"], stored["from"], stored["to"],
                                    stored["revision"], stored["completed"],
                                    tuple(stored.get("started", ())))
                if authorize is not None:
                    authorize(step.instance)
                if expected_version is not None and step.instance.version != expected_version:
                    raise ConcurrentModification(instance_id, expected_version,
                                                 step.instance.version)
                result = step.send(event, actor=actor, role=role, values=values, note=note, at=at)
                if idempotency_key is not None:
                    step.remember(idempotency_key, "advance", request, result.as_dict())
        failpoints.hit("advance.after_commit")
        return result

    def advance_many(self, requests: Sequence[StepRequest]) -> list[Step | PathwaysError]:
        """Apply many independent steps with one commit (group commit), for integrations.

        A step refused (bad role, failing guard, stale `expected_version`) or failing while
        it is worked out (a deadline that cannot be computed) comes back as its error; it
        changes nothing, and the others go on. The batch's rows reach the database together
        at commit. A crash loses the whole batch, never part of a step.
        """
        results: list[Step | PathwaysError] = []
        with self.batch(commit_point="advance_many.before_commit") as batch:
            batch.load(sorted({r.instance_id for r in requests}))
            for request in requests:
                try:
                    with batch.step(request.instance_id) as step:
                        if request.expected_version is not None and \
                                request.expected_version != step.instance.version:
                            raise ConcurrentModification(request.instance_id,
                                                         request.expected_version,
                                                         step.instance.version)
                        results.append(step.send(request.event, actor=request.actor,
                                                 role=request.role, values=request.values,
                                                 note=request.note, at=request.at))
                except PathwaysError as refused:
                    results.append(refused)
        return results


def _check_eligible(definition: Definition, subject: SubjectRow, at: dt.datetime) -> None:
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
