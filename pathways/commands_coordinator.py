"""Coordinator commands: check, schema, definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from . import completion
from .app import App
from .cli_output import emit
from .cli_output import table

pass_app = click.make_pass_decorator(App)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print {definitions, ok, problems: [{file, line, message, severity}]}.")
@pass_app
def check(app: App, paths: tuple[Path, ...], as_json: bool) -> None:
    """Validate definitions (default: the configured ones); print every problem as file:line."""
    from .checking import check_paths

    targets = paths or app.settings.definitions
    given = click.get_current_context().find_root().params
    parties = app.settings.parties if (given.get("parties") or not paths) else None
    actors = app.settings.actors if (given.get("actors") or not paths) else None
    problems, count = check_paths(targets, parties, actors,
                                  app.settings.switches if not paths else (),
                                  context=app.settings.definitions if paths else ())
    errors = [p for p in problems if not p.warning]
    if as_json:
        emit({"definitions": count, "ok": not errors, "problems": [
            {"file": str(p.path), "line": p.line, "message": p.message,
             "severity": "warning" if p.warning else "error"} for p in problems]}, True)
        if errors:
            raise SystemExit(1)
        return
    for problem in problems:
        click.echo(str(problem))
    warned = len(problems) - len(errors)
    also = f", {warned} warning{'s' if warned != 1 else ''}" if warned else ""
    if errors:
        click.echo(f"{len(errors)} problem{'s' if len(errors) != 1 else ''}{also} in "
                   f"{count} definition{'s' if count != 1 else ''}", err=True)
        raise SystemExit(1)
    click.echo(f"{count} definition{'s' if count != 1 else ''} OK{also}", err=True)


@click.command()
def schema() -> None:
    """Print the JSON Schema of definition files (for editors)."""
    from pathways_engine.definition.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@click.command()
@click.option("--lang", type=click.Choice(["da", "nb", "sv", "en"]), default=None,
              help="Titles in this language, if the pathway has it (default: the pathway's "
                   "own).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every title).")
@pass_app
def definitions(app: App, lang: str | None, as_json: bool) -> None:
    """List the pathways and versions available."""
    rows: list[dict[str, Any]] = []
    for definition in app.registry.all():
        spec = definition.spec
        rows.append({
            "id": spec.id, "version": spec.version, "title": spec.title,
            "country": spec.country, "languages": spec.languages, "path": definition.path,
            "hash": definition.content_hash,
        })
    if as_json:
        emit(rows, True)
        return
    from pathways_engine.definition.view import in_language

    own = {(d.spec.id, d.spec.version): d.spec.fallback_language for d in app.registry.all()}
    click.echo(table(["pathway", "version", "country", "title"],
                     [[r["id"], f"v{r['version']}", r["country"],
                       in_language(r["title"], lang, own[r["id"], r["version"]], r["id"])]
                      for r in rows], empty="(no definitions)"))


@click.command()
@click.argument("pathway", shell_complete=completion.pathways)
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid",
              show_default=True, help="mermaid needs nothing; dot needs pydot; svg needs Graphviz.")
@click.option("--version", type=int, default=None, help="Definition version (default: newest).")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to FILE instead of stdout.")
@click.option("--markdown", is_flag=True,
              help="Wrap a mermaid diagram in a Markdown page (what docs/diagrams/ holds).")
@pass_app
def diagram(app: App, pathway: str, fmt: str, version: int | None, output: Path | None,
            markdown: bool) -> None:
    """Draw PATHWAY: its states, transitions and guards, responsible roles and deadlines."""
    from pathways_engine.definition.compiler import compile_definition
    from pathways_engine.definition.diagrams import markdown_page
    from pathways_engine.definition.diagrams import render

    compiled = compile_definition(app.registry.get(pathway, version))
    text = markdown_page(compiled) if markdown else render(compiled, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def simulate(app: App, paths: tuple[Path, ...], as_json: bool) -> None:
    """Run scenario files in simulated time (default: every scenarios/*.yaml of the definitions)."""
    from .scenarios import discover
    from .scenarios import run_file

    files = discover(list(paths or app.settings.definitions))
    if not files:
        from pathways_engine.errors import InvalidArgument

        raise InvalidArgument("no scenario files found (looked for scenarios/*.yaml)")
    outcomes = [run_file(f, app.settings.definitions, app.settings.parties) for f in files]
    if as_json:
        emit([{"file": o.path, "name": o.name, "passed": o.passed, "failures": o.failures}
              for o in outcomes], True, "")
    else:
        for outcome in outcomes:
            click.echo(f"{'PASS' if outcome.passed else 'FAIL'}  {outcome.path}  {outcome.name}")
            for failure in outcome.failures:
                click.echo(f"      {failure}")
        failed = sum(not o.passed for o in outcomes)
        click.echo(f"{len(outcomes) - failed} passed, {failed} failed", err=True)
    if any(not o.passed for o in outcomes):
        raise SystemExit(1)


@click.command()
@click.option("--pathway", shell_complete=completion.pathways,
              required=True, help="The pathway whose running instances move.")
@click.option("--to", "to_version", required=True, type=int, help="The version to move them to.")
@click.option("--map", "mappings", multiple=True, metavar="OLD=NEW",
              help="Where instances in OLD go (a state of the new version). Repeatable.")
@click.option("--dry-run", is_flag=True, help="Show what would move; write nothing.")
@click.option("--as", "actor", required=True, metavar="ACTOR", help="Who migrates (audited).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def migrate(app: App, pathway: str, to_version: int, mappings: tuple[str, ...], dry_run: bool,
            actor: str, as_json: bool) -> None:
    """Move running instances of a pathway to another version, recomputing their deadlines."""
    from pathways_engine.runtime.migration import migrate as apply_migration
    from pathways_engine.runtime.migration import parse_mapping
    from pathways_engine.runtime.migration import plan

    app.actors.known(actor)
    app.may("write")
    mapping = parse_mapping(mappings)
    checked = plan(app.engine, pathway, to_version, mapping)
    moves = [{"from_version": v, "from": old, "to": new, "instances": n}
             for (v, old, new), n in sorted(checked.moves.items())]
    moved = 0
    if not dry_run:
        from .cli_output import progress

        with progress(checked.total, f"moving {pathway} to v{to_version}") as advance_bar:
            moved = apply_migration(app.engine, checked, mapping, actor, on_batch=advance_bar)
    lines = [f"  v{m['from_version']} {m['from']} -> v{to_version} {m['to']}: {m['instances']}"
             for m in moves]
    head = (f"would move {checked.total} instances" if dry_run
            else f"moved {moved} instances") + f" of {pathway} to version {to_version}"
    emit({"pathway": pathway, "to_version": to_version, "dry_run": dry_run,
          "moved": moved, "moves": moves}, as_json, "\n".join([head, *lines]))


COMMANDS = [check, schema, definitions, diagram, simulate, migrate]
