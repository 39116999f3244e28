"""Human-readable output of the read commands (JSON output is the dicts themselves)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import click


@contextmanager
def progress(total: int, label: str, *, at_least: int = 500) -> Iterator[Callable[[int], object]]:
    """A progress bar on stderr for a long run at a terminal; elsewhere (a pipe, cron, a
    test, `--json` readers) nothing, so output stays clean."""
    if total < at_least or not sys.stderr.isatty():
        yield lambda n: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


@contextmanager
def working(label: str) -> Iterator[None]:
    """A spinner on stderr at a terminal, for a long step that cannot count its progress (one
    SQL statement); elsewhere nothing."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(label):
        yield


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str,
          style: Callable[[Sequence[str]], str | None] | None = None,
          right: Collection[int] = ()) -> str:
    """Rows as aligned columns (rich). Colour and wrapping only at a terminal, and no colour
    under NO_COLOR (rich reads it); anywhere else plain text at its natural width, never
    wrapped or cut, so `grep` and `cut` on the output keep working. Cell text is never read as
    rich markup (a subject may hold brackets)."""
    if not rows:
        return empty
    import io
    import shutil

    from rich.console import Console
    from rich.table import Table

    terminal = sys.stdout.isatty()
    console = Console(file=io.StringIO(), force_terminal=terminal, markup=False, emoji=False,
                      highlight=False, color_system="auto" if terminal else None,
                      width=shutil.get_terminal_size().columns if terminal else 100_000)
    grid = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2, 0, 0),
                 header_style="bold" if terminal else None)
    for index, header in enumerate(headers):
        grid.add_column(header, justify="right" if index in right else "left",
                        no_wrap=not terminal)
    for row in rows:
        grid.add_row(*row, style=style(row) if style and terminal else None)
    console.print(grid)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n"))


def cut_short(limit: int, what: str, which: str = "first") -> None:
    """Say on stderr that a listing stopped at its --limit with more left, so a full page
    never passes for everything (stdout stays the rows alone, for grep and cut)."""
    click.echo(f"(the {which} {limit} {what} shown; --limit N shows more)", err=True)


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    elif text is not None:
        click.echo(text)


# audit kinds whose `changes` are {field: [old, new]}; every other kind records plain values
_PAIRED = ("start", "transition", "internal", "correction", "undo")


def when_local(at: str | None, zone: str | None) -> str:
    """An audit time to the minute, in the pathway's zone when it is known."""
    if at is None:
        return "-"
    moment = dt.datetime.fromisoformat(at)
    if zone:
        return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _changes(row: dict[str, Any]) -> str:
    changes = row["changes"] or {}
    if row["kind"] in _PAIRED:
        return ", ".join(f"{k}={_value(v[1])}" if isinstance(v, list) and len(v) == 2
                         else f"{k}={_value(v)}" for k, v in changes.items())
    return ", ".join(f"{k}={_value(v)}" for k, v in changes.items())


def format_history(rows: list[dict[str, Any]], zone: str | None = None) -> str:
    lines = []
    for row in rows:
        move = f"{row['from'] or '-'} -> {row['to']}" if row["to"] and row["kind"] in _PAIRED \
            else ""
        what = row["event"] or row["kind"]
        note = f"  note: {row['note']}" if row["note"] else ""
        parts = [f"{row['seq']:>3}", when_local(row["at"], zone), f"{row['actor']} ({row['role']})",
                 what, move, _changes(row)]
        lines.append("  ".join(p for p in parts if p) + note)
    return "\n".join(lines) if lines else "(no history)"


def format_show(data: dict[str, Any]) -> str:
    from pathways_notifications.wording import local_time

    lang, zone = data["language"], data["timezone"]
    responsible = data["responsible_label"] or "-"
    if data["responsible"]:
        responsible += f" ({data['responsible']})"
    party = data["assigned"].get(data["responsible"] or "", {}).get("party")
    if party:
        responsible += f" -> {party}"
    lines = [
        f"{data['title_text']}  ({data['pathway']} v{data['version']}, {data['id']})",
        f"child:     {data['subject']}" + (f", area {data['area']}" if data["area"] else ""),
        f"step:      {data['state_title']} ({data['state']}), {data['status']}",
        f"responsible: {responsible}",
    ]
    contact = data["assigned"].get("contact_person")
    lines.append(f"contact person: {contact['party'] if contact else '-'}"
                 + (" (for every pathway of the child)" if contact and contact["for"] == "child"
                    else ""))
    consents = [f"{c['sector']} ({c['basis']}: {c['reference']})" for c in data["consents"]]
    lines.append(f"consent:   {'; '.join(consents) if consents else 'none recorded'}")
    if data["parent"]:
        lines.append(f"handed over from: {data['parent']['id']} ({data['parent']['handover']})")
    for child in data["children"]:
        lines.append(f"handed over to:   {child['id']} {child['pathway']} ({child['handover']}): "
                     f"{child['state']}, {child['status']}")
    lines.append(f"revision:  {data['revision']}")
    lines.append(f"data:      {json.dumps(data['data'], ensure_ascii=False) if data['data'] else '-'}")
    lines.append("may send now:")
    for role, events in data["may_send"].items():
        lines.append(f"  {role}: {', '.join(events)}")
    if not data["may_send"]:
        lines.append("  (nothing)")
    lines.append("deadlines:")
    shown = [d for d in data["deadlines"] if not d["superseded"]]
    for d in shown:
        rule = d["rule"]
        due = local_time(d["due_utc"], zone, lang)
        lines.append(f"  {d['title']} ({d['name']}): {d['status']}, due {due}")
        lines.append(f"      {rule['duration']} from {rule['from']}, {rule['status']}: "
                     f"{rule['source']}")
        if rule.get("warning"):
            lines.append(f"      ! {rule['warning']}")
    if not shown:
        lines.append("  none")
    folded = len(data["deadlines"]) - len(shown)
    if folded:
        lines.append(f"  ({folded} replaced by a migration; --json lists them)")
    lines.append("history:")
    lines.append(format_history(data["history"], zone))
    return "\n".join(lines)
