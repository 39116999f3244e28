"""Caseworker commands: start, advance, show, list, history, export."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from typing import Any

import click

from . import completion
from .app import App
from .cli_output import cut_short
from .cli_output import emit
from .cli_output import format_history
from .cli_output import format_show
from .cli_output import table
from .timeparse import ISO_DATE
from .timeparse import ISO_TIME

if TYPE_CHECKING:
    from pathways_engine.reading.views import AuthorizeRead
    from pathways_engine.reading.views import Viewer

pass_app = click.make_pass_decorator(App)

_as = click.option("--as", "actor", required=True, metavar="ACTOR",
                   help="Who is acting: an actor id of the actors file.")
_role = click.option("--role", required=True, metavar="ROLE", help="The role the actor acts in.")
_set = click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
                    help="Set a data field; parsed by the field's declared type. Repeatable.")
_at = click.option("--at", type=ISO_TIME, default=None,
                   help="When it happened (ISO 8601; without offset: the pathway's local "
                        "time). Default: now. Never in the future.")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON (keys in the README).")
idempotency_key_option = click.option(
    "--idempotency-key", "idempotency_key", default=None, metavar="KEY",
    help="Act at most once for this key: a retry with the same key and the same arguments "
         "answers as the first did and changes nothing.")
_reader = click.option("--as", "actor", default=None, metavar="ACTOR",
                       help="Read as this actor (with --role): personal fields are shown when "
                            "the instance has consent or a legal basis for the role's sector.")
_reader_role = click.option("--role", "role", default=None, metavar="ROLE",
                            help="The role the reader reads in (with --as).")


def reader(app: App, instance: str, actor: str | None,
           role: str | None) -> tuple[Viewer | None, AuthorizeRead | None]:
    """The viewer and the area check for a read; anonymous readers see no personal data."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.reading.views import Viewer

    if actor is None and role is None:
        return None, None
    if actor is None or role is None:
        raise InvalidArgument("give --as ACTOR and --role ROLE together to read personal data")
    app.actors.authorize(actor, role)

    def within_area(area: str | None) -> None:
        app.actors.check_area(actor, area, instance)

    return Viewer(actor, role), within_area


@click.command()
@click.argument("pathway", shell_complete=completion.pathways)
@click.option("--subject", "subject_ref", required=True, metavar="REF",
              help="Pseudonymous reference of the child or pregnant woman.")
@click.option("--birth-date", type=ISO_DATE, default=None, help="Subject's birth date.")
@click.option("--version", "version", type=int, default=None,
              help="Definition version (default: newest).")
@click.option("--area", default=None, metavar="CODE",
              help="Municipality or region (routes messages to that area's parties; default: "
                   "the actor's area if it has one).")
@click.option("--allow-duplicate", is_flag=True,
              help="Start even if the subject already has a running instance of PATHWAY.")
@_set
@_as
@_role
@_at
@idempotency_key_option
@_json
@pass_app
def start(app: App, pathway: str, subject_ref: str, birth_date: dt.date | None,
          version: int | None, area: str | None, allow_duplicate: bool,
          assignments: tuple[str, ...], actor: str, role: str, at: dt.datetime | None,
          idempotency_key: str | None, as_json: bool) -> None:
    """Start PATHWAY for a subject and print the new instance id."""
    from pathways_engine.definition.values import parse_assignments

    app.actors.authorize(actor, role)
    area = app.actors.area_for_start(actor, area)
    app.check_area(area)
    instance_id = app.may("create").engine.start(
        pathway, subject_ref=subject_ref, birth_date=birth_date, actor=actor, role=role,
        values=parse_assignments(assignments), at=at, version=version, area=area,
        idempotency_key=idempotency_key, allow_duplicate=allow_duplicate)
    emit({"id": instance_id}, as_json, instance_id)


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@click.argument("event", shell_complete=completion.events)
@_set
@click.option("--note", default=None, help="A note for the history.")
@click.option("--expect-revision", "expected", type=int, default=None,
              help="Refuse (exit 3) unless the instance is still at this revision "
                   "(from `show`).")
