"""Across sectors: one child's whole picture, and putting mistakes right.

`subject` shows every pathway of one child; `withdraw`, `correct` and `undo` are audited steps
that only actors the actors file lists under `may:` can take.
"""

from __future__ import annotations

from typing import Any

import click

from . import completion
from .app import App
from .cli_output import emit
from .commands_caseworker import _as
from .commands_caseworker import _json
from .commands_caseworker import _reader
from .commands_caseworker import _reader_role
from .commands_caseworker import _role
from .commands_caseworker import _set
from .commands_caseworker import idempotency_key_option
from .commands_caseworker import pass_app

_reason = click.option("--reason", required=True, help="Why (kept in the audit trail).")


@click.command()
@click.argument("ref")
@_reader
@_reader_role
@click.option("--lang", type=click.Choice(["da", "nb", "sv", "en"]), default=None,
              help="Titles in this language (default: each pathway's own).")
@click.option("--fhir", "as_fhir", is_flag=True,
              help="A FHIR Bundle: the child's EpisodeOfCare, a CarePlan per pathway (linked "
                   "to the one that handed it over) and a Task per open deadline.")
@_json
@pass_app
def subject(app: App, ref: str, actor: str | None, role: str | None, lang: str | None,
            as_fhir: bool, as_json: bool) -> None:
    """Everything about one child across sectors: every pathway, open deadlines, who is
    responsible, the contact person, consents and the latest steps."""
    import json

    from pathways_engine.errors import InvalidArgument
    from pathways_engine.reading.subjects import subject as subject_view
    from pathways_engine.reading.views import Viewer

    viewer, areas = None, None
    if actor is not None or role is not None:
        if actor is None or role is None:
            raise InvalidArgument("give --as ACTOR and --role ROLE together to read personal "
                                  "data")
        app.actors.authorize(actor, role)
        viewer = Viewer(actor, role)
        scope = app.actors.scope(actor)
        areas = set(scope) if scope is not None else None
    data = subject_view(app, ref, viewer=viewer, language=lang, areas=areas)
    _name_parties(app, data)
    if as_fhir:
        from .fhir import subject_bundle

        click.echo(json.dumps(subject_bundle(data, app.clock.now()), indent=2,
                              ensure_ascii=False))
        return
    emit(data, as_json, None if as_json else _format(data))


def _name_parties(app: App, data: dict[str, Any]) -> None:
    """Party ids as the deployment names them, and who the message would reach unassigned."""
    parties = app.parties
    if parties is None:
        return
    for pathway in data["pathways"]:
        role = pathway["responsible"]
        if role and pathway["responsible_party"] is None:
            routed = parties.for_role(role, pathway["area"])
            pathway["responsible_party"] = routed.id if routed else None
    contact = data["contact_person"]
    if contact and parties.get(contact):
        data["contact_person_name"] = parties.get(contact).name  # type: ignore[union-attr]


def _format(data: dict[str, Any]) -> str:
    from .cli_output import when_local

    lines = [f"{data['subject']}" + (f", {data['age_years']} år/years" if data["age_years"]
                                      is not None else ""),
             f"contact person: {data.get('contact_person_name') or data['contact_person'] or '-'}"]
    for p in data["pathways"]:
        link = f"  (from {p['parent']})" if p["parent"] else ""
        lines.append(f"\n{p['title']}  [{p['pathway']} v{p['version']}, {p['status']}]{link}")
        lines.append(f"  {p['state_title']}; responsible: {p['responsible'] or '-'}"
                     f"{' (' + p['responsible_party'] + ')' if p['responsible_party'] else ''}")
        for d in p["open_deadlines"]:
            lines.append(f"  - {d['title']}: {d['status']}, due "
                         f"{when_local(d['due_local'], p['timezone'])}")
        for c in p["consents"]:
            lines.append(f"  consent: {c['sector']} ({c['basis']}: {c['reference']})")
        for e in p["latest"][-1:]:
            lines.append(f"  latest: {when_local(e['at'], p['timezone'])} "
                         f"{e['event'] or e['kind']} by {e['actor']}")
    return "\n".join(lines)


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@_reason
@_as
@_role
@pass_app
def withdraw(app: App, instance: str, reason: str, actor: str, role: str) -> None:
    """Withdraw INSTANCE: it ends, its open deadlines and unsent messages are cancelled, and
    pathways it hands over with `on_end: cancel` are withdrawn too."""
    from pathways_engine.runtime.withdraw import withdraw as withdraw_instance

    app.actors.permit(actor, "withdraw", role)
    with app.may("write").engine.step(instance) as step:
        app.actors.check_area(actor, step.instance.area, instance)
        withdraw_instance(step, reason=reason, actor=actor, role=role)
    click.echo(f"{instance}: withdrawn")


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@_set
@_reason
@_as
@_role
@idempotency_key_option
@_json
@pass_app
def correct(app: App, instance: str, assignments: tuple[str, ...], reason: str, actor: str,
            role: str, idempotency_key: str | None, as_json: bool) -> None:
    """Correct fields of INSTANCE entered wrongly; deadlines counted from a corrected date are
    counted again. The original entries stay in the history."""
    from pathways_engine.definition.values import parse_assignments

    from .correcting import correct_instance

    changes = correct_instance(app, instance, parse_assignments(assignments), reason=reason,
                               actor=actor, role=role,
                               idempotency_key=idempotency_key)["changes"]
    emit({"id": instance, "changes": changes}, as_json,
         f"{instance}: corrected " + ", ".join(f"{k} {v[0]!r} -> {v[1]!r}"
                                               for k, v in changes.items()))


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@_reason
@_as
@_role
@_json
@pass_app
def undo(app: App, instance: str, reason: str, actor: str, role: str, as_json: bool) -> None:
    """Take back the latest transition of INSTANCE by a compensating step (audited)."""
    from pathways_engine.runtime.corrections import undo as undo_step

    app.actors.permit(actor, "undo", role)
    with app.may("write").engine.step(instance) as step:
        app.actors.check_area(actor, step.instance.area, instance)
        changes = undo_step(step, reason=reason, actor=actor, role=role)
    before, after = changes["state"]
    emit({"id": instance, "changes": changes}, as_json, f"{instance}: {before} -> {after} (undone)")


COMMANDS = [subject, withdraw, correct, undo]
