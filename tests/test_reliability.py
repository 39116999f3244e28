"""Guarantees under faults, races and tampering, proven with real processes and databases.

Each test here is listed in RELIABILITY.md next to the guarantee it proves.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pathways_engine import Database
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.errors import DatabaseError
from pathways_engine.store.tables import audit
from pathways_engine.store.tables import deadlines
from pathways_engine.store.tables import instances
from pathways_engine.store.tables import outbox
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from support import ACTORS
from support import DEFINITIONS
from support import ROOT
from support import Cli
from support import run_killed
from support import tamper

START = ["start", "mistrivsel_referral", "--subject", "C-1", "--birth-date", "2014-05-02",
         "--set", "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a",
         "--role", "gp", "--at", "2026-11-02T09:00", "--json"]
REFER = ["refer_bup", "--set", "referral_received=2026-11-03", "--as", "p", "--role", "ppr",
         "--at", "2026-11-03T10:00"]


def started(run: Cli) -> str:
    return str(json.loads(run(*START).output)["id"])


def footprint(url: str, instance: str) -> dict[str, object]:
    """Everything a step writes, so a half-applied step would show."""
    db = Database(url)
    with db.reading() as c:
        state = c.execute(text("select state, version, audit_seq from instances where id = :i"),
                          {"i": instance}).one()
        counts = {table.name: c.scalar(select(func.count()).select_from(table).where(
            table.c.instance_id == instance)) for table in (audit, deadlines, outbox)}
        counts["wake-ups pending"] = sum(len(r.fires) - r.fire_index for r in c.execute(
            select(deadlines).where(deadlines.c.instance_id == instance,
                                    deadlines.c.status == "pending")))
    db.dispose()
    return {"state": state.state, "revision": state.version, "audit_seq": state.audit_seq,
            **counts}


# ------------------------------------------------------------------ concurrency

def _race(db_url: str, instance: str, tmp_path: Path, *commands: list[str]) -> list[tuple[int, str, str]]:
    """Run the commands in real processes, released together just before their transactions."""
    go = tmp_path / "go"
    env = {**os.environ, "PATHWAYS_FAILPOINTS": f"step.before_begin=wait:{go}"}
    base = [sys.executable, "-m", "pathways", "--db", db_url, "--definitions",
            str(DEFINITIONS), "--actors", str(ACTORS), "advance", instance]
    procs = [subprocess.Popen([*base, *args], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in commands]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*.waiting"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    return sorted((p.wait(timeout=60), p.stdout.read(), p.stderr.read())  # type: ignore[union-attr]
                  for p in procs)


def test_two_caseworkers_at_the_same_moment_one_wins_the_other_exits_3(
        run: Cli, db_url: str, tmp_path: Path) -> None:
    """Both saw revision 1 and say so: the steps queue for the instance's lock; the one that
    gets it second finds revision 2 and is refused with exit 3, writing nothing."""
    instance = started(run)
    results = _race(db_url, instance, tmp_path, [*REFER, "--expect-revision", "1"],
                    ["triage_to_ltt", "--as", "p1", "--role", "ppr", "--expect-revision", "1"])
    assert [code for code, _, _ in results] == [0, 3]
    loser = results[1][2]
    assert loser.count("\n") == 1
    assert "you had revision 1, it is now at revision 2" in loser
    after = footprint(db_url, instance)
    assert after["revision"] == 2
    assert after["state"] in {"bup_referred", "ltt_offer"}
    assert run("audit", "verify").exit_code == 0


def test_two_steps_at_the_same_moment_are_applied_one_after_the_other(
        run: Cli, db_url: str, tmp_path: Path) -> None:
    """Without --expect-revision each step is checked against the state it finds: the second
    is applied after the first, or refused (exit 1) if the first made it impossible."""
    instance = started(run)
    results = _race(db_url, instance, tmp_path, REFER[:-2],
                    ["triage_to_ltt", "--as", "p1", "--role", "ppr"])
    codes = [code for code, _, _ in results]
    assert codes == [0, 1]  # either order leaves the other event not allowed any more
    assert "is not allowed in state" in results[1][2]
    assert footprint(db_url, instance)["revision"] == 2
    assert run("audit", "verify").exit_code == 0


# ------------------------------------------------------------------ crash safety

@pytest.mark.slow
@pytest.mark.parametrize("point", ["advance.after_read", "advance.before_commit",
                                   "advance.after_commit"])
def test_advance_killed_leaves_the_old_or_the_new_step_never_half(
        run: Cli, db_url: str, point: str) -> None:
    instance = started(run)
    before = footprint(db_url, instance)
    killed = run_killed(db_url, f"{point}=kill", "advance", instance, *REFER)
    assert killed.returncode == -signal.SIGKILL
    after = footprint(db_url, instance)
    if point == "advance.after_commit":
        assert after["state"] == "bup_referred"
        assert after["audit_seq"] > before["audit_seq"]
    else:
        assert after == before
        run("advance", instance, *REFER)  # the rerun completes the step
        assert footprint(db_url, instance)["state"] == "bup_referred"
    assert run("audit", "verify").exit_code == 0
    assert run("tick", "--force", "--now", "2026-12-31T12:00").exit_code == 0


_REFUSE = {  # a trigger that makes the database refuse one table's new rows
    "sqlite": ["CREATE TRIGGER refuse BEFORE INSERT ON {table} "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    "postgresql": ["CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
                   "CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION refuse()"],
}
_ALLOW = {"sqlite": ["DROP TRIGGER refuse"],
          "postgresql": ["DROP TRIGGER refuse ON {table}", "DROP FUNCTION refuse()"]}


@pytest.mark.parametrize("one_statement", [True, False], ids=["one-statement", "pipelined"])
@pytest.mark.parametrize("table", ["audit", "outbox"])
def test_a_write_the_database_refuses_inside_the_steps_pipeline_leaves_nothing(
        run: Cli, db_url: str, table: str, one_statement: bool,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """On PostgreSQL a step's writes are one statement, or, for a step that cannot be, one
    pipeline (store/writes.py): a refusal in the middle of either (the audit entries) or at
    its end (the messages, answered by the pipeline's final sync) is raised as SQLAlchemy's
    error for it, and nothing of the step is written. The driver logs nothing beside it: a
    second warning that the pipeline was aborted would only send an operator looking for a
    second failure."""
    from pathways_engine.store import writes
    from pathways_notifications import Composer
    from pathways_notifications import load_parties

    if not one_statement:
        monkeypatch.setattr(writes, "_as_one_statement", lambda _writes, _updates: None)

    instance = started(run)
    before = footprint(db_url, instance)
    admin = create_engine(db_url)
    kind = admin.dialect.name

    def ddl(statements: list[str]) -> None:
        with admin.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement.format(table=table))

    database = Database(db_url)
    engine = PathwayEngine(database, Registry.from_paths([DEFINITIONS]),
                           composer=Composer(load_parties(DEFINITIONS / "parties.yaml")))
    ddl(_REFUSE[kind])
    try:
        with caplog.at_level(logging.DEBUG, logger="psycopg"), \
                pytest.raises(DBAPIError, match="refused by the test"):
            engine.advance(instance, "refer_bup", actor="p", role="ppr",
                           values={"referral_received": "2026-11-03"},
                           at=dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC))
        assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")
                and r.levelno >= logging.WARNING] == []
        assert footprint(db_url, instance) == before
    finally:
        ddl(_ALLOW[kind])
        database.dispose()
        admin.dispose()
    run("advance", instance, *REFER)  # the same step, once the database takes it
    assert footprint(db_url, instance)["state"] == "bup_referred"
    assert run("audit", "verify").exit_code == 0


@pytest.mark.parametrize(("batch", "counted", "one_statement"),
                         [(1, True, True), (1, True, False), (2, True, True), (1, False, False)],
                         ids=["one-step", "one-step-pipelined", "batch-of-two",
                              "one-step-driver-does-not-count"])
def test_a_revision_moved_under_a_batch_refuses_the_whole_batch_and_writes_nothing(
        run: Cli, db_url: str, batch: int, counted: bool, one_statement: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance update checks the revision the batch read (store/writes.py): if it moved
    meanwhile, nothing of the batch is written. On PostgreSQL one step's writes are one
    statement whose row count is the update's, or, for a step that cannot be, a pipeline
    checked after its sync; a batch's update is an executemany checked on its own. Should
    the driver not count a pipelined update's rows, the check asks the database instead."""
    from pathways_engine import StepRequest
    from pathways_engine.errors import ConcurrentModification
    from pathways_engine.runtime import step as step_path
    from pathways_engine.store import writes

    if not one_statement:
        monkeypatch.setattr(writes, "_as_one_statement", lambda _writes, _updates: None)
    if not counted:
        monkeypatch.setattr(writes, "_synced_rowcount", lambda _result: -1)

    instances_started = [started(run)] + [
        json.loads(run(*START[:2], "--subject", f"C-{n}", *START[4:]).output)["id"]
        for n in range(2, batch + 1)]
    before = {i: footprint(db_url, i) for i in instances_started}
    load = step_path.reads.load_instances

    def moved_after_reading(connection: object, ids: object, **kwargs: object) -> object:
        found = load(connection, ids, **kwargs)  # type: ignore[arg-type]
        connection.execute(  # type: ignore[attr-defined]
            text("update instances set version = version + 1 where id = :i"),
            {"i": instances_started[-1]})
        return found

    monkeypatch.setattr(step_path.reads, "load_instances", moved_after_reading)
    database = Database(db_url)
    engine = PathwayEngine(database, Registry.from_paths([DEFINITIONS]))
    at = dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC)
    values = {"referral_received": "2026-11-03"}

    def steps() -> object:
        if batch == 1:
            return engine.advance(instances_started[0], "refer_bup", actor="p", role="ppr",
                                  values=values, at=at)
        return engine.advance_many([StepRequest(i, "refer_bup", "p", "ppr", values, at=at)
                                    for i in instances_started])

    try:
        with pytest.raises(ConcurrentModification):
            steps()
    finally:
        database.dispose()
    assert {i: footprint(db_url, i) for i in instances_started} == before
    monkeypatch.setattr(step_path.reads, "load_instances", load)
    run("advance", instances_started[0], *REFER)  # the same step, once nothing moves under it
    assert footprint(db_url, instances_started[0])["state"] == "bup_referred"
    assert run("audit", "verify").exit_code == 0