@_as
@_role
@_at
@idempotency_key_option
@_json
@pass_app
def advance(app: App, instance: str, event: str, assignments: tuple[str, ...], note: str | None,
            expected: int | None, actor: str, role: str, at: dt.datetime | None,
            idempotency_key: str | None, as_json: bool) -> None:
    """Send EVENT to INSTANCE."""
    from pathways_engine.definition.values import parse_assignments
    from pathways_engine.store.rows import InstanceRow

    app.actors.authorize(actor, role)

    def within_area(row: InstanceRow) -> None:
        app.actors.check_area(actor, row.area, row.id)

    step = app.may("write").engine.advance(
        instance, event, actor=actor, role=role, values=parse_assignments(assignments),
        note=note, at=at, expected_version=expected, idempotency_key=idempotency_key,
        authorize=within_area)
    emit(step.as_dict(), as_json, f"{step.instance_id}: {step.from_state} -> {step.to_state}"
                                  + (" (completed)" if step.completed else ""))


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@_reader
@_reader_role
@click.option("--now", "now", type=ISO_TIME, default=None,
              help="Show deadline statuses as at this time (without offset: UTC).")
@click.option("--lang", type=click.Choice(["da", "nb", "sv", "en"]), default=None,
              help="Titles and dates in this language, if the pathway has it (default: the "
                   "pathway's own).")
@_json
@pass_app
def show(app: App, instance: str, actor: str | None, role: str | None, now: dt.datetime | None,
         lang: str | None, as_json: bool) -> None:
    """Show an instance: state, data, who may do what now, deadlines, history."""
    from pathways_engine.ports import FixedClock
    from pathways_engine.reading.views import show as show_instance

    from .timeparse import aware_or_utc

    if now is not None:
        app.clock = FixedClock(aware_or_utc(now) or app.clock.now())
    viewer, within_area = reader(app, instance, actor, role)
    data = show_instance(app, instance, viewer=viewer, authorize=within_area, language=lang)
    emit(data, as_json, None if as_json else format_show(data))


_mine = click.option("--mine", "mine", default=None, metavar="ACTOR",
                     help="Only cases this actor's roles are responsible for, in its areas, "
                          "and for its organisation if it has one.")
_area = click.option("--area", default=None, metavar="CODE",
                     help="Only cases of this municipality or region.")
_party = click.option("--party", default=None, metavar="PARTY",
                      help="Only cases whose responsible role is this party's (assigned, or "
                           "routed by area in the parties file).")


@click.command(name="list")
@click.option("--pathway", shell_complete=completion.pathways,
              default=None, metavar="PATHWAY", help="Only instances of this pathway.")
@click.option("--state", default=None, metavar="STATE", help="Only instances in this state.")
@click.option("--role", default=None, metavar="ROLE",
              help="Only instances whose current step this role is responsible for.")
@click.option("--subject", "subject_ref", default=None, metavar="REF",
              help="Only this subject's instances (case does not matter).")
@_area
@_party
@_mine
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="At most this many.")
@_json
@pass_app
def list_(app: App, pathway: str | None, state: str | None, role: str | None,
          subject_ref: str | None, area: str | None, party: str | None, mine: str | None,
          limit: int, as_json: bool) -> None:
    """List instances; every filter value is checked (a typo is an error, not an empty list)."""
    from pathways_engine.reading.views import list_instances

    from .cases import filters
    from .cases import keep

    chosen = filters(app, pathway=pathway, state=state, role=role, area=area, party=party,
                     mine=mine)
    rows = list_instances(app, pathway=pathway, state=state, subject=subject_ref,
                          areas=set(chosen.areas) if chosen.areas is not None else None,
                          limit=limit + 1)  # one more: are there others?
    more, rows = len(rows) > limit, rows[:limit]
    rows = keep(app, rows, chosen, role_key="responsible", instance_key="id")
    if as_json:
        emit(rows, True)
        return
    click.echo(table(
        ["instance", "pathway", "child", "state", "status"],
        [[r["id"], f"{r['pathway']} v{r['version']}", r["subject"], r["state"], r["status"]]
         for r in rows], empty="(no instances)",
        style=lambda row: None if row[4] == "active" else "dim"))
    if more:
        cut_short(limit, "instances")


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@_reader
@_reader_role
@_json
@pass_app
def history(app: App, instance: str, actor: str | None, role: str | None, as_json: bool) -> None:
    """Print the audit history of INSTANCE."""
    from pathways_engine.reading.views import history as history_of

    viewer, within_area = reader(app, instance, actor, role)
    rows: list[dict[str, Any]] = history_of(app, instance, viewer=viewer,
                                            authorize=within_area)
    emit(rows, as_json, format_history(rows))


