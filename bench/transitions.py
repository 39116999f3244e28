"""Committed steps per second against the floor: the same statements and rows through the DB-API.

The step is `refer_bup` from `referred` on mistrivsel_referral: it closes one deadline, opens
two, writes two audit entries and queues two messages. The floor sends the statements pathways
sends for it, written by hand and as simple as they can be (read the instance with its
assignments and consents, close the state's deadlines, insert the new deadlines, the audit
entries and the messages with one executemany each, update the instance), with the plain
driver (sqlite3 / psycopg), one transaction per step, in the same run on the same database.
A second row replays pathways' own SQL and parameters, captured from one step, through the
same driver: whether the hand-written floor is easier for the server than what pathways sends.
On PostgreSQL pathways sends a step's writes as one statement (store/writes.py
`_as_one_statement`; steps it cannot cover as one libpq pipeline); a third row runs the floor
pipelined, the same number of round trips, so what that saves is shown, not credited to the
rest of pathways.

One commit per step, pathways, the floor and the rows beside it take turns: five rounds, a
fifth of each one's steps a round, in an order that turns, and each figure is its median round
(`_pathways`). Run one after the other, the first ran beside the server's work on the rows
seeding had just written, and the machine's drift over the run fell on one side.

Each one-commit-per-step figure also names the client's CPU per step (this process's, not the
server's): the ratio to the floor depends on what a commit costs the server, so a disk with slow
fsync flatters it, and the CPU figures show which of the two bounds it on the machine at hand.

On PostgreSQL this process runs on one CPU and every backend it opens on another
(`database_on_another_core`, bench/common.py), for pathways and the floor alike: left to the
scheduler, a backend that happened to share the client's CPU made its round trips about six
times cheaper, and the ratio moved by about 0.1 from run to run with it.

On PostgreSQL it also times empty write transactions on pathways' engine (a pooled connection
is pinged only after a second idle), on the same engine with `pool_pre_ping`, and on one DB-API
connection, interleaved: what a transaction costs before any step is in it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from pathways_engine import StepRequest
from pathways_engine.store.database import create_db_engine

from .common import START
from .common import Figure
from .common import Placement
from .common import cpu_ms
from .common import database_on_another_core
from .common import make_engine
from .common import median_of
from .common import postgres_reachable
from .common import postgres_url
from .common import seconds
from .common import sqlite_url
from .common import start_children

EVENT = ("refer_bup", "ppr.anne", "ppr", {"referral_received": "2026-11-03"})
NOW = START + dt.timedelta(days=1)

READ = ("SELECT i.*, s.ref, s.birth_date, "
        "(SELECT count(*) FROM assignments a WHERE a.instance_id = i.id AND a.active), "
        "(SELECT count(*) FROM consents c WHERE c.instance_id = i.id AND c.withdrawn_at IS NULL) "
        "FROM instances i JOIN subjects s ON s.id = i.subject_id WHERE i.id = :i{lock}")
CLOSE = ("UPDATE deadlines SET status = CASE WHEN due_at >= :t THEN 'met' ELSE 'met_late' END, "
         "closed_at = :t, next_fire_at = NULL WHERE instance_id = :i AND state = 'referred' "
         "AND status = 'pending'")
DEADLINE = ("INSERT INTO deadlines (instance_id, name, state, responsible, started_at, due_at, "
            "status, closed_at, rule, fires, fire_index, next_fire_at) VALUES (:i, :n, "
            "'bup_referred', 'bup', :t, :t, 'pending', NULL, '{}', :f, 0, :t)")
AUDIT = ("INSERT INTO audit (instance_id, seq, at, recorded_at, actor, role, kind, event, "
         "from_state, to_state, changes, note, effects, prev_hash, hash, mac) VALUES (:i, :seq, :t, "
         ":t, 'ppr.anne', 'ppr', :k, NULL, NULL, NULL, '{}', NULL, '{}', :h, :h, NULL)")
OUTBOX = ("INSERT INTO outbox (idempotency_key, message_id, instance_id, role, party, channel, "
          "address, language, template, subject, body_text, body_html, personal_data, "
          "legal_basis, status, attempts, next_attempt_at, claimed_at, last_error, created_at, "
          "sent_at, digest) VALUES (:k, :k, :i, :r, 'p', 'console', NULL, 'da', 'step_assigned', "
          "'s', 'b', NULL, false, NULL, 'pending', 0, :t, NULL, NULL, :t, NULL, :h)")
INSTANCE = ("UPDATE instances SET state = 'bup_referred', data = :d, version = version + 1, "
            "audit_head = :h, audit_seq = audit_seq + 2, state_entered_at = :t, updated_at = :t "
            "WHERE id = :i AND version = :v")


def _rows(n: int, instance: str, who: str) -> dict[str, Any]:
    """The parameters of step `n` (of instance `instance`), as the floor and Core send them."""
    base = {"i": instance, "t": NOW.replace(tzinfo=None), "h": "0" * 64}
    fires = json.dumps([["reminder", NOW.isoformat()], ["due", NOW.isoformat()]])
    return {"read": {"i": instance}, "close": base,
            "deadline": [{**base, "n": name, "f": fires} for name in ("letter", "assessment")],
            "audit": [{**base, "seq": 1000 + 2 * n + k, "k": kind}
                      for k, kind in enumerate(("transition", "notification_queued"))],
            "outbox": [{**base, "k": f"{who}:{instance}:{role}", "r": role}
                       for role in ("bup", "contact")],
            "instance": {**base, "d": json.dumps({"x": 1})}}


class _Floor:
    """The same statements and rows with the driver alone, one transaction per step, on one
    connection kept for every round.

    `pipelined` (PostgreSQL): the close, the inserts and the version-checked update in one
    libpq pipeline (store/writes.py `pipelined`; pathways sends them as one statement) - the
    floor with the same round trips as pathways, so the trick is not counted as pathways'
    own."""

    def __init__(self, url: str, pipelined: bool = False) -> None:
        self.engine = create_db_engine(url)
        self.raw = self.engine.raw_connection()
        self.cursor = self.raw.cursor()
        self.pipelined = pipelined
        self.sqlite = self.engine.dialect.name == "sqlite"

        def sql(text: str) -> str:
            return text if self.sqlite else re.sub(r":(\w+)", r"%(\1)s", text)

        self.read = sql(READ.format(lock="" if self.sqlite else " FOR UPDATE OF i"))
        self.statements = {name: sql(text) for name, text in
                           (("close", CLOSE), ("deadline", DEADLINE), ("audit", AUDIT),
                            ("outbox", OUTBOX), ("instance", INSTANCE))}

    def _step(self, n: int, instance: str) -> None:
        cursor, statements = self.cursor, self.statements
        rows = _rows(n, instance, "floor")
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(self.read, rows["read"])
        version = cursor.fetchone()[8]  # type: ignore[index]
        with self.raw.driver_connection.pipeline() if self.pipelined else nullcontext():  # type: ignore[attr-defined]
            cursor.execute(statements["close"], rows["close"])
            for table in ("deadline", "audit", "outbox"):
                cursor.executemany(statements[table], rows[table])
            cursor.execute(statements["instance"], {**rows["instance"], "v": version})
        assert cursor.rowcount == 1  # the version check, as pathways makes it
        self.raw.commit()

    def __call__(self, instances: list[str]) -> tuple[float, float]:
        """(steps/s, client CPU ms a step) over these instances."""
        def run() -> None:
            for n, instance in enumerate(instances):
                self._step(n, instance)

        took = cpu_ms(run, len(instances))
        return len(instances) / took.seconds, took.per_item

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


class _Core:
    """The floor's statements and rows through SQLAlchemy Core (`text`, executemany), on the
    engine settings pathways opens a database with: what SQLAlchemy alone leaves of the floor,
    before pathways' own step (machine, calendar, audit chain, messages) costs anything."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import text

        self.engine = create_db_engine(url)
        lock = "" if self.engine.dialect.name == "sqlite" else " FOR UPDATE OF i"
        self.read = text(READ.format(lock=lock))
        self.statements = {name: text(sql) for name, sql in
                           (("close", CLOSE), ("deadline", DEADLINE), ("audit", AUDIT),
                            ("outbox", OUTBOX), ("instance", INSTANCE))}

    def __call__(self, instances: list[str]) -> tuple[float, None]:
        statements = self.statements

        def run() -> None:
            for n, instance in enumerate(instances):
                rows = _rows(n, instance, "core")
                with self.engine.begin() as connection:
                    version = connection.execute(self.read, rows["read"]).one()[8]
                    connection.execute(statements["close"], rows["close"])
                    for table in ("deadline", "audit", "outbox"):
                        connection.execute(statements[table], rows[table])
                    connection.execute(statements["instance"],
                                       {**rows["instance"], "v": version})

        return len(instances) / seconds(run), None

    def close(self) -> None:
        self.engine.dispose()


