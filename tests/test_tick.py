"""Timers fire exactly once: repeated ticks, a tick killed halfway, concurrent ticks, the daemon."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pathways_engine import Database
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.runtime.sweep import tick
from pathways_engine.store.tables import audit
from pathways_engine.store.tables import deadlines
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from support import DEFINITIONS
from support import ROOT
from support import Cli
from support import run_killed

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
WEEK_LATER = START + dt.timedelta(days=40)


def populate(engine: PathwayEngine, count: int) -> list[str]:
    engine.clock = FixedClock(START + dt.timedelta(days=2))
    ids = []
    for n in range(count):
        instance = engine.start("mistrivsel_referral", subject_ref=f"C-{n}",
                                birth_date=dt.date(2014, 1, 1),
                                values={"severity": "moderate", "consent_exchange": True},
                                actor="gp1", role="gp", at=START)
        engine.advance(instance, "refer_bup", actor="p", role="ppr",
                       values={"referral_received": "2026-11-03"}, at=START + dt.timedelta(days=1))
        ids.append(instance)
    return ids


def fired_counts(db: Database) -> tuple[int, int, int]:
    """(wake-ups fired, wake-ups still due by WEEK_LATER, audit timer entries)."""
    with db.reading() as c:
        rows = list(c.execute(select(deadlines.c.status, deadlines.c.fires,
                                     deadlines.c.fire_index)))
        entries = c.scalar(select(func.count()).select_from(audit).where(
            audit.c.kind.like("timer_%")))
    fired = sum(r.fire_index for r in rows)
    pending = sum(1 for r in rows if r.status == "pending" for _, at in r.fires[r.fire_index:]
                  if dt.datetime.fromisoformat(at) <= WEEK_LATER)
    return fired, pending, int(entries or 0)


def test_tick_twice_gives_the_same_result(engine: PathwayEngine, clock: FixedClock) -> None:
    populate(engine, 3)
    first = tick(engine, WEEK_LATER)
    assert first.total == 3 * 5  # per instance: 2 reminders, 2 due, 1 escalation
    assert first.fired["escalation"] == 3
    state = fired_counts(engine.db)
    assert tick(engine, WEEK_LATER).total == 0
    assert fired_counts(engine.db) == state == (15, 0, 15)


def test_timers_fire_in_due_order_and_only_when_due(engine: PathwayEngine) -> None:
    [instance] = populate(engine, 1)
    assert tick(engine, START + dt.timedelta(days=8)).total == 0
    # information_letter: due Fri 13 Nov, reminder 2 working days before: Wed 11 Nov 08:00
    assert tick(engine, START + dt.timedelta(days=9)).total == 1
    tick(engine, WEEK_LATER)
    with engine.db.reading() as c:
        entries = list(c.execute(select(audit).where(
            audit.c.instance_id == instance, audit.c.kind.like("timer_%"))
            .order_by(audit.c.seq)))
    times = [e.at for e in entries]
    assert times == sorted(times)
    assert [e.kind for e in entries] == ["timer_reminder", "timer_due", "timer_reminder",
                                         "timer_due", "timer_escalation"]


def test_leaving_a_state_cancels_its_timers(engine: PathwayEngine) -> None:
    engine.clock = FixedClock(START + dt.timedelta(days=2))
    instance = engine.start("mistrivsel_referral", subject_ref="C-0",
                            birth_date=dt.date(2014, 1, 1),
                            values={"severity": "moderate", "consent_exchange": True},
                            actor="gp1", role="gp", at=START)
    engine.advance(instance, "triage_to_ppr", actor="p", role="ppr",
                   at=START + dt.timedelta(days=1))
    assert tick(engine, WEEK_LATER).total == 0
    with engine.db.reading() as c:
        rows = list(c.execute(select(deadlines).where(deadlines.c.instance_id == instance)))
    # municipal triage was met when PPR took it on: none of its wake-ups is left to fire
    assert [(r.name, r.status) for r in rows] == [("municipal_triage", "met")]
    assert all(r.next_fire_at is None for r in rows)


def test_an_obligation_keeps_its_timers_until_the_act_that_meets_it(
        engine: PathwayEngine) -> None:
    [instance] = populate(engine, 1)
    engine.advance(instance, "bup_accepts", actor="b", role="bup",
                   at=START + dt.timedelta(days=2))
    # information_letter reminder (Wed 11 Nov 08:00) fires although BUP accepted the child
    assert tick(engine, START + dt.timedelta(days=9)).total == 1
    engine.clock = FixedClock(START + dt.timedelta(days=10))
    step = engine.advance(instance, "information_letter_sent", actor="b", role="bup",
                          at=START + dt.timedelta(days=9, hours=1))
    assert (step.from_state, step.to_state) == ("bup_assessment", "bup_assessment")
    with engine.db.reading() as c:
        rows = {r.name: r for r in c.execute(select(deadlines).where(
            deadlines.c.instance_id == instance))}
    assert rows["information_letter"].status == "met"
    assert rows["information_letter"].next_fire_at is None
    assert rows["assessment_right"].status == "pending"


def test_a_stored_wake_up_that_disagrees_with_its_deadline_is_mended_not_swept_forever(
        engine: PathwayEngine, caplog: pytest.LogCaptureFixture) -> None:
    """Attack: a pending deadline whose wake-ups have all fired, its stored next wake-up set
    back into the past (as a row changed by hand would be). Every batch found the instance
    again and fired nothing, so `tick` never ended. Now the second batch that finds it writes
    the wake-up again from the deadline, says so once, and the sweep ends."""
    [instance] = populate(engine, 1)
    assert tick(engine, WEEK_LATER).total == 5
    with engine.db.engine.begin() as c:  # the hand edit
        changed = c.execute(deadlines.update().where(
            deadlines.c.instance_id == instance, deadlines.c.status == "pending")
            .values(next_fire_at=START)).rowcount
    assert changed == 2  # both of BUP's deadlines: overdue, nothing left to fire
    with caplog.at_level(logging.WARNING, logger="pathways.tick"):
        summary = tick(engine, WEEK_LATER, max_batches=20)
    assert (summary.total, summary.batches) == (0, 2)
    assert [r.getMessage() for r in caplog.records] == [
        f"instance {instance}: its stored next wake-up did not match its deadlines' wake-ups; "
        "written again from them"]
    with engine.db.reading() as c:
        stored = list(c.execute(select(deadlines.c.next_fire_at).where(
            deadlines.c.instance_id == instance, deadlines.c.status == "pending")).scalars())
    assert stored == [None, None]
    assert tick(engine, WEEK_LATER).batches == 0


def test_an_instance_whose_wake_up_was_taken_meanwhile_is_left_alone(
        engine: PathwayEngine, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL another sweep, or a step that meets the deadline, can commit between a
    batch's search for due wake-ups and its lock: the instance it holds then has nothing due.
    That is no stale row: nothing is rewritten and no warning is logged."""
    from pathways_engine.runtime import sweep

    [instance] = populate(engine, 1)
    now = START + dt.timedelta(days=3)  # its first wake-up is on day 9
    with engine.db.reading() as c:
        before = list(c.execute(select(deadlines).order_by(deadlines.c.id)))
    found = sweep.reads.due_instances
    calls = iter([[instance]])  # the first search found it due, as it was a moment before

    def due_instances(*args: Any, **kwargs: Any) -> list[str]:
        return next(calls, None) or found(*args, **kwargs)

    monkeypatch.setattr(sweep.reads, "due_instances", due_instances)
    with caplog.at_level(logging.WARNING, logger="pathways.tick"):
        summary = tick(engine, now)
    assert (summary.total, summary.batches) == (0, 1)
    assert caplog.records == []
    with engine.db.reading() as c:
        assert list(c.execute(select(deadlines).order_by(deadlines.c.id))) == before


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 5, 10])
def test_tick_killed_halfway_then_rerun_fires_every_timer_once(
        engine: PathwayEngine, db_url: str, kill_at: int) -> None:
    populate(engine, 4)  # 20 wake-ups, 5 per instance
    proc = run_killed(db_url, f"tick.fired=kill@{kill_at}", "tick", "--force", "--now",
                      WEEK_LATER.isoformat(), "--batch-size", "1")
    assert proc.returncode == -signal.SIGKILL
    fired_before, _, entries_before = fired_counts(engine.db)
    assert fired_before == entries_before
    assert fired_before % 5 == 0  # only whole batches (here: one instance each) committed
    assert fired_before == 5 * ((kill_at - 1) // 5)
    tick(engine, WEEK_LATER)
    assert fired_counts(engine.db) == (20, 0, 20)
    assert Cli(db_url)("audit", "verify").exit_code == 0


TICK_SCRIPT = """
import datetime as dt, sys, json
from pathlib import Path
from pathways_engine import Database, FixedClock, PathwayEngine, Registry
from pathways_engine.runtime.sweep import tick
url, defs, now = sys.argv[1], sys.argv[2], dt.datetime.fromisoformat(sys.argv[3])
engine = PathwayEngine(Database(url), Registry.from_paths([Path(defs)]), clock=FixedClock(now))
print(json.dumps(tick(engine, now, batch_size=3).as_dict()))
"""


@pytest.mark.slow
def test_concurrent_ticks_in_separate_processes(engine: PathwayEngine, db_url: str) -> None:
    populate(engine, 12)  # 60 timers
    procs = [subprocess.Popen([sys.executable, "-c", TICK_SCRIPT, db_url, str(DEFINITIONS),
                               WEEK_LATER.isoformat()], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert sum(r["fired"] for r in results) == 60
    assert fired_counts(engine.db) == (60, 0, 60)


def test_scheduler_down_for_a_week_catches_up_once(engine: PathwayEngine, db_url: str) -> None:
    from pathways import scheduler
    from pathways.app import App
    from pathways.config import Settings

    populate(engine, 2)
    app = App(Settings(db_url, (DEFINITIONS,), None), clock=FixedClock(WEEK_LATER))
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(app, 0.2), kwargs={"stop": stop})
    thread.start()
    deadline = time.monotonic() + 30
    while fired_counts(engine.db)[0] < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.6)  # a few more sweeps: nothing more may fire
    stop.set()
    thread.join(timeout=30)
    app.close()
    assert fired_counts(engine.db) == (10, 0, 10)


@pytest.mark.slow
def test_scheduler_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    Cli(url)("db", "upgrade")
    proc = subprocess.Popen([sys.executable, "-m", "pathways", "--db", url, "--definitions",
                             str(DEFINITIONS), "scheduler", "--interval", "0.2"],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "sweep at" in line or len(lines) > 50:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 0
    assert "received SIGTERM" in rest
    assert "scheduler stopped cleanly" in rest


def test_overdue_and_show_statuses(run: Cli, db_url: str) -> None:
    out = run("start", "mistrivsel_referral", "--subject", "C-9", "--birth-date", "2014-05-02",
              "--set", "severity=severe", "--set", "consent_exchange=true", "--as", "gp1",
              "--role", "gp", "--at", "2026-11-02T09:00", "--json").output
    instance = json.loads(out)["id"]
    rows = json.loads(run("overdue", "--now", "2026-11-20T12:00", "--json").output)
    assert [(r["instance"], r["deadline"], r["responsible"]) for r in rows] == [
        (instance, "municipal_triage", "ppr")]
    assert rows[0]["overdue_by"].startswith("3 d")
    assert json.loads(run("overdue", "--role", "bup", "--now", "2026-11-20T12:00",
                          "--json").output) == []
    shown = json.loads(run("show", instance, "--json").output)
    [deadline] = shown["deadlines"]
    assert deadline["due_local"] == "2026-11-16T23:59:59+01:00"
    assert deadline["due_utc"] == "2026-11-16T22:59:59+00:00"
    assert deadline["rule"]["status"] == "local_agreement"
    assert deadline["status"] == "overdue"  # the real clock is past 2026-11-16


def test_due_wake_ups_are_found_by_index_not_by_reading_every_pending_deadline(
        sqlite_url: str, registry: Any, clock: FixedClock) -> None:
    """The sweep, `count_due` and the timer-lag gauge ask for pending deadlines due by now:
    SQLite must walk (status, next_fire_at) in order, not read and sort every pending one
    (before migration 0009 each sweep batch did, 96 ms at 100,000 pathways)."""
    from pathways_engine.store import gauges
    from pathways_engine.store.reads import count_due
    from pathways_engine.store.reads import due_instances
    from sqlalchemy import event

    engine = PathwayEngine(Database(sqlite_url), registry, clock=clock)
    populate(engine, 2)
    asked: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "next_fire_at <=" in statement:
            asked.append((statement, params))

    event.listen(engine.db.engine, "before_cursor_execute", seen)
    with engine.db.reading() as connection:
        assert due_instances(connection, WEEK_LATER, 10) != []
        assert count_due(connection, WEEK_LATER) > 0
        gauges.read(connection, WEEK_LATER)
    event.remove(engine.db.engine, "before_cursor_execute", seen)
    assert len(asked) >= 3
    with engine.db.reading() as connection:
        for statement, params in asked:
            plan = " ".join(str(row[3]) for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", params))
            assert "ix_deadlines_status_next_fire_at" in plan, (statement, plan)
            assert "TEMP B-TREE" not in plan, (statement, plan)


def test_a_sweep_batch_runs_with_the_collector_paused_and_restores_it(
        engine: PathwayEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """runtime/gcpause.py: off while a batch fires, on again after it, a failed one too."""
    import gc

    from pathways_engine.runtime import sweep

    populate(engine, 2)
    seen: list[bool] = []
    fire = sweep._fire

    def watched(*args: Any) -> None:
        seen.append(gc.isenabled())
        fire(*args)

    monkeypatch.setattr(sweep, "_fire", watched)
    assert gc.isenabled()
    assert tick(engine, START + dt.timedelta(days=9)).total == 2
    assert seen == [False, False]
    assert gc.isenabled()

    def failing(*args: Any) -> None:
        raise RuntimeError("the batch fails")

    monkeypatch.setattr(sweep, "_fire", failing)
    with pytest.raises(RuntimeError):
        tick(engine, WEEK_LATER)
    assert gc.isenabled()
    gc.disable()  # a process that turned it off itself keeps it off
    try:
        monkeypatch.setattr(sweep, "_fire", fire)
        assert tick(engine, WEEK_LATER).total > 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_sweep_the_database_refuses_logs_one_line_and_the_next_one_fires(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """An operator reads a held lock or a restart as one line, not a traceback; nothing fires
    twice or is lost, and the next interval's sweep does the work."""
    from pathways import scheduler
    from pathways.app import App
    from pathways.config import Settings

    impatient = pg_url.replace("options=-csearch_path",
                               "options=-clock_timeout%3D300%20-csearch_path")
    assert impatient != pg_url
    engine = PathwayEngine(Database(pg_url), Registry.from_paths([DEFINITIONS]),
                           clock=FixedClock(START))
    populate(engine, 2)
    app = App(Settings(impatient, (DEFINITIONS,), None), clock=FixedClock(WEEK_LATER))
    scheduler._app = app  # the job, as run() sets it up
    holder = create_engine(pg_url)
    try:
        with caplog.at_level(logging.INFO, logger="pathways.scheduler"):
            with holder.begin() as locked:
                locked.execute(text("LOCK TABLE deadlines IN ACCESS EXCLUSIVE MODE"))
                scheduler.sweep()
            failed = [r for r in caplog.records if r.name == "pathways.scheduler"]
            assert fired_counts(engine.db)[0] == 0  # the refused sweep wrote nothing
            scheduler.sweep()
    finally:
        scheduler._app = None
        holder.dispose()
        app.close()
    assert [r.levelno for r in failed] == [logging.ERROR]
    message = failed[0].getMessage()
    assert message.startswith("sweep failed: database is busy or unavailable: ")
    assert message.endswith("it will run again at the next interval")
    assert "\n" not in message
    assert failed[0].exc_info is None  # no traceback for the operator
    assert fired_counts(engine.db) == (10, 0, 10)
    assert any(r.getMessage().startswith("sweep at ") for r in caplog.records)
    engine.db.dispose()
