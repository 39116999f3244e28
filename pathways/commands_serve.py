"""`pathways serve` and its tokens: the HTTP API and pages, for integrations and team leads."""

from __future__ import annotations

import click

from .app import App
from .cli_output import emit
from .cli_output import table
from .commands_caseworker import pass_app


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


@token.command(name="create")
@click.option("--actor", required=True, metavar="ACTOR",
              help="The actor (of the actors file) the token acts as.")
@click.option("--note", default=None, help="What or who the token is for (shown by list).")
@click.option("--json", "as_json", is_flag=True, help="Print {id, actor, token}.")
@pass_app
def create(app: App, actor: str, note: str | None, as_json: bool) -> None:
    """Create a token and print it once: only its SHA-256 is stored."""
    from pathways_engine.store import tokens

    app.actors.known(actor)
    with app.may("write").db.writing() as connection:
        token_id, secret = tokens.create(connection, actor, note, app.clock.now())
    emit({"id": token_id, "actor": actor, "token": secret}, as_json,
         f"token {token_id} for {actor} (shown once, keep it secret):\n{secret}")


@token.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_tokens(app: App, as_json: bool) -> None:
    """Every token: actor, note, when created, last used and revoked (never the token)."""
    from pathways_engine.store import tokens

    with app.db.reading() as connection:
        rows = [{"id": r.id, "actor": r.actor, "note": r.note,
                 "created_at": r.created_at.isoformat(),
                 "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                 "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None}
                for r in tokens.listed(connection)]
    if as_json:
        emit(rows, True)
        return
    click.echo(table(["id", "actor", "status", "last used", "note"],
                     [[str(r["id"]), r["actor"], "revoked" if r["revoked_at"] else "live",
                       r["last_used_at"] or "never", r["note"] or ""] for r in rows],
                     empty="(no tokens)", right={0},
                     style=lambda row: "dim" if row[2] == "revoked" else None))


@token.command(name="revoke")
@click.argument("token_id", type=int)
@pass_app
def revoke(app: App, token_id: int) -> None:
    """Revoke token TOKEN_ID at once (rotate: create a new one, then revoke the old)."""
    from pathways_engine.errors import InvalidArgument
    from pathways_engine.store import tokens

    with app.may("write").db.writing() as connection:
        if not tokens.revoke(connection, token_id, app.clock.now()):
            raise InvalidArgument(f"no live token {token_id} (see `pathways token list`)")
    click.echo(f"token {token_id} revoked")


COMMANDS = [serve, token]