def _captured(engine: Any, instance: str) -> list[tuple[str, Any, bool]]:
    """(SQL, parameters, executemany) exactly as pathways hands them to the driver for one
    step of `instance`."""
    from sqlalchemy import event

    sent: list[tuple[str, Any, bool]] = []

    def before(_c: Any, _cursor: Any, statement: str, parameters: Any, _x: Any,
               many: bool) -> None:
        sent.append((statement, parameters, many and not isinstance(parameters, dict)))

    event.listen(engine.db.engine, "before_cursor_execute", before)
    kind, actor, role, values = EVENT
    engine.advance(instance, kind, actor=actor, role=role, values=values)
    event.remove(engine.db.engine, "before_cursor_execute", before)
    return sent


def _for(value: Any, old: str, new: str) -> Any:
    """A captured parameter with instance `old`'s id (in keys and ids alike) made `new`'s."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _for(v, old, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_for(v, old, new) for v in value)
    return value


class _Replayed:
    """Steps/s of pathways' own SQL and parameters, as captured, sent through the DB-API for
    other instances (each started like the captured one, so the same revision and audit
    sequence apply): the floor without a single statement simplified."""

    def __init__(self, url: str, sent: list[tuple[str, Any, bool]], of: str) -> None:
        self.engine = create_db_engine(url)
        self.raw = self.engine.raw_connection()
        self.cursor = self.raw.cursor()
        self.sent, self.of = sent, of

    def __call__(self, instances: list[str]) -> tuple[float, None]:
        cursor = self.cursor
        steps = [[(statement, _for(parameters, self.of, instance), many)  # before the clock
                  for statement, parameters, many in self.sent] for instance in instances]

        def run() -> None:
            for step in steps:  # on SQLite the captured statements begin with BEGIN IMMEDIATE
                for statement, parameters, many in step:
                    (cursor.executemany if many else cursor.execute)(statement, parameters)
                    if statement.startswith("SELECT"):
                        cursor.fetchall()
                    elif "UPDATE instances SET" in statement and cursor.rowcount != 1:
                        raise RuntimeError("the replayed step did not apply: the floor would lie")
                self.raw.commit()

        return len(instances) / seconds(run), None

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


ROUNDS = 5  # one commit per step: the contenders take turns, a chunk of steps each


def _pathways(url: str, count: int, batch: int | None
              ) -> tuple[float, float, float | None, float | None, tuple[float, float],
                         float | None]:
    """(pathways, floor, Core, replayed) steps/s in one database, Core and replayed only for
    one commit per step; the client's CPU milliseconds a step (pathways, floor); and the
    pipelined floor's steps/s (PostgreSQL, one commit per step).

    One commit per step, each contender runs a fifth of its steps in each of five rounds, in
    an order that turns round by round, and each figure is its median round: the machine's
    speed drifts within a run, and the one that ran first also ran beside the server's work
    on the rows seeding had just written. (A batch of 200 needs its 200 in one piece: it runs
    whole, after pathways' own.)"""
    engine = make_engine(url)
    steps = start_children(engine, count, "S")
    floor_ids = start_children(engine, count, "F")
    single = batch is None
    piped = engine.db.dialect == "postgresql" and single
    piped_ids = start_children(engine, count, "P") if piped else []
    core_ids = start_children(engine, count, "C") if single else []
    replay_ids = start_children(engine, count, "R") if single else []
    kind, actor, role, values = EVENT
    warm = start_children(engine, 2, "W")
    engine.advance(warm[0], kind, actor=actor, role=role, values=values)
    sent = _captured(engine, warm[1])

    def ours(ids: list[str]) -> tuple[float, float]:
        def one_by_one() -> None:
            for instance in ids:
                engine.advance(instance, kind, actor=actor, role=role, values=values)

        took = cpu_ms(one_by_one, len(ids))
        return len(ids) / took.seconds, took.per_item

    if not single:
        assert batch is not None

        def grouped() -> None:
            for k in range(0, len(steps), batch):
                results = engine.advance_many([StepRequest(i, kind, actor, role, values)
                                               for i in steps[k:k + batch]])
                assert not any(isinstance(r, Exception) for r in results), results[0]

        took = cpu_ms(grouped, count)
        alone = _Floor(url)
        floor, floor_cpu = alone(floor_ids)
        alone.close()
        engine.db.dispose()
        return count / took.seconds, floor, None, None, (took.per_item, floor_cpu), None

    others: dict[str, tuple[_Floor | _Core | _Replayed, list[str]]] = {
        "floor": (_Floor(url), floor_ids), "core": (_Core(url), core_ids),
        "replayed": (_Replayed(url, sent, warm[1]), replay_ids)}
    if piped:
        others["piped"] = (_Floor(url, pipelined=True), piped_ids)
    contenders: dict[str, tuple[Callable[[list[str]], tuple[float, float | None]], list[str]]]
    contenders = {"pathways": (ours, steps), **others}
    rounds: dict[str, list[tuple[float, float | None]]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(ROUNDS):
        for name in names[r % len(names):] + names[:r % len(names)]:
            run, ids = contenders[name]
            rounds[name].append(run(ids[r::ROUNDS]))
    for runner, _ in others.values():
        runner.close()
    engine.db.dispose()

    def rate(name: str) -> float:
        return statistics.median(rate for rate, _ in rounds[name])

    def cpu(name: str) -> float:
        return statistics.median(cpu for _, cpu in rounds[name] if cpu is not None)

    return (rate("pathways"), rate("floor"), rate("core"), rate("replayed"),
            (cpu("pathways"), cpu("floor")), rate("piped") if piped else None)


def _transactions(url: str, rounds: int, each: int) -> dict[str, float]:
    """Write transactions per second (one `SELECT 1` and COMMIT each) on pathways' engine, on
    the same engine with SQLAlchemy's ping on every checkout (what pathways used before), and
    on one DB-API connection; interleaved round by round, medians, so drift hits all alike."""
    from sqlalchemy import create_engine

    engines = {"pathways": create_db_engine(url),
               "pre_ping": create_engine(url, pool_pre_ping=True)}
    raw = engines["pathways"].raw_connection()
    cursor = raw.cursor()

    def pooled(engine: Any) -> Callable[[], None]:
        def once() -> None:
            with engine.begin() as connection:
                connection.exec_driver_sql("SELECT 1").fetchall()
        return once

    def direct() -> None:
        cursor.execute("SELECT 1")
        cursor.fetchall()
        raw.commit()

    actions = {"pathways": pooled(engines["pathways"]), "pre_ping": pooled(engines["pre_ping"]),
               "driver": direct}
    rates: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(rounds):
        for name, action in actions.items():
            action()
            rates[name].append(each / seconds(lambda a=action: [a() for _ in range(each)]))
    raw.close()
    for engine in engines.values():
        engine.dispose()
    return {name: sorted(r)[len(r) // 2] for name, r in rates.items()}


def run(scale: str) -> list[Figure]:
    count = 300 if scale == "quick" else 2000
    repeats = 1 if scale == "quick" else 3
    figures = []
    targets = [("SQLite", sqlite_url)] + ([("PostgreSQL", postgres_url)]
                                         if postgres_reachable() else [])
    for label, make_url in targets:
        placing = database_on_another_core() if label == "PostgreSQL" else nullcontext(None)
        with placing as placement:
            figures += _measured(label, make_url, count, repeats, scale, placement)
    return figures


def _measured(label: str, make_url: Callable[..., Any], count: int, repeats: int, scale: str,
              placement: Placement | None) -> list[Figure]:
    figures = []
    where = f"; {placement.said()}" if placement is not None else ""
    for batch in (None, 200):
        floors: list[float] = []
        cores: list[float] = []
        replays: list[float] = []
        cpus: list[tuple[float, float]] = []
        pipes: list[float] = []

        def measure(make: Callable[..., Any] = make_url, size: int | None = batch,
                    floors: list[float] = floors, cores: list[float] = cores,
                    replays: list[float] = replays,
                    cpus: list[tuple[float, float]] = cpus,
                    pipes: list[float] = pipes) -> float:
            with make() as url:
                rate, floor, core, replayed, cpu, piped = _pathways(url, count, size)
            floors.append(floor)
            pipes.extend([piped] if piped is not None else [])
            cores.extend([core] if core is not None else [])
            replays.extend([replayed] if replayed is not None else [])
            cpus.append(cpu)
            return rate

        rate = median_of(repeats, measure)
        floor = sorted(floors)[len(floors) // 2]
        how = "one commit per step" if batch is None else f"advance_many, {batch} per commit"
        goal = ">= 0.6 x floor" if label == "PostgreSQL" and batch is None else ""
        ours, theirs = sorted(cpus)[len(cpus) // 2]
        cpu = (f"client CPU {ours:.2f} ms a step, the floor's {theirs:.2f}{where}"
               if batch is None else "")
        figures.append(Figure("transitions", f"{label}: pathways advance ({how})", rate,
                              "steps/s", "the same statements and rows, DB-API, commit "
                              "per step", floor, goal,
                              rate >= 0.6 * floor if goal else None, cpu))
        if pipes:
            piped = sorted(pipes)[len(pipes) // 2]
            figures.append(Figure(
                "transitions", f"{label}: the floor, writes pipelined", piped,
                "steps/s", "the same statements and rows, DB-API, commit per step", floor,
                "", None, f"the same round trips as pathways; pathways is "
                f"{rate / piped:.2f}x this"))
        if cores:
            figures.append(Figure(
                "transitions", f"{label}: the same statements through SQLAlchemy Core",
                sorted(cores)[len(cores) // 2], "steps/s", "the same statements and rows, "
                "DB-API, commit per step", floor, "", None,
                "what SQLAlchemy alone leaves of the floor, before pathways' own step"))
        if replays:
            figures.append(Figure(
                "transitions", f"{label}: pathways' own SQL replayed through the DB-API",
                sorted(replays)[len(replays) // 2], "steps/s", "the same statements and "
                "rows, DB-API, commit per step", floor, "", None,
                "one step's statements and parameters as captured from pathways: near 1.0 "
                "says the floor's hand-written SQL is no easier for the server"))
    if label == "PostgreSQL":
        with make_url() as url:
            rates = _transactions(url, 9 if scale == "quick" else 15, 300)
        for name, what in (("pathways", "ping after 1 s idle"),
                           ("pre_ping", "pool_pre_ping")):
            figures.append(Figure(
                "transitions", f"PostgreSQL: empty write transactions, {what}", rates[name],
                "transactions/s", "one DB-API connection, same statement, commit each",
                rates["driver"], "", None, f"interleaved rounds, medians{where}"))
    return figures
