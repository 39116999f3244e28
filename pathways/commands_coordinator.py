"""Coordinator commands: check, schema, definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .app import App
from .cli_output import emit

pass_app = click.make_pass_decorator(App)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@pass_app
def check(app: App, paths: tuple[Path, ...]) -> None:
    """Validate definitions (default: the configured ones); print every problem as file:line."""
    from .checking import check_paths

    targets = paths or app.settings.definitions
    given = click.get_current_context().find_root().params
    parties = app.settings.parties if (given.get("parties") or not paths) else None
    actors = app.settings.actors if (given.get("actors") or not paths) else None
    problems, count = check_paths(targets, parties, actors)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in "
                   f"{count} definition{'s' if count != 1 else ''}", err=True)
        raise SystemExit(1)
    click.echo(f"{count} definition{'s' if count != 1 else ''} OK", err=True)


@click.command()
def schema() -> None:
    """Print the JSON Schema of definition files (for editors)."""
    from pathways_engine.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def definitions(app: App, as_json: bool) -> None:
    """List the pathways and versions available."""
    rows: list[dict[str, Any]] = []
    for definition in app.registry.all():
        spec = definition.spec
        rows.append({
            "id": spec.id, "version": spec.version, "title": spec.title,
            "country": spec.country, "languages": spec.languages, "path": definition.path,
            "hash": definition.content_hash,
        })
    lines = [f"{r['id']:<32} v{r['version']:<3} {r['country']}  "
             f"{r['title'].get('en') or next(iter(r['title'].values()))}" for r in rows]
    emit(rows, as_json, "\n".join(lines) if lines else "(no definitions)")


COMMANDS = [check, schema, definitions]