@pytest.mark.slow
def test_start_killed_before_commit_leaves_nothing(run: Cli, db_url: str) -> None:
    killed = run_killed(db_url, "start.before_commit=kill", *START)
    assert killed.returncode == -signal.SIGKILL
    assert json.loads(run("list", "--json").output) == []
    started(run)
    assert len(json.loads(run("list", "--json").output)) == 1


# ------------------------------------------------------------------ audit

@pytest.mark.parametrize(("sql", "seq", "reason"), [
    ("update audit set note = 'edited' where seq = 3", 3, "content was changed"),
    ("delete from audit where seq = 2", 2, "missing or reordered"),
    ("update audit set seq = 100 + seq where seq in (2, 3)", 2, "missing or reordered"),
    ("delete from audit where seq = (select max(seq) from audit)", 0, "missing (the trail ends before it"),
])
def test_audit_verify_names_the_first_bad_entry(run: Cli, db_url: str, sql: str, seq: int,
                                                reason: str) -> None:
    instance = started(run)
    run("advance", instance, *REFER)
    intact = run("audit", "verify").output
    assert intact.startswith("audit trail intact: 1 instance,")
    last = footprint(db_url, instance)["audit_seq"]
    tamper(db_url, sql)
    result = run("audit", "verify", code=1)
    expected_seq = seq or last
    assert f"instance {instance}: audit entry {expected_seq}: {reason}" in result.stderr
    data = json.loads(run("audit", "verify", "--json", code=1).output)
    assert data["breaks"][0]["seq"] == expected_seq


