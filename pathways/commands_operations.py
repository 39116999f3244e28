"""Operations commands: db upgrade."""

from __future__ import annotations

import click

from .app import App

pass_app = click.make_pass_decorator(App)


@click.group()
def db() -> None:
    """Database schema."""


@db.command()
@pass_app
def upgrade(app: App) -> None:
    """Create or upgrade the schema to the newest revision (Alembic)."""
    from pathways_engine.store.database import Database
    from pathways_engine.store.database import current_revision

    database = Database(app.settings.database_url, auto_upgrade=False)
    try:
        before = current_revision(database.engine)
        database.ensure_schema()
        after = current_revision(database.engine)
    finally:
        database.dispose()
    click.echo(f"{database.display_url()}: {before or 'empty'} -> {after}")


COMMANDS: list[click.Command] = [db]
