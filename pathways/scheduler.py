"""`pathways scheduler`: one APScheduler interval job that runs the same sweep as `tick`.

Business timers live in the engine's own table, so the scheduler holds nothing durable: a
MemoryJobStore with one job (id "sweep", replace_existing, coalesce, max_instances=1,
misfire_grace_time=None - libraries.md B2/B5), so no run is dropped as "misfired" and a
late run catches up in one go. APScheduler installs no signal handlers (B3): SIGTERM and
SIGINT here shut it down with wait=True, so a sweep in progress finishes and commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from types import FrameType
from typing import Any

from .app import App

log = logging.getLogger("pathways.scheduler")
_app: App | None = None


def sweep() -> None:
    """The job: fire due timers, then deliver pending messages. Referenced textually."""
    assert _app is not None
    from pathways_engine.errors import PathwaysError
    from pathways_engine.runtime.sweep import tick

    now = _app.clock.now()
    try:
        summary = tick(_app.engine, now)
        delivered = _deliver(_app)
        log.info("sweep at %s: %d timers fired, %d messages delivered", now.isoformat(),
                 summary.total, delivered)
    except PathwaysError as exc:  # a database restart, a lock held too long: one line
        log.error("sweep failed: %s; it will run again at the next interval", exc)
    except Exception:  # noqa: BLE001 - a bug: its traceback, and the next interval retries
        log.exception("sweep failed; it will run again at the next interval")


def _deliver(app: App) -> int:
    try:
        from .delivery import deliver_pending
    except ImportError:  # pragma: no cover
        return 0
    return deliver_pending(app).sent


def run(app: App, interval: float, *, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set); each interval runs `sweep` once."""
    global _app
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    _app = app
    stop = stop or threading.Event()
    scheduler = BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone="UTC",
    )
    scheduler.add_job("pathways.scheduler:sweep", "interval", seconds=interval, id="sweep",
                      replace_existing=True, next_run_time=dt.datetime.now(dt.UTC))

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; finishing the running sweep and stopping",
                 signal.Signals(signum).name)
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, _stop)
    log.info("scheduler started: sweeping every %.0f s on %s", interval, app.db.display_url())
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log.info("scheduler stopped cleanly")