def test_the_database_refuses_to_change_or_delete_audit_rows(run: Cli, db_url: str) -> None:
    started(run)
    db = Database(db_url)
    for sql in ("update audit set note = 'x'", "delete from audit"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(sql))
    db.dispose()
    assert run("audit", "verify").exit_code == 0


def test_audit_verify_unknown_instance(run: Cli) -> None:
    run("db", "upgrade")
    assert "no pathway instance 'nope'" in run("audit", "verify", "nope", code=1).stderr


# ------------------------------------------------------------------ authorization

def test_actor_must_hold_the_role_it_claims(run: Cli) -> None:
    instance = started(run)
    before = run("show", instance, "--json").output
    wrong = run("advance", instance, *REFER[:-6], "--as", "b", "--role", "ppr", code=4)
    assert wrong.stderr == "error: actor 'b' does not hold role 'ppr'; b holds: bup\n"
    unknown = run("advance", instance, *REFER[:-6], "--as", "pp", "--role", "ppr", code=4)
    assert "--as 'pp' is not in the actors file" in unknown.stderr
    assert "did you mean 'p'" in unknown.stderr
    assert run("show", instance, "--json").output == before
    # holding the role is necessary, not sufficient: the definition decides who sends what
    refused = run("advance", instance, "bup_accepts", "--as", "b", "--role", "bup", code=1)
    assert "is not allowed in state 'referred'" in refused.stderr


