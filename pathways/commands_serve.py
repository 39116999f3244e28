"""`pathways serve` and its tokens: the HTTP API and pages, for integrations and team leads."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from .app import App
from .cli_output import emit
from .cli_output import table
from .commands_caseworker import pass_app
from .timeparse import LASTING


def _allowed_cpu(_ctx: click.Context, _param: click.Parameter, cpu: int | None) -> int | None:
    """A CPU this process may run on; one Python process's threads share one interpreter
    lock, so on one core they lose little and save a cross-core wake-up per hop."""
    import os

    if cpu is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise click.BadParameter("this system cannot pin a process to a CPU (Linux can)")
    allowed = sorted(os.sched_getaffinity(0))
    if cpu not in allowed:
        raise click.BadParameter(f"CPU {cpu} is not one this process may run on "
                                 f"({', '.join(map(str, allowed))})")
    return cpu


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; keep 127.0.0.1 behind a TLS reverse proxy.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--sweep/--no-sweep", default=False, show_default=True,
              help="Also run the scheduler's sweep in this process (else run `pathways "
                   "scheduler` or `tick` from cron).")
@click.option("--interval", default=60.0, show_default=True, type=click.FloatRange(0.1, 86400),
              help="Seconds between sweeps, with --sweep.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (each with its own connections); about one per core.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Requests worked on at once in each server process; the rest wait their "
                   "turn. Few is faster: Python runs one thread at a time (docs/http.md).")
@click.option("--pin-cpu", type=int, default=None, metavar="CPU", callback=_allowed_cpu,
              help="Run the server (one worker) on this CPU only: a request's hop to its "
                   "worker thread and back then stays on one core (docs/http.md: often, "
                   "not always, faster; measure it). Linux.")
@pass_app
def serve(app: App, host: str, port: int, sweep: bool, interval: float, workers: int,
          threads: int, pin_cpu: int | None) -> None:
    """Serve the JSON API (/api, OpenAPI at /docs), the coordinators' pages (/ui), /healthz
    and /metrics over the configured database; stop with Ctrl-C or SIGTERM."""
    import logging
    import os
    import threading

    import uvicorn

    from .web.server import THREADS_ENV
    from .web.server import create_app

    if pin_cpu is not None:
        if workers > 1:
            raise click.BadParameter("pins one server process; it needs --workers 1",
                                     param_hint="'--pin-cpu'")
        os.sched_setaffinity(0, {pin_cpu})  # before any thread starts: they inherit it
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app.actors  # noqa: B018 - refuse to serve without an actors file, before listening
    app.may("write").db  # noqa: B018 - and without a database at the current schema
    if workers > 1:
        _settings_to_environment(app)
        os.environ[THREADS_ENV] = str(threads)
        target: object = "pathways.web.server:from_environment"
    else:
        target = create_app(app, threads)
    stop = threading.Event()
    sweeper = None
    if sweep:
        from .scheduler import run

        sweeper = threading.Thread(target=run, args=(app, interval), kwargs={"stop": stop},
                                   name="pathways-sweep", daemon=True)
        sweeper.start()
    try:
        uvicorn.run(target, host=host, port=port, log_level="warning", access_log=False,  # type: ignore[arg-type]
                    workers=workers, factory=workers > 1)
    finally:
        stop.set()
        if sweeper is not None:
            sweeper.join(timeout=120)


def _settings_to_environment(app: App) -> None:
    """Worker processes build their App from the environment: hand them this one's settings."""
    import os

    from .config import ACTORS_ENV
    from .config import DATABASE_ENV
    from .config import DEFINITIONS_ENV
    from .config import PARTIES_ENV

    settings = app.settings
    os.environ[DATABASE_ENV] = settings.database_url
    os.environ[DEFINITIONS_ENV] = os.pathsep.join(str(p) for p in settings.definitions)
    if settings.parties is not None:
        os.environ[PARTIES_ENV] = str(settings.parties)
    if settings.actors is not None:
        os.environ[ACTORS_ENV] = str(settings.actors)


@click.group()
def token() -> None:
    """API tokens for `pathways serve`: each stands for one actor of the actors file."""


_EXPIRES = click.option(
    "--expires-in", "expires_in", type=LASTING, default=None,
    help="Stop working this long from now ('90 days', 'P90D'); without it, until revoked.")


