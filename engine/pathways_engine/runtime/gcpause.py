"""The cyclic garbage collector paused while one batch of the sweep builds its objects.

Why: a batch loads hundreds of instances with their deadlines, and those allocations set off
the collector's passes, which walk the objects the process keeps (SQLAlchemy's, the compiled
definitions) and find nothing to free: about a quarter of `tick`'s time (bench/sweep.py). What
a batch allocates is freed by reference counting when it ends, and the collector runs as
usual between batches, so memory stays bounded by one batch. The switch is the process's:
another thread's batch running at the same time may end the pause early, never extend it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