def test_no_actors_file_refuses_every_acting_command(db_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pathways.cli import cli

    env = {"PATHWAYS_ACTORS": ""}
    result = CliRunner().invoke(cli, ["--db", db_url, "--definitions",
                                      str(DEFINITIONS / "mistrivsel_referral"), *START[:-1]],
                                env=env)
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1
    assert "no actors file, so nobody may act: give --actors FILE or set PATHWAYS_ACTORS" in \
        result.stderr


def test_assign_and_consent_are_audited_with_the_role_the_actor_holds(run: Cli) -> None:
    instance = started(run)
    run("assign", instance, "contact_person", "kontakt_hanne", "--as", "leader")
    run("consent", instance, "--sector", "psychiatry", "--basis", "consent", "--reference",
        "parent", "--as", "caseworker")
    refused = run("consent", instance, "--sector", "psychiatry", "--basis", "consent",
                  "--reference", "x", "--as", "nurse", code=4)
    assert "holds no role of this pathway" in refused.stderr
    history = json.loads(run("history", instance, "--json").output)
    acts = {h["kind"]: (h["actor"], h["role"]) for h in history}
    assert acts["assignment"] == ("leader", "contact_person")  # its role in this pathway
    assert acts["consent"] == ("caseworker", "contact_person")


def test_check_reports_actor_file_problems(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pathways.cli import cli

    path = tmp_path / "actors.yaml"
    path.write_text("actors:\n  - {id: a, name: A, roles: [gp]}\n"
                    "  - {id: b, name: B, roles: [ppx], organisation: nowhere}\n"
                    "  - {id: a, name: A2, roles: [gp]}\n")
    result = CliRunner().invoke(cli, ["--actors", str(path), "check", str(DEFINITIONS)])
    assert result.exit_code == 1
    assert f"{path}:4: actor 'a' is listed twice" in result.output
    path.write_text("actors:\n  - {id: a, name: A, roles: [gp]}\n"
                    "  - {id: b, name: B, roles: [ppx], organisation: nowhere}\n")
    result = CliRunner().invoke(cli, ["--actors", str(path), "--parties",
                                      str(DEFINITIONS / "parties.yaml"), "check", str(DEFINITIONS)])
    assert f"{path}:3: unknown role 'ppx'" in result.output
    assert f"{path}:3: actor 'b': organisation 'nowhere' is not a party" in result.output


# ------------------------------------------------------------------ files and secrets

def test_sqlite_database_file_is_private_to_its_owner(sqlite_url: str) -> None:
    Database(sqlite_url).dispose()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_database_password_never_appears_in_errors() -> None:
    from click.testing import CliRunner

    from pathways.cli import cli

    url = "postgresql+psycopg://admin:s3cret-pw@127.0.0.1:1/none"
    result = CliRunner().invoke(cli, ["--db", url, "list"])
    assert result.exit_code == 1
    assert "s3cret-pw" not in result.output
    assert "***" in result.output


def test_first_starts_in_many_threads_share_one_definition_snapshot(database: object) -> None:
    """Attack (found over HTTP): 20 threads' first starts on a fresh engine; one stored the
    definition snapshot, the others skipped it before it committed and their instances' foreign
    key pointed at nothing (PostgreSQL ForeignKeyViolation, HTTP 500)."""
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    from pathways_engine import PathwayEngine
    from pathways_engine import Registry
    from support import DEFINITIONS

    engine = PathwayEngine(database, Registry.from_paths([DEFINITIONS]))  # type: ignore[arg-type]

    def start(n: int) -> str:
        return engine.start("mistrivsel_referral", subject_ref=f"T-{n}",
                            birth_date=dt.date(2014, 1, 1), actor="gp1", role="gp",
                            values={"severity": "moderate", "consent_exchange": True})

    with ThreadPoolExecutor(20) as pool:
        started = list(pool.map(start, range(60)))
    assert len(set(started)) == 60


def test_a_lazy_registry_loads_its_files_once_however_many_threads_ask(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack (CI, over HTTP): a server's first 20 requests each loaded every definition at
    once; CPython 3.11.7's parser is not safe for that (SystemError, HTTP 500)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from pathways_engine.definition import registry as registry_module
    from support import DEFINITIONS

    loads = []
    real = registry_module.load_all

    def counted(*args: object, **kwargs: object) -> object:
        loads.append(threading.get_ident())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(registry_module, "load_all", counted)
    lazy = registry_module.Registry.lazy([DEFINITIONS])
    barrier = threading.Barrier(20)

    def ask(_: int) -> int:
        barrier.wait()
        return lazy.get("mistrivsel_referral").spec.version

    with ThreadPoolExecutor(20) as pool:
        versions = set(pool.map(ask, range(20)))
    assert len(versions) == 1
    assert len(loads) == 1


def _terminate_backend_of(db: Database) -> int:
    """Have the server close the connection `db`'s pool holds (as a restart would); its pid."""
    with db.writing() as connection:
        pid = int(connection.execute(text("select pg_backend_pid()")).scalar_one())
    admin = create_engine(db.url)
    with admin.connect() as connection:
        connection.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
        for _ in range(100):  # the backend exits a moment after the signal
            if not connection.execute(text("select count(*) from pg_stat_activity "
                                           "where pid = :p"), {"p": pid}).scalar_one():
                break
            time.sleep(0.05)
    admin.dispose()
    return pid


def _start_one(engine: PathwayEngine) -> str:
    return engine.start("mistrivsel_referral", subject_ref="C-1", birth_date=dt.date(2014, 1, 1),
                        actor="dr.jensen", role="gp",
                        values={"severity": "moderate", "consent_exchange": True})


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_step(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathways_engine.store import database

    db = Database(pg_url)
    engine = PathwayEngine(db, Registry.from_paths([DEFINITIONS]))
    pid = _terminate_backend_of(db)
    monkeypatch.setattr(database, "IDLE_PING_AFTER_S", 0.0)  # idle long enough to be pinged
    started = _start_one(engine)
    with db.writing() as connection:
        assert connection.execute(text("select pg_backend_pid()")).scalar_one() != pid
        assert connection.execute(select(instances.c.id)).scalars().all() == [started]
    db.dispose()


def test_a_connection_closed_while_in_steady_use_fails_one_transaction_then_reconnects(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the idle window a connection is not pinged: a server restart costs the one
    transaction that meets it a one-line error, and the pool is replaced for the next."""
    from pathways_engine.store import database

    monkeypatch.setattr(database, "IDLE_PING_AFTER_S", 3600.0)
    db = Database(pg_url)
    engine = PathwayEngine(db, Registry.from_paths([DEFINITIONS]))
    _terminate_backend_of(db)
    with pytest.raises(DatabaseError, match=r"^database is busy or unavailable: [^\n]+$"):
        _start_one(engine)
    started = _start_one(engine)
    with db.reading() as connection:
        assert connection.execute(select(instances.c.id)).scalars().all() == [started]
    db.dispose()


def test_steps_in_four_threads_while_the_server_drops_every_connection_lose_nothing(
        pg_url: str) -> None:
    """Each step either commits whole or fails with a one-line error; a rerun completes them.

    Every 50 ms while four threads advance 200 pathways, every server process of this pool is
    terminated (a restart, as the pool sees it): connections in steady use are not pinged,
    so the steps in flight fail, and no step half-writes, none writes twice."""
    import threading

    from pathways_engine.audit.verify import verify
    from pathways_notifications import Composer
    from pathways_notifications import load_parties

    name = f"attack_{os.getpid()}"
    db = Database(f"{pg_url}&application_name={name}")
    engine = PathwayEngine(db, Registry.from_paths([DEFINITIONS]),
                           composer=Composer(load_parties(DEFINITIONS / "parties.yaml")))
    ids = [engine.start("mistrivsel_referral", subject_ref=f"K-{n}",
                        birth_date=dt.date(2014, 1, 1), actor="dr.jensen", role="gp",
                        values={"severity": "moderate", "consent_exchange": True})
           for n in range(200)]
    failed: dict[str, str] = {}  # instance -> the error it answered
    answered: list[str] = []

    def step(chunk: list[str]) -> None:
        for instance in chunk:
            try:
                engine.advance(instance, "triage_to_ppr", actor="ppr.anne", role="ppr")
                answered.append(instance)
            except DatabaseError as exc:
                failed[instance] = str(exc)

    threads = [threading.Thread(target=step, args=(ids[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    admin = create_engine(pg_url)
    with admin.connect() as connection:
        # every 50 ms for as long as the steps run, not six times at fixed moments: on a
        # fast day the 200 steps were over before the first (2026-12-07, 0.46 s a loop)
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.05)
            connection.execute(text("select pg_terminate_backend(pid) from pg_stat_activity "
                                    "where application_name = :n"), {"n": name})
    admin.dispose()
    for thread in threads:
        thread.join()
    assert failed, "the attack never met a step in flight"
    assert all(m.startswith("database is busy or unavailable: ") and "\n" not in m
               for m in failed.values()), failed

    def states() -> dict[str, str]:
        with db.reading() as connection:
            return dict(connection.execute(select(instances.c.id, instances.c.state)).all())

    assert {states()[i] for i in answered} == {"ppr_assessment"}
    for instance in failed:  # a step whose COMMIT lost only its answer is not repeated
        if states()[instance] != "ppr_assessment":
            engine.advance(instance, "triage_to_ppr", actor="ppr.anne", role="ppr")
    assert set(states().values()) == {"ppr_assessment"}
    with db.reading() as connection:
        keys = connection.execute(select(outbox.c.idempotency_key)).scalars().all()
    assert len(keys) == len(set(keys))
    assert verify(db).breaks == []
    db.dispose()
