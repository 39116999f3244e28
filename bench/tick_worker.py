"""One `tick` in its own process (so its peak memory is its own); prints JSON."""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time

from .common import make_engine
from .seeding import DUE


def main() -> None:
    url = sys.argv[1]
    now = DUE + dt.timedelta(hours=1)
    from pathways_engine import FixedClock
    from pathways_engine.runtime.sweep import tick

    engine = make_engine(url, FixedClock(now))
    began = time.perf_counter()
    summary = tick(engine, now)
    elapsed = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "fired": summary.total, "peak_mb": peak_kb / 1024}))


if __name__ == "__main__":
    main()
