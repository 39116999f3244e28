"""A server process prepares what its first requests would otherwise prepare one by one.

A fresh process compiles each pathway its instances are pinned to (and imports
python-statemachine) on the first step of one of them, and parses the pathway's read view on
the first read: 58-80 ms a request on the benchmark machine, against a few ms after, and
behind a restart twenty clients arrive together (bench/http.py, docs/http.md). `prepare` does it from the
stored snapshots before the process serves. It writes nothing, and a snapshot that does not
compile is logged and left to the requests that need it, which then fail as they did before:
a broken pathway must not keep the others from being served.
"""

from __future__ import annotations

import logging

from pathways_engine.runtime.engine import PathwayEngine
from pathways_engine.store import reads

from .views import read_view

log = logging.getLogger("pathways.prepare")
NEWEST = 50  # snapshots prepared: each definition version ever started is one


def prepare(engine: PathwayEngine, newest: int = NEWEST) -> int:
    """Compile the `newest` stored snapshots for steps and for reads; return how many."""
    prepared = 0
    with engine.db.reading() as connection:
        for content_hash in reads.recent_snapshots(connection, newest):
            try:
                engine.compiled_for(connection, content_hash)
                read_view(connection, content_hash)
            except Exception as exc:  # noqa: BLE001 - preparing is optional; serving is not
                log.warning("pathway snapshot %s not prepared (its first request will try "
                            "again): %s", content_hash[:12], exc)
                continue
            prepared += 1
    return prepared
