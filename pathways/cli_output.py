"""Human-readable output of the read commands (JSON output is the dicts themselves)."""

from __future__ import annotations

import json
from typing import Any

import click


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    elif text is not None:
        click.echo(text)


def format_history(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        move = f"{row['from'] or '-'} -> {row['to']}" if row["to"] else ""
        what = row["event"] or row["kind"]
        changes = ", ".join(f"{k}={v[1]!r}" for k, v in row["changes"].items()
                            if isinstance(v, list) and len(v) == 2)
        if not changes and row["changes"]:
            changes = ", ".join(f"{k}={v}" for k, v in row["changes"].items())
        note = f"  note: {row['note']}" if row["note"] else ""
        lines.append(f"{row['seq']:>3}  {row['at']}  {row['actor']} ({row['role']})  {what}  "
                     f"{move}  {changes}{note}".rstrip())
    return "\n".join(lines) if lines else "(no history)"


def format_show(data: dict[str, Any]) -> str:
    title = data["title"].get("en") or next(iter(data["title"].values()))
    lines = [
        f"{data['id']}  {data['pathway']} v{data['version']} — {title}",
        f"subject:   {data['subject']}" + (f"   area: {data['area']}" if data['area'] else ""),
        f"state:     {data['state']} ({data['status']}), responsible: {data['responsible'] or '-'}",
        f"revision:  {data['revision']}",
        f"data:      {json.dumps(data['data'], ensure_ascii=False) if data['data'] else '-'}",
        "may send now:",
    ]
    for role, events in data["may_send"].items():
        lines.append(f"  {role}: {', '.join(events)}")
    if not data["may_send"]:
        lines.append("  (nothing)")
    lines.append("deadlines:")
    for d in data["deadlines"]:
        rule = d["rule"]
        lines.append(f"  {d['name']:<24} {d['status']:<9} due {d['due_local']} "
                     f"({d['due_utc']} UTC)  {rule['duration']} from {rule['from']}, "
                     f"{rule['status']}: {rule['source']}")
        if rule.get("warning"):
            lines.append(f"  {'':<24} ! {rule['warning']}")
    if not data["deadlines"]:
        lines.append("  (none)")
    lines.append("history:")
    lines.append(format_history(data["history"]))
    return "\n".join(lines)
