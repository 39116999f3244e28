"""Caseworker commands: start, advance, show, list, history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from .app import App
from .cli_output import emit
from .cli_output import format_history
from .cli_output import format_show
from .timeparse import ISO_DATE
from .timeparse import ISO_TIME

pass_app = click.make_pass_decorator(App)

_as = click.option("--as", "actor", required=True, metavar="ACTOR",
                   help="Who is acting (user id or name).")
_role = click.option("--role", required=True, metavar="ROLE", help="The role the actor acts in.")
_set = click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
                    help="Set a data field; parsed by the field's declared type. Repeatable.")
_at = click.option("--at", type=ISO_TIME, default=None,
                   help="When it happened (ISO 8601; without offset: the pathway's local "
                        "time). Default: now. Never in the future.")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON (keys in the README).")


@click.command()
@click.argument("pathway")
@click.option("--subject", "subject_ref", required=True, metavar="REF",
              help="Pseudonymous reference of the child or pregnant woman.")
@click.option("--birth-date", type=ISO_DATE, default=None, help="Subject's birth date.")
@click.option("--version", "version", type=int, default=None,
              help="Definition version (default: newest).")
@click.option("--area", default=None, metavar="CODE",
              help="Municipality or region (routes messages to that area's parties).")
@_set
@_as
@_role
@_at
@_json
@pass_app
def start(app: App, pathway: str, subject_ref: str, birth_date: dt.date | None,
          version: int | None, area: str | None, assignments: tuple[str, ...], actor: str,
          role: str, at: dt.datetime | None, as_json: bool) -> None:
    """Start PATHWAY for a subject and print the new instance id."""
    from pathways_engine.values import parse_assignments

    app.actors.authorize(actor, role)
    app.check_area(area)
    instance_id = app.may("create").engine.start(
        pathway, subject_ref=subject_ref, birth_date=birth_date, actor=actor, role=role,
        values=parse_assignments(assignments), at=at, version=version, area=area)
    emit({"id": instance_id}, as_json, instance_id)


@click.command()
@click.argument("instance")
@click.argument("event")
@_set
@click.option("--note", default=None, help="A note for the history.")
@click.option("--expect-revision", "expected", type=int, default=None,
              help="Refuse (exit 3) unless the instance is still at this revision "
                   "(from `show`).")
@_as
@_role
@_at
@_json
@pass_app
def advance(app: App, instance: str, event: str, assignments: tuple[str, ...], note: str | None,
            expected: int | None, actor: str, role: str, at: dt.datetime | None,
            as_json: bool) -> None:
    """Send EVENT to INSTANCE."""
    from pathways_engine.values import parse_assignments

    app.actors.authorize(actor, role)
    step = app.may("write").engine.advance(instance, event, actor=actor, role=role,
                              values=parse_assignments(assignments), note=note, at=at,
                              expected_version=expected)
    data = {"id": step.instance_id, "event": step.event, "from": step.from_state,
            "to": step.to_state, "revision": step.version, "completed": step.completed}
    emit(data, as_json, f"{step.instance_id}: {step.from_state} -> {step.to_state}"
                        + (" (completed)" if step.completed else ""))


@click.command()
@click.argument("instance")
@_json
@pass_app
def show(app: App, instance: str, as_json: bool) -> None:
    """Show an instance: state, data, who may do what now, deadlines, history."""
    from pathways_engine.queries import show as show_instance

    data = show_instance(app.engine, instance)
    emit(data, as_json, None if as_json else format_show(data))


@click.command(name="list")
@click.option("--pathway", default=None)
@click.option("--state", default=None)
@click.option("--subject", "subject_ref", default=None, metavar="REF")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@_json
@pass_app
def list_(app: App, pathway: str | None, state: str | None, subject_ref: str | None, limit: int,
          as_json: bool) -> None:
    """List instances."""
    from pathways_engine.queries import list_instances

    rows = list_instances(app.engine, pathway=pathway, state=state, subject=subject_ref,
                          limit=limit)
    lines = [f"{r['id']}  {r['pathway']} v{r['version']}  {r['subject']}  {r['state']}  "
             f"{r['status']}" for r in rows]
    emit(rows, as_json, "\n".join(lines) if lines else "(no instances)")


@click.command()
@click.argument("instance")
@_json
@pass_app
def history(app: App, instance: str, as_json: bool) -> None:
    """Print the audit history of INSTANCE."""
    from pathways_engine.queries import history as history_of

    rows: list[dict[str, Any]] = history_of(app.engine, instance)
    emit(rows, as_json, format_history(rows))


COMMANDS = [start, advance, show, list_, history]


@click.command()
@click.argument("instance")
@click.option("--format", "fmt", type=click.Choice(["fhir"]), default="fhir", show_default=True,
              help="fhir: a FHIR R4 Bundle with a CarePlan and its Tasks.")
@pass_app
def export(app: App, instance: str, fmt: str) -> None:
    """Export INSTANCE for other systems (no names or personal identity numbers)."""
    import json

    from pathways_engine.queries import show
    from pathways_engine.runtime import get_instance

    from .fhir import bundle

    data = show(app.engine, instance)
    with app.db.sessions() as session:
        spec = app.engine.compiled_for(session, get_instance(session, instance).content_hash).spec
    roles = {name: state.responsible for name, state in spec.states.items()}
    click.echo(json.dumps(bundle(data, roles), indent=2, ensure_ascii=False))


COMMANDS.append(export)
