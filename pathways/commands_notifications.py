"""Notification commands: render, deliver, outbox, assign, consent."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from pathways_engine.ports import FixedClock

from .app import App

if TYPE_CHECKING:
    from pathways_engine.loader import Definition
    from pathways_notifications.rendering import Rendered
from .cli_output import emit
from .timeparse import ISO_TIME
from .timeparse import aware_or_utc

pass_app = click.make_pass_decorator(App)


@click.command()
@click.argument("pathway")
@click.argument("template")
@click.option("--lang", type=click.Choice(["da", "nb", "sv", "en"]), default=None,
              help="Language (default: the recipient's, else the fallback).")
@click.option("--role", default=None, help="Recipient role (default: the pathway's first role).")
@click.option("--instance", "instance_id", default=None, metavar="ID",
              help="Render with this instance's real data, recipient and legal basis.")
@pass_app
def render(app: App, pathway: str, template: str, lang: str | None, role: str | None,
           instance_id: str | None) -> None:
    """Preview TEMPLATE of PATHWAY, against a sample context or a real instance."""
    from pathways_notifications.composer import sample_context
    from pathways_notifications.rendering import render as render_template

    if instance_id is not None:
        rendered = _render_for_instance(app, pathway, template, role, lang, instance_id)
    else:
        definition = app.registry.get(pathway)
        role = _check_template(definition, template, role)
        rendered = render_template(definition, template, lang,
                                   sample_context(definition, role, lang))
    click.echo(f"Subject: {rendered.subject}\nLanguage: {rendered.language}\n\n{rendered.text}")


def _check_template(definition: Definition, template: str, role: str | None) -> str:
    from pathways_engine.errors import NotificationError
    from pathways_engine.errors import did_you_mean
    from pathways_notifications.composer import ensure_known_role

    role = role or next(iter(definition.spec.roles))
    ensure_known_role(definition, role)
    names = {n.template for n in definition.spec.notifications}
    if template not in names:
        raise NotificationError(f"unknown template {template!r}{did_you_mean(template, names)}; "
                                f"templates of {definition.spec.id!r}: {', '.join(sorted(names))}")
    return role


def _render_for_instance(app: App, pathway: str, template: str, role: str | None,
                         lang: str | None, instance_id: str) -> Rendered:
    """Render with the definition the instance is pinned to and its real context; read-only."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.runtime import get_instance
    from pathways_engine.store.models import Subject
    from pathways_notifications.composer import Composer

    composer = Composer(app.parties)
    with app.db.sessions() as session, session.begin():
        instance = get_instance(session, instance_id)
        if instance.pathway_id != pathway:
            raise InvalidArgument(f"--instance {instance_id} runs pathway "
                                  f"{instance.pathway_id!r}, not {pathway!r}")
        definition = app.engine.compiled_for(session, instance.content_hash).definition
        role = _check_template(definition, template, role)
        subject = session.get_one(Subject, instance.subject_id)
        return composer.preview(session, definition, instance, subject, template, role, lang,
                                app.clock.now())


@click.command()
@click.option("--now", type=ISO_TIME, default=None, help="Pretend it is this time (UTC if naive).")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def deliver(app: App, now: dt.datetime | None, as_json: bool) -> None:
    """Deliver pending messages (SMTP, file drop, console), retrying with backoff."""
    from .delivery import deliver_pending

    if now is not None:
        app.clock = FixedClock(aware_or_utc(now) or app.clock.now())
    report = deliver_pending(app)
    data = {"sent": report.sent, "retried": report.retried, "failed": report.failed}
    emit(data, as_json, f"delivered {report.sent}, will retry {report.retried}, "
                        f"failed {report.failed}")


@click.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List outgoing messages; `outbox retry ID` resends one."""
    if ctx.invoked_subcommand is not None:
        return
    from pathways_engine.store.models import OutboxMessage
    from sqlalchemy import select

    app: App = ctx.obj
    with app.db.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if status:
            query = query.where(OutboxMessage.status == status)
        rows = [{
            "id": m.id, "message_id": m.message_id, "instance": m.instance_id, "role": m.role,
            "party": m.party, "channel": m.channel, "status": m.status, "attempts": m.attempts,
            "subject": m.subject, "personal_data": m.personal_data, "legal_basis": m.legal_basis,
            "created_at": m.created_at.isoformat(), "last_error": m.last_error,
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        } for m in session.scalars(query)]
    lines = [f"{r['id']:>6}  {r['status']:<7} {r['channel']:<7} {r['role']:<14} {r['subject']}"
             for r in rows]
    emit(rows, as_json, "\n".join(lines) if lines else "(outbox is empty)")


@outbox.command()
@click.argument("message_id", type=int)
@pass_app
def retry(app: App, message_id: int) -> None:
    """Put message MESSAGE_ID back in the queue (e.g. a failed one after a fix)."""
    from pathways_notifications.delivery import retry as retry_message

    message = retry_message(app.may("write").db, message_id, app.clock.now())
    click.echo(f"message {message.id} is pending again")


@click.command()
@click.argument("instance")
@click.argument("role")
@click.argument("party")
@click.option("--as", "actor", required=True, metavar="ACTOR")
@pass_app
def assign(app: App, instance: str, role: str, party: str, actor: str) -> None:
    """Name PARTY (from the parties file) as ROLE for one INSTANCE, e.g. a contact person."""
    from .assignments import assign_party

    assign_party(app, instance, role, party, actor)
    click.echo(f"{instance}: {role} is now {party}")


@click.command()
@click.argument("instance")
@click.option("--sector", required=True, help="The recipient sector the basis covers.")
@click.option("--basis", type=click.Choice(["consent", "statutory"]), required=True)
@click.option("--reference", required=True,
              help="Who consented, or the statute (e.g. 'Sundhedsloven §43').")
@click.option("--withdraw", is_flag=True, help="Withdraw an earlier consent for the sector.")
@click.option("--as", "actor", required=True, metavar="ACTOR")
@pass_app
def consent(app: App, instance: str, sector: str, basis: str, reference: str, withdraw: bool,
            actor: str) -> None:
    """Record consent or a statutory basis to share personal data with a sector."""
    from .assignments import record_consent

    record_consent(app, instance, sector, basis, reference, actor, withdraw)
    click.echo(f"{instance}: {'withdrawn' if withdraw else 'recorded'} {basis} for {sector}")


COMMANDS = [render, deliver, outbox, assign, consent]
