"""Moving running instances to a new version of their definition.

New instances always start on the newest version; running ones stay pinned to the version
they started on until a coordinator moves them. A move maps each old state to a state of the
new version, closes the old open deadlines (cancelled, with their timers) and opens the new
state's deadlines counted from when the instance entered that state, so deadlines follow the
new rules. Every move is audited. The whole plan is checked before anything is written: a
mapping that would leave any instance in a state that does not exist refuses the migration.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from . import audit
from .compiler import compile_definition
from .deadlines import open_deadlines
from .errors import FieldError
from .errors import InvalidArgument
from .errors import PathwaysError
from .errors import did_you_mean
from .runtime import SYSTEM_ROLE
from .runtime import PathwayEngine
from .runtime import get_instance
from .spec import PathwaySpec
from .store.models import Deadline
from .store.models import Instance
from .store.models import Timer
from .store.models import bump_revision

BATCH = 500


@dataclass
class MigrationPlan:
    pathway: str
    to_version: int
    moves: Counter[tuple[int, str, str]] = field(default_factory=Counter)  # (from v, old, new)
    instance_ids: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.instance_ids)


def parse_mapping(items: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InvalidArgument(f"--map {item!r}: use OLD_STATE=NEW_STATE")
        mapping[old.strip()] = new.strip()
    return mapping


def plan(engine: PathwayEngine, pathway: str, to_version: int,
         mapping: Mapping[str, str]) -> MigrationPlan:
    """Check every running instance can move; raise InvalidArgument naming what cannot."""
    target = engine.registry.get(pathway, to_version).spec
    result = MigrationPlan(pathway, to_version)
    problems: list[str] = []
    with engine.db.sessions() as session:
        rows = session.execute(select(Instance.id, Instance.pathway_version, Instance.state).where(
            Instance.pathway_id == pathway, Instance.status == "active",
            Instance.pathway_version != to_version).order_by(Instance.id))
        for row in rows:
            new = mapping.get(row.state, row.state)
            if new not in target.states:
                problems.append(f"{row.state!r} (v{row.pathway_version}) -> {new!r}"
                                f"{did_you_mean(new, target.states)}")
            result.moves[(row.pathway_version, row.state, new)] += 1
            result.instance_ids.append(row.id)
    known_states = {old for _, old, _ in result.moves} | {
        state for d in engine.registry.all() if d.spec.id == pathway
        and d.spec.version != to_version for state in d.spec.states}
    unknown = sorted(set(mapping) - known_states)
    if problems:
        shown = "; ".join(sorted(set(problems))[:5])
        raise InvalidArgument(f"version {to_version} of {pathway!r} has no such state for "
                              f"{len(problems)} running instances: {shown}; "
                              f"map them with --map OLD=NEW (states of v{to_version}: "
                              f"{', '.join(target.states)})")
    if unknown:
        raise InvalidArgument(f"--map names states no earlier version of {pathway!r} has: "
                              f"{', '.join(unknown)}")
    return result


def migrate(engine: PathwayEngine, migration: MigrationPlan, mapping: Mapping[str, str],
            actor: str) -> int:
    """Apply a checked plan in batches; each batch commits whole. A rerun continues."""
    definition = engine.registry.get(migration.pathway, migration.to_version)
    compiled = compile_definition(definition)
    moved = 0
    for start in range(0, migration.total, BATCH):
        with engine.writing() as session:
            now = engine.clock.now()
            engine.store_snapshot(session, definition, now)
            for instance_id in migration.instance_ids[start:start + BATCH]:
                instance = get_instance(session, instance_id, lock=True)
                if instance.pathway_version == migration.to_version or instance.status != "active":
                    continue  # moved by an earlier run, or finished meanwhile
                _move(session, compiled.spec, definition.content_hash, instance,
                      mapping.get(instance.state, instance.state), actor, now)
                moved += 1
    return moved


def _move(session: Session, spec: PathwaySpec, content_hash: str, instance: Instance,
          new_state: str, actor: str, now: dt.datetime) -> None:
    old_version, old_state = instance.pathway_version, instance.state
    pending = list(session.scalars(select(Deadline).where(
        Deadline.instance_id == instance.id, Deadline.status == "pending")))
    for row in pending:
        row.status, row.closed_at = "cancelled", now
    if pending:
        session.execute(update(Timer).where(Timer.deadline_id.in_([r.id for r in pending]),
                                            Timer.status == "pending").values(status="cancelled"))
    bump_revision(instance)
    instance.pathway_version, instance.content_hash = spec.version, content_hash
    instance.state, instance.updated_at = new_state, now
    try:
        opened = open_deadlines(session, spec, instance, None, instance.started_at)
        opened += open_deadlines(session, spec, instance, new_state, instance.state_entered_at)
    except FieldError as exc:
        raise PathwaysError(f"instance {instance.id}: {exc}") from None
    audit.append(session, instance, at=now, recorded_at=now, actor=actor, role=SYSTEM_ROLE,
                 kind="migration", from_state=old_state, to_state=new_state,
                 changes={"version": [old_version, spec.version],
                          "deadlines_cancelled": [r.name for r in pending],
                          "deadlines_opened": [r.name for r in opened]})
