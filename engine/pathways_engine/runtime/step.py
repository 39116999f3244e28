"""The one step path: every change to an instance is a step inside a batch.

A `Batch` is one write transaction. It reads the instances it works on once, under their row
locks (with their subject, assignments and consents in the same statement), lets steps change
them in memory, and writes everything at the end - one executemany per table, one
version-checked UPDATE of the instances (store/writes.py). `advance` is a batch of one step;
`advance_many`, the sweep and migrations are batches of many.

A `StepContext` is one step of one instance: it decides (python-statemachine chooses the
transition), then changes state, data, deadlines, audit and messages. If a step raises, its
instance is restored to what it was before the step and nothing it wrote reaches the batch.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from pathways_engine.audit.chain import message_digest
from pathways_engine.audit.chain import new_entry
from pathways_engine.definition.compiler import CompiledPathway
from pathways_engine.definition.compiler import Fired
from pathways_engine.definition.values import check_values
from pathways_engine.definition.values import coerce
from pathways_engine.errors import EventNotAllowed
from pathways_engine.errors import GuardFailed
from pathways_engine.errors import IdempotencyConflict
from pathways_engine.errors import InstanceFinished
from pathways_engine.errors import InstanceNotFound
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import RoleNotAllowed
from pathways_engine.errors import UnknownRole
from pathways_engine.ports import CaseView
from pathways_engine.ports import NotificationRequest
from pathways_engine.ports import Outgoing
from pathways_engine.rules.ages import age_on
from pathways_engine.rules.calendars import moment
from pathways_engine.store import reads
from pathways_engine.store.rows import ConsentRow
from pathways_engine.store.rows import DeadlineRow
from pathways_engine.store.rows import InstanceRow
from pathways_engine.store.rows import Loaded
from pathways_engine.store.rows import legal_bases
from pathways_engine.store.writes import WriteBatch

from .deadlines import closed_status
from .deadlines import new_deadline
from .deadlines import next_occurrence

if TYPE_CHECKING:
    from .engine import PathwayEngine

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
    started: tuple[str, ...] = ()  # pathways this step handed the child over to

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.instance_id, "event": self.event, "from": self.from_state,
                "to": self.to_state, "revision": self.version, "completed": self.completed,
                "started": list(self.started)}


@dataclass(frozen=True)
class _Saved:
    instance: InstanceRow
    compiled: CompiledPathway
    assigned: dict[str, str]
    consents: list[ConsentRow]
    known: list[DeadlineRow] | None
    opened: list[DeadlineRow]
    touched: bool
    subject_assigned: dict[str, str]


@dataclass
class Case:
    """One instance as a batch holds it: read once, changed by each finished step."""

    loaded: Loaded
    instance: InstanceRow
    compiled: CompiledPathway
    loaded_version: int
    assigned: dict[str, str]
    consents: list[ConsentRow]
    known: list[DeadlineRow] | None = None  # every pending deadline in the database, if read
    opened: list[DeadlineRow] = field(default_factory=list)  # opened in this batch
    new: bool = False  # started in this batch: inserted, not updated
    touched: bool = False
    subject_assigned: dict[str, str] = field(default_factory=dict)  # the child's, all pathways

    def saved(self) -> _Saved:
        """What a failing step must put back (not the compiled definition or the read row)."""
        return _Saved(self.instance.copy(), self.compiled, dict(self.assigned),
                      list(self.consents),
                      None if self.known is None else [copy.copy(r) for r in self.known],
                      [copy.copy(r) for r in self.opened], self.touched,
                      dict(self.subject_assigned))

    def restore(self, saved: _Saved) -> None:
        self.instance, self.compiled = saved.instance, saved.compiled
        self.assigned, self.consents = saved.assigned, saved.consents
        self.known, self.opened, self.touched = saved.known, saved.opened, saved.touched
        self.subject_assigned = saved.subject_assigned

    @property
    def bases(self) -> dict[str, str]:
        return legal_bases(self.consents)

    def pending(self) -> list[DeadlineRow]:
        rows = [*(self.known or []), *self.opened]
        return [row for row in rows if row.status == "pending"]


class Batch:
    """One write transaction over many instances; see the module docstring."""

    def __init__(self, engine: PathwayEngine, connection: Connection, now: dt.datetime) -> None:
        self.engine = engine
        self.connection = connection
        self.now = now
        self.cases: dict[str, Case] = {}
        self.writes = WriteBatch()
        self.signalled: set[str] = set()  # instances this batch wrote a signal to

    def load(self, ids: list[str], *, skip_locked: bool = False,
             with_deadlines: bool = False) -> list[str]:
        """Read and lock these instances (those not already held); return the ids held now."""
        wanted = [i for i in ids if i not in self.cases]
        found = reads.load_instances(self.connection, wanted, lock=True, skip_locked=skip_locked)
        if found and not self.cases:  # the time is read once the locks are held: a step that
            self.now = self.engine.clock.now()  # waited for one never predates the one before
        compiled = {i: self.engine.compiled_for(self.connection, loaded.instance.content_hash)
                    for i, loaded in found.items()}
        # rows are read where steps need them: the sweep, and definitions whose deadlines
        # repeat, extend, pause or outlive a state that can be entered again
        rows_for = {i for i in found if with_deadlines or compiled[i].needs_rows}
        known: dict[str, list[DeadlineRow]] = {i: [] for i in rows_for}
        for row in reads.pending_deadlines(self.connection, rows_for):
            known[row.instance_id].append(row)
        for instance_id, loaded in found.items():
            self.cases[instance_id] = Case(
                loaded, loaded.instance.copy(), compiled[instance_id],
                loaded.instance.version, {**loaded.subject_assigned, **loaded.assigned},
                list(loaded.consents), known.get(instance_id),
                subject_assigned=dict(loaded.subject_assigned))
        return [i for i in ids if i in self.cases]

    def add(self, case: Case) -> None:
        self.cases[case.instance.id] = case

    @contextmanager
    def step(self, instance_id: str, *, undo: bool = True,
             into: StepContext | None = None) -> Iterator[StepContext]:
        """One step of a held instance; if it raises, the instance is as it was before, and
        so is every pathway it handed over to (they are dropped from the batch).

        `undo=False` for steps whose failure aborts the whole batch (the sweep's), which then
        need not keep a copy to put back. `into`: the step whose handover this is; its writes
        join that step's, so both stand or fall together.
        """
        case = self.cases.get(instance_id)
        if case is None:
            raise InstanceNotFound(instance_id)
        saved = case.saved() if undo else None
        context = StepContext(self, case)
        try:
            yield context
        except BaseException:
            if saved is not None:
                case.restore(saved)
            for started in context.started:
                self.cases.pop(started, None)
            for joined, before in context.joined:
                joined.restore(before)
            raise
        if context.changed:
            case.touched = True
            (into.writes if into is not None else self.writes).merge(context.writes)

    def flush(self) -> None:
        for case in self.cases.values():
            if case.new:
                self.writes.new_instances.append(case.instance)
            elif case.touched:
                self.writes.changed(case.instance, case.loaded_version, case.loaded.instance)
            self.writes.new_deadlines += case.opened
            case.opened = []
            for row in case.known or []:
                if row.changed and row.id is not None:
                    self.writes.changed_deadlines[row.id] = row
        self.writes.flush(self.connection)
        self.writes = WriteBatch()


class StepContext:
    """One step of one instance; see the module docstring."""

    def __init__(self, batch: Batch, case: Case) -> None:
        self.batch = batch
        self.case = case
        self.engine = batch.engine
        self.instance = case.instance
        self.compiled = case.compiled
        self.spec = case.compiled.spec
        self.subject = case.loaded.subject
        self.now = batch.now
        self.writes = WriteBatch()
        self.changed = False
        self.started: list[str] = []  # instances this step handed over to (started)
        # running instances a handover of this step joined, as they were before it
        self.joined: list[tuple[Case, _Saved]] = []

    # ------------------------------------------------------------ reading

    def view(self) -> CaseView:
        return CaseView(self.compiled.definition, self.instance, self.subject,
                        self.case.assigned, self.case.bases)

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)

    def event_time(self, at: dt.datetime | None) -> dt.datetime:
        """`at`, or now - never before the instance's last step (clocks of hosts differ)."""
        if at is None:
            return max(self.now, self.instance.state_entered_at)
        return event_time(at, self.now, self.spec.timezone)

    def guard_values(self, values: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
        years, months = age_on(self.subject.birth_date, at.date())
        return {**self.instance.data, **values, "age_years": years, "age_months": months,
                **moment(at, self.zone(), self.spec.country)}

    def choose(self, event: str, role: str, values: Mapping[str, Any],
               at: dt.datetime) -> tuple[Fired, dict[str, Any]]:
        """Check role and values and let the machine pick the transition; change nothing."""
        spec, instance, compiled = self.spec, self.instance, self.compiled
        if instance.status != "active":
            raise InstanceFinished(instance.id, instance.state, instance.status)
        if at < instance.state_entered_at:
            raise InvalidArgument(
                f"--at {at.isoformat()} is before the instance's last step "
                f"({instance.state_entered_at.isoformat()})")
        candidates = [t for _, t in compiled.transitions_from(instance.state) if t.event == event]
        if not candidates:
            # a person is not offered the events only the engine sends (a handover's return)
            here = [t for _, t in compiled.transitions_from(instance.state)]
            allowed = {t.event for t in here if role == SYSTEM_ROLE or t.roles}
            raise EventNotAllowed(event, instance.state, allowed, compiled.events,
                                  () if role == SYSTEM_ROLE else
                                  {t.event for t in here if not t.roles} - allowed)
        if role != SYSTEM_ROLE:
            if role not in spec.roles:
                raise UnknownRole(role, spec.roles)
            senders = {r for t in candidates for r in t.roles}
            if role not in senders:
                raise RoleNotAllowed(role, event, senders)
        typed = {}
        for name, value in values.items():
            if name not in spec.fields:
                check_values(spec, {name: value}, [], [], f"event {event!r}")  # raises
            typed[name] = coerce(name, spec.fields[name], value)
        fired = compiled.fire(instance.state, event, self.guard_values(typed, at))
        if fired is None:
            raise GuardFailed(event, [t.guard for t in candidates if t.guard])
        if role != SYSTEM_ROLE and role not in fired.transition.roles:
            raise RoleNotAllowed(role, event, fired.transition.roles)
        given = check_values(spec, values, fired.transition.requires, fired.transition.accepts,
                             f"event {event!r}")
        return fired, given

    # ------------------------------------------------------------ idempotency

    def replayed(self, key: str, request: str) -> dict[str, Any] | None:
        """The answer the first request with `key` got, if this is a retry of it; a key
        first used for another request is refused (IdempotencyConflict)."""
        return stored_answer(self.batch.connection, key, request)

    def remember(self, key: str, kind: str, request: str,
                 answer: dict[str, Any]) -> dict[str, Any]:
        """Keep `answer` for a retry with `key`; it commits with this step, or not at all."""
        self.writes.requests.append({"key": key, "kind": kind, "fingerprint": request,
                                     "instance_id": self.instance.id, "result": answer,
                                     "created_at": self.now})
        return answer

    # ------------------------------------------------------------ writing

    def bump(self) -> None:
        """Raise the revision once per step; every step that writes calls this first."""
        if not self.changed:
            self.changed = True
            self.instance.version += 1
            self.instance.updated_at = self.now

    def audit(self, kind: str, *, at: dt.datetime, actor: str, role: str,
              event: str | None = None, from_state: str | None = None,
              to_state: str | None = None, changes: dict[str, Any] | None = None,
              note: str | None = None, effects: dict[str, Any] | None = None) -> dict[str, Any]:
        self.bump()
        entry = new_entry(self.instance, at=at, recorded_at=self.now, actor=actor, role=role,
                          kind=kind, key=self.engine.db.audit_key, event=event,
                          from_state=from_state, to_state=to_state, changes=changes, note=note,
                          effects=effects)
        self.writes.audit.append(entry)
        return entry

    def send(self, event: str, *, actor: str, role: str, values: Mapping[str, Any] | None = None,
             note: str | None = None, at: dt.datetime | None = None) -> Step:
        """Choose and apply `event` as `actor` in `role`."""
        moment = self.event_time(at)
        fired, given = self.choose(event, role, values or {}, moment)
        return self.transition(fired, given, actor=actor, role=role, at=moment, note=note)

    def transition(self, fired: Fired, given: Mapping[str, Any], *, actor: str, role: str,
                   at: dt.datetime, note: str | None = None) -> Step:
        """Apply a chosen transition; deadlines change in a fixed order the audit replays:
        obligations met or cancelled by the event and by entering the target, then the source
        state's deadlines closed, then - the pathway finished - whatever is still open, else
        the target's deadlines, those the happenings open and next occurrences opened.
        An internal transition only happens: nothing is left, entered or opened by state."""
        instance = self.instance
        internal = fired.transition.internal
        changes = {k: [instance.data.get(k), v] for k, v in given.items()
                   if instance.data.get(k) != v}
        self.bump()
        instance.data = {**instance.data, **given}
        happenings = [fired.transition.event]
        if not internal:
            instance.state, instance.state_entered_at = fired.target, at
            happenings.append(f"enter:{fired.target}")
        repeats: list[DeadlineRow] = []
        met, cancelled = [], []
        for happening in happenings:
            met += self.happened(happening, at, repeats)
            cancelled += self.cancelled(happening, at)
        if not internal:
            self.close_state(fired.source, at)
        final = self.spec.states[fired.target].final
        opened: list[DeadlineRow] = []
        if final:
            instance.status, instance.completed_at = "completed", at
            self.close_end(at)
        else:
            if not internal:
                opened = self.open_deadlines(fired.target, at)
            for happening in happenings:
                opened += self.open_on(happening, at)
            opened += self.open_rows(repeats)
        effects: dict[str, Any] = {"opened": opened_effects(opened), "completed": final,
                                   "happened": happenings, "met": met, "cancelled": cancelled}
        # "internal": the report's stays and FHIR's tasks pair only entries that change state
        kind = "internal" if internal else "transition"
        self.audit(kind, at=at, actor=actor, role=role, event=fired.transition.event,
                   from_state=fired.source, to_state=fired.target, changes=changes, note=note,
                   effects=effects)
        self.notify("event", fired.transition.event, at)
        if not internal:
            self.notify("enter", fired.target, at)
        self.hand_over(fired.transition.event, at, actor)
        if not internal:
            self.hand_over(f"enter:{fired.target}", at, actor)
        if final:
            self.finished(at)
        return Step(instance.id, fired.transition.event, fired.source, fired.target,
                    instance.version, instance.status == "completed", tuple(self.started))

    def open_rows(self, rows: list[DeadlineRow]) -> list[DeadlineRow]:
        self.case.opened.extend(rows)
        return rows

    def open_deadlines(self, state: str | None, entered_at: dt.datetime) -> list[DeadlineRow]:
        """Open the deadlines of `state` (for None: the whole-pathway ones opened at start).

        An obligation of the state still open from an earlier visit is not opened again: its
        legal clock keeps running from the first time.
        """
        specs = self.spec.deadlines if state is None else self.spec.states[state].deadlines
        running = {row.name for row in self.case.pending()}
        rows = [new_deadline(self.spec, d, self.instance, state, entered_at,
                             self.engine.switches)
                for d in specs if not (state is None and d.opened_by)
                and not (d.obligation and d.name in running)]
        return self.open_rows(rows)

    def open_on(self, happening: str, at: dt.datetime) -> list[DeadlineRow]:
        """Whole-pathway deadlines whose `opened_by` names this happening (not if running)."""
        running = {row.name for row in self.case.pending()}
        return self.open_rows([new_deadline(self.spec, d, self.instance, None, at,
                                            self.engine.switches)
                               for d in self.compiled.opens.get(happening, [])
                               if d.name not in running])

    def happened(self, happening: str, at: dt.datetime,
                 repeats: list[DeadlineRow] | None = None) -> list[str]:
        """Meet the obligations this happening meets; their next occurrences go in `repeats`."""
        names = self.compiled.meets.get(happening, [])
        if not names:
            return []
        for row in self.case.pending():
            if row.marked(happening, row.met_by):
                row.status, row.closed_at, row.changed = closed_status(row, at), at, True
                spec = self.compiled.deadline_specs[(row.state, row.name)]
                if spec.repeat is not None and repeats is not None:
                    repeats.append(next_occurrence(self.spec, spec, row, self.instance,
                                                   self.engine.switches))
        if self.case.known is None:  # rows not read: one set-based UPDATE meets them
            self.writes.closes.append({"kind": "met_by", "i": self.instance.id,
                                       "p": f"%,{happening},%", "at": at})
        return list(names)

    def cancelled(self, happening: str, at: dt.datetime) -> list[str]:
        names = self.compiled.cancels.get(happening, [])
        if not names:
            return []
        for row in self.case.pending():
            if row.marked(happening, row.cancelled_by):
                row.status, row.closed_at, row.changed = "cancelled", at, True
        if self.case.known is None:
            self.writes.closes.append({"kind": "cancelled_by", "i": self.instance.id,
                                       "p": f"%,{happening},%", "at": at})
        return list(names)

    def close_state(self, state: str, at: dt.datetime) -> None:
        """A state was left: its deadlines are met (on time or late); its obligations stay."""
        for row in self.case.pending():
            if row.state == state and row.met_by is None:
                row.status, row.closed_at, row.changed = closed_status(row, at), at, True
        if self.case.known is None:
            self.writes.closes.append({"kind": "state", "i": self.instance.id, "s": state,
                                       "at": at})

    def close_end(self, at: dt.datetime) -> None:
        """The pathway finished: deadlines still open are met; obligations still open unmet."""
        for row in self.case.pending():
            row.status = "unmet" if row.met_by is not None else closed_status(row, at)
            row.closed_at, row.changed = at, True
        if self.case.known is None:
            self.writes.closes.append({"kind": "end", "i": self.instance.id, "at": at})

    def cancel_all(self, at: dt.datetime) -> None:
        """Every open deadline cancelled (a migration: the new version's rules take over)."""
        for row in self.case.pending():
            row.status, row.closed_at, row.changed = "cancelled", at, True
        if self.case.known is None:
            self.writes.closes.append({"kind": "cancel_all", "i": self.instance.id, "at": at})

    def hand_over(self, happening: str, at: dt.datetime, actor: str) -> None:
        """Start the pathways this happening hands the child over to (runtime/handovers)."""
        if self.compiled.handovers.get(happening):
            from .handovers import hand_over

            hand_over(self, happening, at, actor)

    def finished(self, at: dt.datetime, why: str = "completed") -> None:
        """The pathway ended: answer a waiting parent, cancel children it takes along."""
        if self.instance.parent_id is not None or self.compiled.cancels_children:
            from .handovers import finished

            finished(self, at, why)

    def notify(self, trigger: str, name: str, at: dt.datetime,
               extra: Mapping[str, Any] | None = None) -> int:
        """Queue every notification the definition declares for this trigger."""
        written = 0
        for index, spec in self.compiled.notifications_for.get((trigger, name), ()):
            request = NotificationRequest(
                template=spec.template, roles=tuple(spec.to), trigger=trigger, name=name, at=at,
                cause_key=f"{self.instance.id}:{self.instance.audit_seq}:{index}",
                extra=dict(extra or {}))
            written += self.queue(request)
        return written

    def queue(self, request: NotificationRequest, *, reason: str | None = None) -> int:
        """Write the messages the composer makes for `request`, with their audit entry."""
        messages = self.engine.composer.compose(self.view(), request)
        if not messages:
            return 0
        rows = [outbox_row(self.instance.id, m, self.now) for m in messages]
        self.writes.outbox += rows
        changes: dict[str, Any] = {"template": request.template, "to": list(request.roles),
                                   "messages": len(rows), "trigger": request.trigger,
                                   "name": request.name}
        if request.extra:
            changes["extra"] = {k: v for k, v in request.extra.items() if k != "escalate_to"}
        if reason:
            changes["reason"] = reason
        self.audit("notification_queued", at=request.at, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE,
                   changes=changes,
                   effects={"messages": [[r["idempotency_key"], r["role"], r["party"],
                                          r["digest"]] for r in rows]})
        return len(rows)


def event_time(at: dt.datetime | None, now: dt.datetime, zone: str) -> dt.datetime:
    """`at` as an aware time (a naive one is local time in `zone`); never in the future."""
    if at is None:
        return now
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(zone))
    if at > now + FUTURE_TOLERANCE:
        raise InvalidArgument(
            f"--at {at.isoformat()} is in the future; record events when they have happened")
    return at


def opened_effects(rows: list[DeadlineRow]) -> list[list[Any]]:
    """What the audit replay needs of each deadline opened (audit/replay.py)."""
    effects: list[list[Any]] = []
    for row in rows:
        extra: dict[str, Any] = {}
        if row.met_by:
            extra["met_by"] = row.met_by
        if row.cancelled_by:
            extra["cancelled_by"] = row.cancelled_by
        if row.window_start:
            extra["window_start"] = row.window_start.isoformat()
        if row.occurrence != 1:
            extra["occurrence"] = row.occurrence
        effects.append([row.name, row.state, row.due_at.isoformat(), *([extra] if extra else [])])
    return effects


def outbox_row(instance_id: str, message: Outgoing, now: dt.datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "idempotency_key": message.idempotency_key, "message_id": message.message_id,
        "instance_id": instance_id, "role": message.role, "party": message.party,
        "channel": message.channel, "address": message.address, "language": message.language,
        "template": message.template, "subject": message.subject,
        "body_text": message.body_text, "body_html": message.body_html,
        "personal_data": message.personal_data, "legal_basis": message.legal_basis,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "claimed_at": None,
        "last_error": None, "created_at": now, "sent_at": None,
    }
    row["digest"] = message_digest(row)
    return row


def stored_answer(connection: Connection, key: str, request: str) -> dict[str, Any] | None:
    """What the request first sent with idempotency `key` answered (`request` is its
    fingerprint), None for a new key; a key first used for another request is refused."""
    stored = reads.stored_request(connection, key)
    if stored is None:
        return None
    if stored.fingerprint != request:
        raise IdempotencyConflict(key)
    return dict(stored.result)


def fingerprint(**request: Any) -> str:
    """What must be the same for a retry with an idempotency key to count as the same request."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

