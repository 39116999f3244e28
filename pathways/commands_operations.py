"""Operations commands: db upgrade, tick, scheduler, overdue."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click
from pathways_engine.ports import FixedClock

from . import completion
from .app import App
from .cli_output import emit
from .cli_output import table
from .timeparse import ISO_DATE
from .timeparse import ISO_TIME
from .timeparse import aware_or_utc

pass_app = click.make_pass_decorator(App)


@click.group()
def db() -> None:
    """Database schema."""


@db.command()
@click.option("--sql", "offline", is_flag=True,
              help="Print the SQL script from an empty PostgreSQL database to the newest "
                   "revision instead of running it (for a DBA to review; connects to nothing).")
@pass_app
def upgrade(app: App, offline: bool) -> None:
    """Create or upgrade the schema to the newest revision (Alembic)."""
    from pathways_engine.store.database import Database
    from pathways_engine.store.database import current_revision

    if offline:
        from alembic import command
        from pathways_engine.errors import InvalidArgument
        from pathways_engine.store.database import alembic_config

        if not app.settings.database_url.startswith("postgresql"):
            raise InvalidArgument("--sql writes a script for PostgreSQL; SQLite's table "
                                  "rebuilds need the live database: run `pathways db upgrade`")

        command.upgrade(alembic_config(app.settings.database_url), "head", sql=True)
        return
    database = Database(app.settings.database_url, auto_upgrade=False, access="create")
    try:
        before = current_revision(database.engine)
        database.ensure_schema()
        after = current_revision(database.engine)
    finally:
        database.dispose()
    click.echo(f"{database.display_url()}: {before or 'empty'} -> {after}")


@db.command()
@pass_app
def current(app: App) -> None:
    """The schema revision of the database, and whether it is the newest."""
    from pathways_engine.store.database import Database
    from pathways_engine.store.database import current_revision
    from pathways_engine.store.database import head_revision

    database = Database(app.settings.database_url, auto_upgrade=False, access="write")
    try:
        found = current_revision(database.engine)
    finally:
        database.dispose()
    head = head_revision()
    state = "current" if found == head else f"behind {head}: run `pathways db upgrade`"
    click.echo(f"{database.display_url()}: {found or 'empty'} ({state})")


@db.command()
def history() -> None:
    """Every revision, newest first (pathways' migrations)."""
    from alembic.script import ScriptDirectory
    from pathways_engine.store.database import alembic_config

    for script in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        click.echo(f"{script.down_revision or 'base'} -> {script.revision}: {script.doc}")


@db.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@click.option("--as", "actor", required=True, metavar="ACTOR",
              help="Who downgrades (an actor of the actors file; logged with the revision).")
@pass_app
def downgrade(app: App, revision: str, actor: str) -> None:
    """Take the schema back to REVISION (e.g. 0006, or -1); what later revisions added is
    dropped with its data. For rolling back a release; back up first."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.store.database import Database
    from pathways_engine.store.database import current_revision
    from pathways_engine.store.database import upgrade as migrate

    app.actors.known(actor)
    if not (revision == "base" or revision.startswith("-") or revision.isdigit()):
        raise InvalidArgument(f"revision {revision!r}: give one `pathways db history` lists, "
                              "-N (steps back) or base")
    database = Database(app.settings.database_url, auto_upgrade=False, access="write")
    try:
        before = current_revision(database.engine)
        try:
            migrate(database.engine, revision, down=True)
        except Exception as exc:  # alembic's CommandError: an unknown or later revision
            from alembic.util import CommandError

            if isinstance(exc, CommandError):
                raise InvalidArgument(f"revision {revision!r}: {exc}") from None
            raise
        after = current_revision(database.engine)
    finally:
        database.dispose()
    click.echo(f"{database.display_url()}: {before} -> {after or 'empty'} (by {actor})")




FUTURE_TOLERANCE = dt.timedelta(minutes=1)  # one scheduler interval, by default


@click.command()
@click.option("--now", "now", type=ISO_TIME, default=None,
              help="Pretend it is this time (ISO 8601; without offset: UTC). Default: now. "
                   "Later than the real clock needs --force: what fires cannot be undone.")
@click.option("--force", is_flag=True, help="Allow a --now later than the real clock.")
@click.option("--dry-run", is_flag=True, help="Say what would fire; change nothing.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000),
              help="Instances per transaction.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def tick(app: App, now: dt.datetime | None, force: bool, dry_run: bool, batch_size: int,
         as_json: bool) -> None:
    """Fire every reminder, escalation and timeout due now, exactly once."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.runtime.sweep import count_due
    from pathways_engine.runtime.sweep import tick as run_tick

    real = app.clock.now()
    moment = aware_or_utc(now) or real
    if moment > real + FUTURE_TOLERANCE and not force and not dry_run:
        raise InvalidArgument(f"--now {moment.isoformat()} is later than the real clock "
                              f"({real:%Y-%m-%d %H:%M} UTC): what it fires cannot be undone; "
                              "look first with --dry-run, then give --force")
    if now is not None:
        app.clock = FixedClock(moment)
    engine = app.may("write").engine
    if dry_run:
        data = run_tick(engine, moment, dry_run=True).as_dict()
        emit({**data, "dry_run": True}, as_json,
             f"tick at {moment.isoformat()} would fire {data['fired']} timers "
             f"({data['reminder']} reminders, {data['due']} due, {data['escalation']} "
             f"escalations, {data['timeout']} timeouts) and queue {data['notifications']} "
             "notifications; nothing was changed")
        return
    due = count_due(engine, moment) if sys.stderr.isatty() else 0
    if due > batch_size:
        with click.progressbar(length=due, label="firing timers", file=sys.stderr) as bar:
            summary = run_tick(engine, moment, batch_size=batch_size, on_batch=bar.update)
    else:
        summary = run_tick(engine, moment, batch_size=batch_size)
    data = summary.as_dict()
    emit(data, as_json, f"tick at {moment.isoformat()}: fired {data['fired']} timers "
                        f"({data['reminder']} reminders, {data['due']} due, "
                        f"{data['escalation']} escalations, {data['timeout']} timeouts), "
                        f"queued {data['notifications']} notifications")


@click.command()
@click.option("--interval", default=60.0, show_default=True, type=click.FloatRange(0.1, 86400),
              help="Seconds between sweeps.")
@pass_app
def scheduler(app: App, interval: float) -> None:
    """Run the sweep every INTERVAL seconds until SIGTERM or SIGINT (APScheduler)."""
    import logging

    from .scheduler import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app.may("write").engine  # noqa: B018 - open the database and definitions first
    run(app, interval)


@click.command()
@click.option("--role", default=None, metavar="ROLE",
              help="Only deadlines this role is responsible for.")
@click.option("--pathway", shell_complete=completion.pathways,
              default=None, metavar="PATHWAY", help="Only this pathway's.")
@click.option("--area", default=None, metavar="CODE", help="Only this municipality's or region's.")
@click.option("--party", default=None, metavar="PARTY",
              help="Only deadlines this party is responsible for (assigned, or routed by area).")
@click.option("--mine", default=None, metavar="ACTOR",
              help="Only deadlines this actor's roles are responsible for, in its areas.")
@click.option("--now", "now", type=ISO_TIME, default=None, help="Pretend it is this time (UTC if naive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def overdue(app: App, role: str | None, pathway: str | None, area: str | None,
            party: str | None, mine: str | None, now: dt.datetime | None,
            as_json: bool) -> None:
    """What is overdue now, whose turn it is, and by how long; every filter is checked."""
    from .cases import filters
    from .cases import overdue_cases

    if now is not None:
        app.clock = FixedClock(aware_or_utc(now) or app.clock.now())
    rows = overdue_cases(app, filters(app, pathway=pathway, role=role, area=area, party=party,
                                      mine=mine))
    if as_json:
        emit(rows, True)
        return
    warned = any(r["rule"].get("warning") for r in rows)
    click.echo(table(
        ["instance", "child", "pathway", "state", "deadline", "responsible", "due",
         "overdue by", *(["note"] if warned else [])],
        [[r["instance"], r["subject"], r["pathway"], r["state"],
          f"{r['deadline_title']} ({r['deadline']})", _whose(r),
          r["due_local"][:16].replace("T", " "), r["overdue_by"],
          *([f"! {r['rule']['warning']}" if r["rule"].get("warning") else ""]
            if warned else [])] for r in rows],
        empty="nothing is overdue", style=lambda row: "red"))


def _whose(row: dict[str, Any]) -> str:
    """The party whose turn it is and the role it has it in: "ppr_norddjurs (ppr)"."""
    role, party = row["responsible"], row["responsible_party"]
    return f"{party} ({role})" if party else (role or "-")


COMMANDS = [db, tick, scheduler, overdue]


@click.command()
@pass_app
def demo(app: App) -> None:
    """Walk the shipped pathways through a realistic scripted scenario; print the timeline.

    Uses the demo deployment's actors and parties unless --actors/--parties name others.
    """
    from .demo import run_demo

    app.settings = app.settings.with_demo_deployment()
    run_demo(app.may("create"))


COMMANDS.append(demo)


@click.group()
def audit() -> None:
    """The hash-chained audit trail: verify it, checkpoint it outside the database."""


@audit.command()
@click.argument("instances", nargs=-1, metavar="[INSTANCE]...")
@click.option("--against", "against", type=click.Path(path_type=Path, dir_okay=False),
              default=None, metavar="FILE",
              help="A checkpoint from `audit checkpoint`: also find trails cut back or "
                   "rewritten, and instances deleted, since it was taken.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def verify(app: App, instances: tuple[str, ...], against: Path | None, as_json: bool) -> None:
    """Check no audit entry or state row was edited, deleted, inserted or reordered (exit 1 if so)."""
    from pathways_engine.audit import checkpoint
    from pathways_engine.audit.verify import verify as verify_trail
    from pathways_engine.errors import InstanceNotFound

    heads = checkpoint.load(app.db, against) if against is not None else None
    if instances:
        from pathways_engine.store import views

        with app.db.reading() as connection:
            missing = sorted(set(instances) - views.existing(connection, instances))
        if missing and not (heads and set(missing) <= set(heads)):
            raise InstanceNotFound(missing[0])
    from .cli_output import progress

    total = len(instances)
    if not total and sys.stderr.isatty():  # counted only for a bar someone watches
        from pathways_engine.store import views as store_views

        with app.db.reading() as connection:
            total = store_views.count(connection, "instances")
    with progress(total, "verifying audit trails") as bar:
        result = verify_trail(app.db, list(instances) or None, heads, on_instance=bar)
    data = {"instances": result.instances, "entries": result.entries,
            "replayed": result.replayed,
            "breaks": [{"instance": b.instance_id, "seq": b.seq, "reason": b.reason}
                       for b in result.breaks]}
    if as_json:
        emit(data, True, "")
    elif not result.breaks:
        click.echo(f"audit trail intact: {result.instances} instance"
                   f"{'s' if result.instances != 1 else ''}, {result.entries} entries")
    for found in result.breaks if not as_json else []:
        click.echo(f"BROKEN {found}", err=True)
    if result.breaks:
        sys.exit(1)


@audit.command(name="checkpoint")
@click.option("--output", "-o", "output", required=True,
              type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Where to write it: somewhere the database's owner cannot write.")
@pass_app
def checkpoint_command(app: App, output: Path) -> None:
    """Write every instance's audit head, signed with PATHWAYS_AUDIT_KEY, to FILE."""
    from pathways_engine.audit import checkpoint

    count = checkpoint.write(app.db, output, app.clock.now())
    click.echo(f"checkpoint of {count} instance{'s' if count != 1 else ''} written to {output}")


COMMANDS.append(audit)


@click.command()
@click.option("--from", "start", type=ISO_DATE, default=None,
              help="First day (default: one year before --to).")
@click.option("--to", "end", type=ISO_DATE, default=None, help="Last day, inclusive (default: today).")
@click.option("--pathway", shell_complete=completion.pathways,
              default=None, help="Only this pathway.")
@click.option("--by", type=click.Choice(["step", "role", "organisation", "area"]),
              default="step", show_default=True,
              help="step: per state; role: per responsible role; organisation: per party "
                   "responsible (assigned, else routed by the parties file); area: per "
                   "municipality or region given at start.")
@click.option("--area", default=None, metavar="CODE",
              help="Only the instances of this municipality or region.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="table for people, csv for spreadsheets, json for "
                                      "programs (keys in the README).")
@pass_app
def report(app: App, start: dt.date | None, end: dt.date | None, pathway: str | None, by: str,
           area: str | None, fmt: str) -> None:
    """Deadline compliance and time in each step, computed in the database."""
    from .cli_output import working
    from .readouts import report_rows

    with working("computing the report (one query in the database)"):
        rows = report_rows(app, start, end, pathway, by, area=area)
    _print_report(rows, by, fmt)

def _print_report(rows: list[dict[str, object]], by: str, fmt: str) -> None:
    columns = ["pathway", by, "started", "completed", "migrated", "median_days", "p90_days",
               "deadlines_closed", "deadlines_met_share", "deadlines_met_early", "paused_days",
               "overdue_now"]
    if fmt == "json":
        emit(rows, True, "")
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        def cell(column: str, value: object) -> str:
            if value is None:
                return "-"
            return f"{value:.0%}" if column == "deadlines_met_share" else str(value)

        click.echo(table(columns, [[cell(c, row[c]) for c in columns] for row in rows],
                         empty="(nothing in this period)", right=range(2, len(columns))))


COMMANDS.append(report)