def _shown(token_id: int, actor: str, secret: str, expires_at: dt.datetime | None,
           as_json: bool, rotated: int | None = None) -> None:
    until = f", until {_when(expires_at)}" if expires_at else ""
    emit({"id": token_id, "actor": actor, "token": secret,
          "expires_at": expires_at.isoformat() if expires_at else None,
          **({"rotated": rotated} if rotated is not None else {})}, as_json,
         f"token {token_id} for {actor}{until} (shown once, keep it secret):\n{secret}")


def _when(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


@token.command(name="create")
@click.option("--actor", required=True, metavar="ACTOR",
              help="The actor (of the actors file) the token acts as.")
@click.option("--note", default=None, help="What or who the token is for (shown by list).")
@_EXPIRES
@click.option("--json", "as_json", is_flag=True, help="Print {id, actor, token, expires_at}.")
@pass_app
def create(app: App, actor: str, note: str | None, expires_in: dt.timedelta | None,
           as_json: bool) -> None:
    """Create a token and print it once: only its SHA-256 is stored."""
    from pathways_engine.store import tokens

    app.actors.known(actor)
    now = app.clock.now()
    expires_at = now + expires_in if expires_in is not None else None
    with app.may("write").db.writing() as connection:
        token_id, secret = tokens.create(connection, actor, note, now, expires_at)
    _shown(token_id, actor, secret, expires_at, as_json)


@token.command(name="rotate")
@click.argument("token_id", type=int)
@click.option("--overlap", type=LASTING, default="1 day", show_default=True,
              help="How long the old token keeps working, for the switch-over ('0 minutes': "
                   "revoked at once).")
@_EXPIRES
@click.option("--json", "as_json", is_flag=True,
              help="Print {id, actor, token, expires_at, rotated}.")
@pass_app
def rotate(app: App, token_id: int, overlap: dt.timedelta, expires_in: dt.timedelta | None,
           as_json: bool) -> None:
    """Replace token TOKEN_ID: a new token for the same actor, printed once; the old one
    stops after --overlap, so the integration can switch over without a gap."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.store import tokens

    now = app.clock.now()
    expires_at = now + expires_in if expires_in is not None else None
    with app.may("write").db.writing() as connection:
        old = tokens.live_by_id(connection, token_id, now)
        if old is None:
            raise InvalidArgument(f"no live token {token_id} (see `pathways token list`)")
        app.actors.known(old.actor)  # an actor since removed from the actors file gets none
        new_id, secret, ends = tokens.rotate(connection, old, now, overlap, expires_at)
    if not as_json:
        click.echo(f"token {token_id} stops at {_when(ends)}" if ends > now
                   else f"token {token_id} revoked")
    _shown(new_id, old.actor, secret, expires_at, as_json, rotated=token_id)


@token.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_tokens(app: App, as_json: bool) -> None:
    """Every token: actor, note, when created, last used and revoked (never the token)."""
    from pathways_engine.store import tokens

    with app.db.reading() as connection:
        listed = tokens.listed(connection)
    now = app.clock.now()
    rows = [{"id": r.id, "actor": r.actor, "note": r.note,
             "created_at": r.created_at.isoformat(),
             "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
             "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
             "expires_at": r.expires_at.isoformat() if r.expires_at else None,
             "status": _status(r, now)} for r in listed]
    if as_json:
        emit(rows, True)
        return
    click.echo(table(["id", "actor", "status", "last used", "note"],
                     [[str(r["id"]), r["actor"], _status_text(r, listed[i]), r["last_used_at"]
                       or "never", r["note"] or ""] for i, r in enumerate(rows)],
                     empty="(no tokens)", right={0},
                     style=lambda row: "dim" if row[2] in ("revoked", "expired") else None))


def _status(row: Any, now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "live"


def _status_text(shown: dict[str, Any], row: Any) -> str:
    if shown["status"] == "live" and row.expires_at is not None:
        return f"live until {_when(row.expires_at)}"
    return str(shown["status"])


@token.command(name="revoke")
@click.argument("token_id", type=int)
@pass_app
def revoke(app: App, token_id: int) -> None:
    """Revoke token TOKEN_ID at once (to replace it without a gap: `token rotate`)."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.store import tokens

    with app.may("write").db.writing() as connection:
        if not tokens.revoke(connection, token_id, app.clock.now()):
            raise InvalidArgument(f"no live token {token_id} (see `pathways token list`)")
    click.echo(f"token {token_id} revoked")


COMMANDS = [serve, token]
