"""Notification commands: render, deliver, outbox, assign, consent."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from pathways_engine.ports import FixedClock

from . import completion
from .app import App

if TYPE_CHECKING:
    from pathways_engine.definition.loader import Definition
    from pathways_notifications.rendering import Rendered
from .cli_output import cut_short
from .cli_output import emit
from .cli_output import table
from .commands_caseworker import idempotency_key_option
from .timeparse import ISO_TIME
from .timeparse import aware_or_utc

pass_app = click.make_pass_decorator(App)


@click.command()
@click.argument("pathway", shell_complete=completion.pathways)
@click.argument("template")
@click.option("--lang", type=click.Choice(["da", "nb", "sv", "en"]), default=None,
              help="Language (default: the recipient's, else the fallback).")
@click.option("--role", default=None, help="Recipient role (default: the pathway's first role).")
@click.option("--instance", "instance_id", default=None, metavar="ID",
              help="Render with this instance's real data, recipient and open deadline.")
@click.option("--as", "actor", default=None, metavar="ACTOR",
              help="With --instance: preview as this actor (holding --reader-role), so personal "
                   "data appears where the recipient's sector has a basis.")
@click.option("--reader-role", default=None, metavar="ROLE",
              help="The role ACTOR previews in (with --as).")
@pass_app
def render(app: App, pathway: str, template: str, lang: str | None, role: str | None,
           instance_id: str | None, actor: str | None, reader_role: str | None) -> None:
    """Preview TEMPLATE of PATHWAY, against a sample context or a real instance."""
    from pathways_notifications.composer import sample_context
    from pathways_notifications.rendering import render as render_template

    if instance_id is not None:
        rendered = _render_for_instance(app, pathway, template, role, lang, instance_id, actor,
                                        reader_role)
    else:
        definition = app.registry.get(pathway)
        role = _check_template(definition, template, role)
        _check_language(definition, lang)
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


def _check_language(definition: Definition, lang: str | None) -> None:
    """A preview in a language the pathway lacks would show the fallback: say so instead."""
    from pathways_engine.errors import InvalidArgument

    languages = definition.spec.languages
    if lang is not None and lang not in languages:
        raise InvalidArgument(f"--lang {lang}: pathway {definition.spec.id!r} is written in "
                              f"{', '.join(languages)} (a recipient of another language gets "
                              f"{definition.spec.fallback_language})")


def _render_for_instance(app: App, pathway: str, template: str, role: str | None,
                         lang: str | None, instance_id: str, actor: str | None,
                         reader_role: str | None) -> Rendered:
    """Render with the definition the instance is pinned to and its real context; read-only.

    Personal data appears only for an authorized reader (--as, in the instance's area)."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.ports import CaseView
    from pathways_engine.store import reads
    from pathways_engine.store import views
    from pathways_engine.store.rows import legal_bases
    from pathways_notifications.composer import Composer

    from .commands_caseworker import reader

    viewer, within_area = reader(app, instance_id, actor, reader_role)
    composer = Composer(app.parties, app.settings.case_url)
    with app.db.reading() as connection:
        found = reads.load_instances(connection, [instance_id], lock=False).get(instance_id)
        if found is None:
            from pathways_engine.errors import InstanceNotFound

            raise InstanceNotFound(instance_id)
        if found.instance.pathway_id != pathway:
            raise InvalidArgument(f"--instance {instance_id} runs pathway "
                                  f"{found.instance.pathway_id!r}, not {pathway!r}")
        if within_area is not None:
            within_area(found.instance.area)
        definition = app.engine.compiled_for(connection, found.instance.content_hash).definition
        role = _check_template(definition, template, role)
        _check_language(definition, lang)
        deadline = views.first_pending_deadline(connection, instance_id)
    from pathways_engine.reading.views import hidden_for

    bases = legal_bases(found.consents)
    case = CaseView(definition, found.instance, found.subject, found.assigned, bases)
    # what the recipient would get, shown only to a reader who may see it too
    sectors = {name: role.sector for name, role in definition.spec.roles.items()}
    personal = viewer is not None and hidden_for(sectors, viewer, bases) is None
    return composer.preview(case, template, role, lang, app.clock.now(),
                            (deadline.name, deadline.due_at) if deadline else None,
                            personal=personal)


@click.command(epilog="SMTP comes from the environment only: PATHWAYS_SMTP_HOST, "
                      "PATHWAYS_SMTP_PORT, PATHWAYS_SMTP_SECURITY (none|starttls|tls), "
                      "PATHWAYS_SMTP_USER, PATHWAYS_SMTP_PASSWORD, PATHWAYS_SMTP_FROM; the file "
                      "drop folder is PATHWAYS_DROP_DIR; PATHWAYS_DELIVERY_GIVE_UP (default 3 "
                      "days) turns a message that keeps failing into a dead letter.")
@click.option("--now", type=ISO_TIME, default=None, help="Pretend it is this time (UTC if naive).")
@click.option("--json", "as_json", is_flag=True, help="Print {sent, retried, failed}.")
@pass_app
def deliver(app: App, now: dt.datetime | None, as_json: bool) -> None:
    """Deliver pending messages (SMTP, file drop, console), retrying with backoff."""
    from .delivery import deliver_pending

    if now is not None:
        app.clock = FixedClock(aware_or_utc(now) or app.clock.now())
    from pathways_engine.store.outbox import due_count

    from .cli_output import progress

    db, moment = app.may("write").db, app.clock.now()
    with db.reading() as connection:
        due = 0 if as_json else min(due_count(connection, moment), 1000)  # at most 1000 a run
    with progress(due, "delivering messages") as advance:
        report = deliver_pending(app, on_message=lambda: advance(1))
    data = {"sent": report.sent, "retried": report.retried, "failed": report.failed}
    emit(data, as_json, f"delivered {report.sent}, will retry {report.retried}, "
                        f"failed {report.failed}")


@click.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "sent", "failed", "cancelled"]),
              default=None, help="Only messages with this status (failed: the dead letters).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Only the newest this many (listed oldest first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (keys in the README).")
