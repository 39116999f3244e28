"""The `pathways` command: a thin click layer over the library, with one error boundary.

Every `PathwaysError` becomes one line on stderr and its exit code (1, or 3 for a concurrent
change); click's usage errors exit 2. A traceback for a user mistake is a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .config import ACTORS_ENV
from .config import DATABASE_ENV
from .config import DEFINITIONS_ENV
from .config import PARTIES_ENV
from .config import Settings

# command -> the module that defines it: a command imports only its own module (fast start)
COMMAND_MODULES = {
    **dict.fromkeys(["start", "advance", "show", "list", "history", "export", "extend",
                     "pause", "resume"],
                    "pathways.commands_caseworker"),
    **dict.fromkeys(["check", "schema", "definitions", "diagram", "simulate", "migrate"],
                    "pathways.commands_coordinator"),
    **dict.fromkeys(["render", "deliver", "outbox", "assign", "consent"],
                    "pathways.commands_notifications"),
    **dict.fromkeys(["db", "tick", "scheduler", "overdue", "demo", "audit", "report"],
                    "pathways.commands_operations"),
    **dict.fromkeys(["subject", "withdraw", "correct", "undo"], "pathways.commands_subject"),
    **dict.fromkeys(["serve", "token"], "pathways.commands_serve"),
}


class PathwaysGroup(click.Group):
    """Loads commands on first use; translates pathways errors to exit codes in one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMAND_MODULES:
            from importlib import import_module

            for command in import_module(COMMAND_MODULES[name]).COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # a command run with --json answers its errors in JSON too (integrations parse stderr)
        ctx.meta["pathways.json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from pathways_engine.errors import DatabaseError
        from pathways_engine.errors import PathwaysError
        from sqlalchemy.exc import OperationalError

        as_json = bool(ctx.meta.get("pathways.json"))
        try:
            return super().invoke(ctx)
        except PathwaysError as exc:
            _fail(str(exc), exc.exit_code, as_json, type(exc).__name__)
        except OperationalError as exc:
            error = DatabaseError(f"database error: {str(exc.orig).splitlines()[0]}")
            _fail(str(error), error.exit_code, as_json, "DatabaseError")


def _fail(message: str, code: int, as_json: bool = False, kind: str = "PathwaysError") -> None:
    if as_json:
        import json

        click.echo(json.dumps({"error": message, "kind": kind, "exit_code": code},
                              ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Folders(click.Path):
    """$PATHWAYS_DEFINITIONS is split like PATH: an empty entry is no entry (click's own split
    would make it '.', the current folder)."""

    def split_envvar_value(self, rv: str) -> Sequence[str]:
        return [part for part in super().split_envvar_value(rv) if part]


# The environment reaches these through click (`--help` shows each variable; a bad value is
# named by it); Settings.resolve reads the same variables for the library and the API server.
@click.group(cls=PathwaysGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", metavar="URL", envvar=DATABASE_ENV, show_envvar=True,
              help="Database URL (default: sqlite:///pathways.db).")
@click.option("--definitions", "definitions", multiple=True, metavar="PATH",
              type=_Folders(path_type=Path), envvar=DEFINITIONS_ENV, show_envvar=True,
              help="Definition file or folder (default: the shipped definitions/). Repeatable; "
                   "the variable takes several, separated by ':'.")
@click.option("--parties", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              envvar=PARTIES_ENV, show_envvar=True,
              help="Parties file mapping roles to recipients (default: the deployment file's, "
                   "else parties.yaml in the definitions folder).")
@click.option("--actors", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              envvar=ACTORS_ENV, show_envvar=True,
              help="Actors file: who may act in which role (default: the deployment file's, "
                   "else actors.yaml in the definitions folder).")
@click.version_option(package_name="nordic-pathways", prog_name="pathways")
@click.pass_context
def cli(ctx: click.Context, db: str | None, definitions: tuple[Path, ...],
        parties: Path | None, actors: Path | None) -> None:
    """Cross-sector pathways for children, young people and pregnant women."""
    from .app import App

    app = App(Settings.resolve(db, definitions, parties, actors))
    ctx.obj = app
    ctx.call_on_close(app.close)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="pathways")


__all__ = ["cli", "main"]
