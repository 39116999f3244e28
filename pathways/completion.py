"""Shell completion of pathway ids, instance ids and the events an instance may take now.

Click drives it (`_PATHWAYS_COMPLETE=bash_source pathways`, also zsh and fish); these callbacks
only answer, from the configured definitions and database. A completion must never fail or be
slow in a shell: any problem (no database yet, a broken file) completes nothing.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

MAX_INSTANCES = 200


def _app(ctx: click.Context) -> Any:
    from .app import App
    from .config import Settings

    root = ctx.find_root()
    if isinstance(root.obj, App):
        return root.obj
    params = root.params
    return App(Settings.resolve(params.get("db"), tuple(params.get("definitions") or ()),
                                params.get("parties"), params.get("actors")))


def pathways(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        ids = _app(ctx).registry.ids()
    except Exception:  # noqa: BLE001 - a shell completion completes nothing rather than fail
        return []
    return [CompletionItem(i) for i in ids if i.startswith(incomplete)]


def instances(ctx: click.Context, param: click.Parameter,
              incomplete: str) -> list[CompletionItem]:
    """Running instances, newest first, with their pathway and state as help."""
    from pathways_engine.reading.views import list_instances

    try:
        rows = list_instances(_app(ctx), limit=MAX_INSTANCES)
    except Exception:  # noqa: BLE001
        return []
    return [CompletionItem(r["id"], help=f"{r['pathway']} {r['state']} ({r['subject']})")
            for r in rows if r["status"] == "active" and r["id"].startswith(incomplete)]


def events(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The events the instance named before may take now, by any role."""
    from pathways_engine.reading.views import show

    instance = ctx.params.get("instance")
    if not instance:
        return []
    try:
        may = show(_app(ctx), instance)["may_send"]
    except Exception:  # noqa: BLE001
        return []
    found = sorted({e for events in may.values() for e in events})
    return [CompletionItem(e) for e in found if e.startswith(incomplete)]