@click.pass_context
def outbox(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """List outgoing messages; `outbox retry` puts dead letters back in the queue."""
    if ctx.invoked_subcommand is not None:
        return
    from .readouts import outbox_rows

    app: App = ctx.obj
    rows = outbox_rows(app, status, limit + 1)  # one more: are there older ones?
    more, rows = len(rows) > limit, rows[-limit:]
    if as_json:
        emit(rows, True)
        return
    colour = {"failed": "red", "pending": "yellow", "cancelled": "dim"}
    click.echo(table(
        ["id", "status", "channel", "recipient", "subject"],
        [[str(r["id"]), r["status"], r["channel"],
          f"{r['party'] or '(no party)'} ({r['role']})", r["subject"]] for r in rows],
        empty="(outbox is empty)", right={0}, style=lambda row: colour.get(row[1])))
    if more:
        cut_short(limit, "messages", "newest")


@outbox.command()
@click.argument("message_ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--all", "everything", is_flag=True, help="Every dead letter (with --failed).")
@click.option("--failed", is_flag=True, help="With --all: the failed messages.")
@click.option("--as", "actor", required=True, metavar="ACTOR",
              help="The operator retrying (audited on each message's instance).")
@pass_app
def retry(app: App, message_ids: tuple[int, ...], everything: bool, failed: bool,
          actor: str) -> None:
    """Put dead letters back in the queue: IDs, or --all --failed."""
    from pathways_engine.errors import InvalidArgument
    from pathways_notifications.delivery import retry as retry_messages

    if bool(message_ids) == (everything and failed) or everything != failed:
        raise InvalidArgument("name the messages to retry (IDs), or give --all --failed")
    app.actors.known(actor)
    done = retry_messages(app.may("write").db, list(message_ids) or None, actor,
                          app.clock.now())
    click.echo(f"{len(done)} message{'s' if len(done) != 1 else ''} pending again: "
               f"{', '.join(map(str, done))}")


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@click.argument("role")
@click.argument("party")
@click.option("--as", "actor", required=True, metavar="ACTOR",
              help="Who assigns: an actor id of the actors file (audited).")
@click.option("--role", "acting_role", default=None, metavar="ROLE",
              help="The role the actor acts in (default: its role in this pathway).")
@click.option("--for-child", is_flag=True,
              help="Name PARTY for ROLE in every pathway of this child, now and later (one "
                   "contact person across sectors); audited in INSTANCE's trail.")
@idempotency_key_option
@pass_app
def assign(app: App, instance: str, role: str, party: str, actor: str,
           acting_role: str | None, for_child: bool, idempotency_key: str | None) -> None:
    """Name PARTY (from the parties file) as ROLE for INSTANCE, e.g. a contact person."""
    from .assignments import assign_party

    assign_party(app, instance, role, party, actor, acting_role, for_child, idempotency_key)
    click.echo(f"{instance}: {role} is now {party}" + (" for every pathway of the child"
                                                       if for_child else ""))


@click.command()
@click.argument("instance", shell_complete=completion.instances)
@click.option("--sector", required=True, help="The recipient sector the basis covers.")
@click.option("--basis", type=click.Choice(["consent", "statutory"]), required=True,
              help="consent: the family's (or the young person's own); statutory: a provision "
                   "the definition declares under `sharing:`.")
@click.option("--reference", required=True,
              help="Who consented and when, or the provision the definition declares under "
                   "`sharing:` (e.g. 'Barnets lov §133 (underretningspligt)').")
@click.option("--withdraw", is_flag=True,
              help="Withdraw the basis: unsent messages that relied on a consent are recalled.")
@click.option("--as", "actor", required=True, metavar="ACTOR",
              help="Who records it: an actor id of the actors file (audited).")
@click.option("--role", default=None, metavar="ROLE",
              help="The role the actor records it in (default: the first of its roles the "
                   "definition lets record this basis).")
@idempotency_key_option
@pass_app
def consent(app: App, instance: str, sector: str, basis: str, reference: str, withdraw: bool,
            actor: str, role: str | None, idempotency_key: str | None) -> None:
    """Record consent or a statutory basis to share personal data with a sector."""
    from .assignments import record_consent

    record_consent(app, instance, sector, basis, reference, actor, withdraw, role,
                   idempotency_key)
    click.echo(f"{instance}: {'withdrawn' if withdraw else 'recorded'} {basis} for {sector}")


COMMANDS = [render, deliver, outbox, assign, consent]