@click.command()
@click.argument("instance", required=False)
@click.option("--subject", "subject_ref", default=None, metavar="REF",
              help="Export every pathway of this child instead (EpisodeOfCare, a CarePlan "
                   "per pathway, a Task per open deadline).")
@click.option("--definition", "pathway", default=None, metavar="PATHWAY",
              help="Export this pathway's definition instead, as a PlanDefinition.")
@click.option("--version", "version", type=int, default=None,
              help="With --definition: this version (default: the newest).")
@click.option("--format", "fmt", type=click.Choice(["fhir"]), default="fhir", show_default=True,
              help="fhir: a FHIR R4 (4.0.1) Bundle with CarePlans, their Tasks, Consents and "
                   "the audit trail as Provenance; with --definition a PlanDefinition.")
@pass_app
def export(app: App, instance: str | None, subject_ref: str | None, pathway: str | None,
           version: int | None, fmt: str) -> None:
    """Export INSTANCE (or --subject REF, or --definition PATHWAY) for other systems (no names
    or personal numbers)."""
    import json

    from pathways_engine.errors import InvalidArgument

    from .fhir import instance_bundle
    from .fhir import plan_definition
    from .fhir import subject_bundle

    if sum(x is not None for x in (instance, subject_ref, pathway)) != 1:
        raise InvalidArgument("give INSTANCE, --subject REF or --definition PATHWAY (one of them)")
    if version is not None and pathway is None:
        raise InvalidArgument("--version goes with --definition PATHWAY")
    if pathway is not None:
        spec = app.registry.get(pathway, version).spec
        click.echo(json.dumps(plan_definition(spec), indent=2, ensure_ascii=False))
        return
    if subject_ref is not None:
        from pathways_engine.reading.subjects import subject as subject_view

        data = subject_view(app, subject_ref)
        click.echo(json.dumps(subject_bundle(data, app.clock.now()), indent=2,
                              ensure_ascii=False))
        return
    assert instance is not None
    click.echo(json.dumps(instance_bundle(app, instance), indent=2, ensure_ascii=False))


def _clock_command(name: str, summary: str) -> click.Command:
    @click.command(name=name, help=summary)
    @click.argument("instance", shell_complete=completion.instances)
    @click.argument("deadline")
    @click.option("--reason", required=True, help="Why (kept in the audit trail).")
    @_as
    @_role
    @pass_app
    def command(app: App, instance: str, deadline: str, reason: str, actor: str,
                role: str) -> None:
        from pathways_engine.runtime import clocks

        app.actors.authorize(actor, role)
        with app.may("write").engine.step(instance) as step:
            app.actors.check_area(actor, step.instance.area, instance)
            row = getattr(clocks, name)(step, deadline, reason=reason, actor=actor, role=role)
            zone = step.zone()
        click.echo(f"{instance}: {deadline} " + (
            "paused" if name == "pause" else
            f"due {row.due_at.astimezone(zone):%Y-%m-%d %H:%M}"))

    return command


extend = _clock_command("extend", "Extend DEADLINE of INSTANCE as its definition allows.")
pause = _clock_command("pause", "Pause the clock of DEADLINE (e.g. the family asked for a "
                                "later date).")
resume = _clock_command("resume", "Resume the clock of DEADLINE; the paused time is added.")

COMMANDS = [start, advance, show, list_, history, export, extend, pause, resume]
