"""Moving running instances to a new version of their definition.

New instances always start on the newest version; running ones stay pinned to the version
they started on until a coordinator moves them. A move maps each old state to a state of the
new version, closes the old open deadlines (cancelled, with their timers) and opens the new
state's deadlines counted from when the instance entered that state, so deadlines follow the
new rules. Every move is audited. The whole plan is checked before anything is written: a
mapping that would leave any instance in a state that does not exist refuses the migration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from pathways_engine.definition.compiler import CompiledPathway
from pathways_engine.definition.compiler import compile_definition
from pathways_engine.errors import FieldError
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import PathwaysError
from pathways_engine.errors import did_you_mean
from pathways_engine.store import views

from .engine import PathwayEngine
from .step import SYSTEM_ROLE
from .step import StepContext
from .step import opened_effects

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
    with engine.db.reading() as connection:
        for instance_id, version, state in views.running_elsewhere(connection, pathway,
                                                                   to_version):
            new = mapping.get(state, state)
            if new not in target.states:
                problems.append(f"{state!r} (v{version}) -> {new!r}{did_you_mean(new, target.states)}")
            result.moves[(version, state, new)] += 1
            result.instance_ids.append(instance_id)
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
            actor: str, on_batch: Callable[[int], object] | None = None) -> int:
    """Apply a checked plan in batches; each batch commits whole. A rerun continues.
    `on_batch(n)` after each commit, with the instances it looked at (a progress bar)."""
    definition = engine.registry.get(migration.pathway, migration.to_version)
    compiled = compile_definition(definition)
    moved = 0
    for start in range(0, migration.total, BATCH):
        with engine.batch() as batch:
            engine.store_snapshot(batch.connection, definition, batch.now)
            for instance_id in batch.load(migration.instance_ids[start:start + BATCH],
                                          with_deadlines=True):
                instance = batch.cases[instance_id].instance
                if instance.pathway_version == migration.to_version or instance.status != "active":
                    continue  # moved by an earlier run, or finished meanwhile
                with batch.step(instance_id) as step:
                    move(step, compiled, mapping.get(instance.state, instance.state), actor)
                moved += 1
        if on_batch is not None:
            on_batch(len(migration.instance_ids[start:start + BATCH]))
    return moved


def move(step: StepContext, target: CompiledPathway, new_state: str, actor: str) -> None:
    """Move one instance to `target`'s version and `new_state`; its deadlines start afresh."""
    instance, now = step.instance, step.now
    old_version, old_state = instance.pathway_version, instance.state
    cancelled = [row.name for row in step.case.pending()]
    step.bump()
    step.cancel_all(now)
    step.case.compiled, step.compiled, step.spec = target, target, target.spec
    instance.pathway_version, instance.content_hash = target.spec.version, \
        target.definition.content_hash
    instance.state = new_state
    try:
        opened = step.open_deadlines(None, instance.started_at)
        opened += step.open_deadlines(new_state, instance.state_entered_at)
    except FieldError as exc:
        raise PathwaysError(f"instance {instance.id}: {exc}") from None
    step.audit("migration", at=now, actor=actor, role=SYSTEM_ROLE, from_state=old_state,
               to_state=new_state,
               changes={"version": [old_version, target.spec.version],
                        "deadlines_cancelled": cancelled,
                        "deadlines_opened": [row.name for row in opened]},
               effects={"cancelled": "all", "opened": opened_effects(opened),
                        "definition": target.definition.content_hash})
