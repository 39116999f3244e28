"""Trust: every attack of issue 19, on SQLite and PostgreSQL, with real processes where it matters.

Each test names the attack it replays. RELIABILITY.md lists them beside the guarantee each
proves.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pathways_engine import Database
from sqlalchemy import text
from support import ACTORS
from support import DEFINITIONS
from support import ROOT
from support import Cli
from support import copy_pathway
from support import run_killed
from support import tamper
from support import version_of
from support import with_version

START = ["start", "mistrivsel_referral", "--subject", "C-1", "--birth-date", "2014-05-02",
         "--set", "severity=moderate", "--set", "consent_exchange=true",
         "--set", "concern=Skolevægring og angst", "--as", "dr.a", "--role", "gp",
         "--at", "2026-11-02T09:00", "--json"]
REFER = ["refer_bup", "--set", "referral_received=2026-11-03", "--as", "p", "--role", "ppr",
         "--at", "2026-11-03T10:00"]
KEY = "test-audit-key-0123456789abcdef"


def started(run: Cli, *extra: str, subject: str = "C-1") -> str:
    args = [a if a != "C-1" else subject for a in START]
    return str(json.loads(run(*args, *extra).output)["id"])


def sql(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    db = Database(url)
    with db.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        rows = [tuple(r) for r in result] if result.returns_rows else []
    db.dispose()
    return rows


def name_the_child(url: str, subject: str = "C-1") -> None:
    """Personal data arrives from the case system; here it is written directly."""
    sql(url, "update subjects set name = 'Ida Jensen', personal_id = '090414-1234' "
        "where ref = :r", r=subject)


# ------------------------------------------------------------------ 1. who may record what

SHARING = """
sharing:
  psychiatry:
    consent: [gp, ppr, ltt, contact_person]
  municipal_social:
    statutory:
      - reference: "Barnets lov §133 (underretningspligt)"
        roles: [gp, ppr, ltt, bup]
        source: "domain.md §5: underretningspligt overrides confidentiality"
"""


def sharing_pathway(tmp_path: Path) -> Path:
    folder = tmp_path / "mistrivsel_referral"
    copy_pathway(folder)
    path = folder / "pathway.yaml"
    text = path.read_text()
    path.write_text(with_version(text, version_of(text) + 1) + SHARING)
    return folder


def test_statutory_basis_must_be_declared_and_recorded_by_a_role_the_law_names(
        db_url: str, tmp_path: Path) -> None:
    """Attack: `consent ID --sector psychiatry --basis statutory --as dr.jensen`."""
    run = Cli(db_url, sharing_pathway(tmp_path).parent)
    instance = started(run)
    undeclared = run("consent", instance, "--sector", "psychiatry", "--basis", "statutory",
                     "--reference", "x", "--as", "dr.a", code=1)
    assert "declares no statutory basis for sharing with 'psychiatry'" in undeclared.stderr
    wrong_role = run("consent", instance, "--sector", "municipal_social", "--basis",
                     "statutory", "--reference", "Barnets lov §133 (underretningspligt)",
                     "--as", "leader", code=4)
    assert "role 'contact_person' may not record a statutory basis" in wrong_role.stderr
    unknown_ref = run("consent", instance, "--sector", "municipal_social", "--basis",
                      "statutory", "--reference", "Barnets lov §33", "--as", "dr.a", code=1)
    assert "declared: Barnets lov §133 (underretningspligt)" in unknown_ref.stderr
    run("consent", instance, "--sector", "municipal_social", "--basis", "statutory",
        "--reference", "Barnets lov §133 (underretningspligt)", "--as", "dr.a")
    kinds = [h["kind"] for h in json.loads(run("history", instance, "--json").output)]
    assert kinds.count("consent") == 1
    nobody = run("consent", instance, "--sector", "psychiatry", "--basis", "consent",
                 "--reference", "parent", "--as", "b", "--role", "bup", code=4)
    assert "role 'bup' may not record consent for sharing with 'psychiatry'" in nobody.stderr
    shipped = Cli(db_url)  # a definition that declares no statutory basis allows none
    other = started(shipped, subject="C-2")
    refused = shipped("consent", other, "--sector", "psychiatry", "--basis", "statutory",
                      "--reference", "Sundhedsloven §43", "--as", "dr.a", code=1)
    assert "declares no statutory basis" in refused.stderr


def test_assigning_a_party_that_does_not_hold_the_role_is_refused(run: Cli) -> None:
    """Attack: `assign ID bup <a GP practice>`, then personal data goes to the GP as "bup"."""
    instance = started(run)
    refused = run("assign", instance, "bup", "laegehuset_grenaa", "--as", "leader", code=1)
    assert "party 'laegehuset_grenaa' does not serve role 'bup'" in refused.stderr
    assert "parties for 'bup': bup_fonna, bup_rm" in refused.stderr
    history = json.loads(run("history", instance, "--json").output)
    assert "assignment" not in [h["kind"] for h in history]


# ------------------------------------------------------------------ 2. withdrawal recalls

def test_withdrawing_consent_cancels_queued_personal_data(run: Cli, db_url: str) -> None:
    """Attack: withdraw consent; the personal number still went out with a queued message."""
    instance = started(run)
    name_the_child(db_url)
    run("consent", instance, "--sector", "psychiatry", "--basis", "consent", "--reference",
        "parent, 2026-11-03", "--as", "caseworker")
    run("advance", instance, *REFER)
    queued = sql(db_url, "select id, personal_data, status from outbox where role = 'bup'")
    assert [(p, s) for _, p, s in queued] == [(True, "pending")]
    run("consent", instance, "--sector", "psychiatry", "--basis", "consent", "--reference",
        "parent, 2026-11-03", "--withdraw", "--as", "caseworker")
    rows = sql(db_url, "select status, personal_data, body_text from outbox where role = 'bup' "
               "order by id")
    assert [(s, p) for s, p, _ in rows] == [("cancelled", True), ("pending", False)]
    assert "090414-1234" not in rows[1][2]
    assert "Ida" not in rows[1][2]
    history = json.loads(run("history", instance, "--json").output)
    cancelled = [h for h in history if h["kind"] == "notification_cancelled"]
    assert cancelled
    assert cancelled[0]["changes"]["reason"] == "consent withdrawn for psychiatry"


# ------------------------------------------------------------------ 3. scoping by area

def test_an_actor_of_one_municipality_cannot_act_on_anothers_child(run: Cli) -> None:
    """Attack: an actor of Syddjurs advanced a child of Norddjurs."""
    instance = started(run, "--area", "norddjurs")
    before = run("show", instance, "--json").output
    refused = run("advance", instance, "triage_to_ppr", "--as", "ppr.syd", "--role", "ppr",
                  code=4)
    assert "works for syddjurs; instance" in refused.stderr
    assert "belongs to norddjurs" in refused.stderr
    assert run("show", instance, "--json").output == before
    run("advance", instance, "triage_to_ppr", "--as", "ppr.nord", "--role", "ppr")
    start_elsewhere = run(*START[:-1], "--subject", "C-2", "--area", "norddjurs", "--as",
                          "ppr.syd", "--role", "ppr", code=4)
    assert "syddjurs" in start_elsewhere.stderr


def test_reads_show_personal_data_only_to_an_actor_with_a_basis(run: Cli, db_url: str) -> None:
    """Attack: `show`, `history` and `render --instance` printed personal data with no --as."""
    instance = started(run, "--area", "norddjurs")
    name_the_child(db_url)
    anonymous = run("show", instance, "--json").output
    assert "Skolevægring" not in anonymous
    assert "Skolevægring" not in run("history", instance, "--json").output
    assert json.loads(anonymous)["data"]["concern"] == "(personal: give --as and --role)"
    preview = run("render", "mistrivsel_referral", "step_assigned", "--instance", instance,
                  "--role", "bup").output
    assert "Ida" not in preview
    assert "090414" not in preview
    without_basis = run("show", instance, "--json", "--as", "b", "--role", "bup").output
    assert "Skolevægring" not in without_basis
    run("consent", instance, "--sector", "psychiatry", "--basis", "consent", "--reference",
        "parent", "--as", "caseworker")
    with_basis = json.loads(run("show", instance, "--json", "--as", "b", "--role", "bup").output)
    assert with_basis["data"]["concern"] == "Skolevægring og angst"
    other_area = run("show", instance, "--as", "ppr.syd", "--role", "ppr", code=4)
    assert "belongs to norddjurs" in other_area.stderr


# ------------------------------------------------------------------ 4. templates stay inside

def test_a_template_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    """Attack: a template symlinked to a file outside the definitions folder."""
    from click.testing import CliRunner

    from pathways.cli import cli

    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    folder = tmp_path / "defs" / "mistrivsel_referral"
    copy_pathway(folder)
    link = folder / "templates" / "step_assigned" / "da.txt.j2"
    link.unlink()
    link.symlink_to(secret)
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 1
    assert f"{link}:1: templates must be regular files inside templates/, not a " \
           "symbolic link" in result.stdout
    (folder / "templates" / "escape").symlink_to(tmp_path, target_is_directory=True)
    link.unlink()
    shutil.copy(DEFINITIONS / "mistrivsel_referral" / "templates" / "step_assigned" / "da.txt.j2",
                link)
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 1
    assert "escape:1: templates must be regular files inside templates/" in result.stdout


# ------------------------------------------------------------------ 5. false legal records

def timeout_pathway(tmp_path: Path) -> Path:
    """mistrivsel_referral whose municipal triage times out into a PPR assessment."""
    folder = tmp_path / "mistrivsel_referral"
    copy_pathway(folder)
    path = folder / "pathway.yaml"
    source = path.read_text()
    source = source.replace("        escalate: {after: \"3 working days\", to: [contact_person]}\n",
                            "        escalate: {after: \"3 working days\", to: [contact_person]}\n"
                            "        on_timeout: triage_overdue\n", 1)
    source = source.replace("transitions:\n", "transitions:\n  - event: triage_overdue\n"
                            "    from: referred\n    to: ppr_assessment\n", 1)
    path.write_text(source)
    return folder


def test_a_deadline_that_timed_out_is_recorded_as_timed_out(db_url: str, tmp_path: Path) -> None:
    """Attack: `tick` past an on_timeout deadline; `show` said met and `report` 100 % met."""
    run = Cli(db_url, timeout_pathway(tmp_path).parent)
    instance = started(run)
    run("tick", "--force", "--now", "2026-11-17T12:00")
    shown = json.loads(run("show", instance, "--json").output)
    assert shown["state"] == "ppr_assessment"
    [triage] = [d for d in shown["deadlines"] if d["name"] == "municipal_triage"]
    assert triage["status"] == "timed_out"
    report = json.loads(run("report", "--from", "2026-11-01", "--to", "2026-11-30",
                            "--format", "json").output)
    [row] = [r for r in report if r["step"] == "referred"]
    assert row["deadlines_met_share"] == 0.0


# ------------------------------------------------------------------ 6-8. the audit trail

@pytest.mark.slow
def test_audit_verify_streams_more_than_2000_entries(engine: object, db_url: str) -> None:
    """Attack: `audit verify` on a database with 2,001 audit entries crashed."""
    from pathways_engine import PathwayEngine

    assert isinstance(engine, PathwayEngine)
    for n in range(2_001):
        engine.start("mistrivsel_referral", subject_ref=f"V-{n}", birth_date=dt.date(2014, 1, 1),
                     actor="gp1", role="gp",
                     values={"severity": "moderate", "consent_exchange": True})
    out = Cli(db_url)("audit", "verify", "--json").output
    data = json.loads(out)
    assert data["instances"] == 2_001
    assert data["entries"] >= 2_001
    assert data["breaks"] == []


ADVANCER = """
import datetime as dt, sys
from pathlib import Path
from pathways_engine import Database, PathwayEngine, Registry
url, defs, ids = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
engine = PathwayEngine(Database(url), Registry.from_paths([Path(defs)]))
for round_ in range(6):
    for i in ids:
        event = ("refer_bup", "bup_declines")[round_ % 2]
        role = ("ppr", "bup")[round_ % 2]
        values = {"referral_received": "2026-11-03"} if round_ % 2 == 0 else {}
        engine.advance(i, event, actor="p", role=role, values=values)
print("done")
"""


@pytest.mark.slow
def test_audit_verify_reads_one_snapshot_while_steps_commit(engine: object, db_url: str) -> None:
    """Attack: on PostgreSQL, verify said BROKEN in 7 of 30 runs while advances happened."""
    from pathways_engine import PathwayEngine


    assert isinstance(engine, PathwayEngine)
    ids = [engine.start("mistrivsel_referral", subject_ref=f"S-{n}", birth_date=dt.date(2014, 1, 1),
                        actor="gp1", role="gp",
                        values={"severity": "moderate", "consent_exchange": True})
           for n in range(40)]
    proc = subprocess.Popen([sys.executable, "-c", ADVANCER, db_url, str(DEFINITIONS),
                             ",".join(ids)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    run = Cli(db_url)
    verdicts = []
    while proc.poll() is None or len(verdicts) < 5:
        verdicts.append(run("audit", "verify", "--json", code=None))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert [v.exit_code for v in verdicts] == [0] * len(verdicts), verdicts[0].stderr


def instance_with_history(run: Cli) -> str:
    instance = started(run)
    run("consent", instance, "--sector", "psychiatry", "--basis", "consent", "--reference",
        "parent", "--as", "caseworker")
    run("advance", instance, *REFER)
    return instance


@pytest.mark.parametrize(("edit", "reason"), [
    ("update instances set state = 'closed'", "state 'closed', its audit trail says 'bup_referred'"),
    ("update instances set data = '{\"severity\": \"mild\"}'", "data differs from its audit trail"),
    ("update deadlines set status = 'met' where name = 'assessment_right'",
     "deadline 'assessment_right' is met, its audit trail says pending"),
    ("update consents set sector = 'primary_care'", "consents differ from its audit trail"),
    ("insert into consents (instance_id, sector, basis, reference, given_by, at) "
     "select id, 'municipal_social', 'consent', 'forged', 'x', started_at from instances",
     "consents differ from its audit trail"),
    ("update outbox set address = 'attacker@example.com' where role = 'bup'",
     "outbox message"),
])
def test_audit_verify_detects_direct_edits_of_the_state_tables(run: Cli, db_url: str, edit: str,
                                                               reason: str) -> None:
    """Attack: edit instances, deadlines, consents or outbox, which sat outside the chain."""
    instance = instance_with_history(run)
    assert run("audit", "verify").exit_code == 0
    tamper(db_url, edit)
    result = run("audit", "verify", code=1)
    assert f"instance {instance}" in result.stderr
    assert reason in result.stderr


def last_entry(url: str, instance: str) -> tuple[int, str]:
    [(seq, prev)] = sql(url, "select seq, prev_hash from audit where instance_id = :i "
                        "order by seq desc limit 1", i=instance)
    return int(seq), str(prev)  # type: ignore[call-overload]


def test_a_checkpoint_outside_the_database_reveals_truncation_rollback_and_deletion(
        run: Cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: cut the trail's tail and move the head back; delete a whole instance."""
    monkeypatch.setenv("PATHWAYS_AUDIT_KEY", KEY)
    instance = instance_with_history(run)
    other = started(run, subject="C-2")
    checkpoint = tmp_path / "checkpoint.json"
    run("audit", "checkpoint", "--output", str(checkpoint))
    assert run("audit", "verify", "--against", str(checkpoint)).exit_code == 0
    seq, prev = last_entry(db_url, instance)
    tamper(db_url, f"delete from audit where instance_id = '{instance}' and seq = {seq}",
           f"update instances set audit_seq = {seq - 1}, audit_head = '{prev}' "
           f"where id = '{instance}'",
           f"delete from audit where instance_id = '{other}'",
           f"delete from outbox where instance_id = '{other}'",
           f"delete from deadlines where instance_id = '{other}'",
           f"delete from instances where id = '{other}'")
    result = run("audit", "verify", "--against", str(checkpoint), code=1)
    assert f"instance {instance}: the trail is shorter than the checkpoint ({seq - 1} < {seq})" \
        in result.stderr
    assert f"instance {other}: in the checkpoint but missing from the database" in result.stderr
    forged = checkpoint.read_text().replace(instance, instance[::-1])
    checkpoint.write_text(forged)
    assert "checkpoint" in run("audit", "verify", "--against", str(checkpoint), code=1).stderr


def test_a_keyed_trail_reveals_forged_appends_and_consistent_rewrites(
        run: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: append a forged entry (hash recomputed, head moved); rewrite from entry 2 on."""
    import hashlib

    monkeypatch.setenv("PATHWAYS_AUDIT_KEY", KEY)
    instance = instance_with_history(run)
    seq, _ = last_entry(db_url, instance)
    [(head,)] = sql(db_url, "select audit_head from instances where id = :i", i=instance)
    forged_hash = hashlib.sha256(b"forged").hexdigest()
    tamper(db_url,
           "insert into audit (instance_id, seq, at, recorded_at, actor, role, kind, changes, "
           f"prev_hash, hash) select id, {seq + 1}, updated_at, updated_at, 'mallory', 'ppr', "
           f"'transition', '{{}}', '{head}', '{forged_hash}' from instances where id = '{instance}'",
           f"update instances set audit_seq = {seq + 1}, audit_head = '{forged_hash}' "
           f"where id = '{instance}'")
    result = run("audit", "verify", code=1)
    assert f"instance {instance}: audit entry {seq + 1}:" in result.stderr
    monkeypatch.delenv("PATHWAYS_AUDIT_KEY")
    unkeyed = run("audit", "verify", code=1)
    assert "PATHWAYS_AUDIT_KEY" in unkeyed.stderr  # keyed entries cannot be checked without it


# ------------------------------------------------------------------ 9-10. sweeps

def many_children(run: Cli, count: int) -> list[str]:
    ids = []
    for n in range(count):
        instance = started(run, subject=f"T-{n}")
        run("advance", instance, *REFER)
        ids.append(instance)
    return ids


@pytest.mark.slow
def test_concurrent_sweeps_and_steps_never_deadlock_and_fire_in_due_order(db_url: str) -> None:
    """Attack: scheduler + manual ticks + cancels on PostgreSQL: "deadlock detected"."""
    run = Cli(db_url)
    ids = many_children(run, 30)
    base = [sys.executable, "-m", "pathways", "--db", db_url, "--definitions", str(DEFINITIONS),
            "--actors", str(ACTORS)]
    ticks = [subprocess.Popen([*base, "tick", "--force", "--now", "2026-12-31T12:00", "--batch-size", "4"],
                              cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    cancels = [subprocess.run([*base, "advance", i, "bup_accepts", "--as", "b", "--role", "bup"],
                              cwd=ROOT, text=True, capture_output=True, timeout=120)
               for i in ids[::3]]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in ticks]  # type: ignore[union-attr]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    assert all(c.returncode in (0, 1) for c in cancels), [c.stderr for c in cancels]
    assert not any("deadlock" in c.stderr for c in cancels)
    rows = sql(db_url, "select instance_id, seq, at from audit "
               "where kind like 'timer_%' order by instance_id, seq")
    by_instance: dict[str, list[str]] = {}
    for instance, _, at in rows:
        by_instance.setdefault(str(instance), []).append(str(at))
    assert by_instance
    for instance, times in by_instance.items():
        assert times == sorted(times), (instance, times)
    run("tick", "--force", "--now", "2026-12-31T12:00")
    assert json.loads(run("tick", "--force", "--now", "2026-12-31T12:00", "--json").output)["fired"] == 0


def cascading_pathway(tmp_path: Path) -> Path:
    """A timeout that enters a state whose deadline counts from a date already past."""
    folder = timeout_pathway(tmp_path)
    path = folder / "pathway.yaml"
    source = path.read_text()
    source = source.replace("  ppr_assessment:\n    responsible: ppr\n",
                            "  ppr_assessment:\n    responsible: ppr\n    deadlines:\n"
                            "      - name: ppr_answer\n        duration: 2 working days\n"
                            "        from: pathway_started\n        status: local_agreement\n"
                            "        source: test\n", 1)
    path.write_text(source)
    return folder


def test_a_timeout_cascade_fires_in_the_same_sweep(db_url: str, tmp_path: Path) -> None:
    """Attack: `tick` twice fired 80, then 40: the cascade waited for the next sweep."""
    run = Cli(db_url, cascading_pathway(tmp_path).parent)
    for n in range(3):
        started(run, subject=f"K-{n}")
    first = json.loads(run("tick", "--force", "--now", "2026-11-30T12:00", "--json").output)
    assert first["timeout"] == 3
    assert first["due"] >= 3  # ppr_answer, already due when its state was entered
    second = json.loads(run("tick", "--force", "--now", "2026-11-30T12:00", "--json").output)
    assert second["fired"] == 0


# ------------------------------------------------------------------ 11. idempotency

def test_start_and_advance_with_an_idempotency_key_act_once(run: Cli) -> None:
    """Attack: the same start twice made two pathways; a retried advance would act twice."""
    first = started(run, "--idempotency-key", "referral-4711")
    again = started(run, "--idempotency-key", "referral-4711")
    assert again == first
    assert len(json.loads(run("list", "--json").output)) == 1
    step = json.loads(run("advance", first, *REFER, "--idempotency-key", "step-1", "--json").output)
    retried = json.loads(run("advance", first, *REFER, "--idempotency-key", "step-1",
                             "--json").output)
    assert retried == step
    assert json.loads(run("show", first, "--json").output)["revision"] == step["revision"]
    other = run("advance", first, "bup_accepts", "--as", "b", "--role", "bup",
                "--idempotency-key", "step-1", code=1)
    assert "idempotency key 'step-1' was used for a different request" in other.stderr


def test_assign_consent_and_correct_with_an_idempotency_key_act_once_from_the_cli(
        run: Cli) -> None:
    """The API's assign, consent and correct took a key (docs/http.md); the CLI's did not, so
    a script retrying after a timeout recorded a consent twice."""
    instance = started(run)
    consent = ["consent", instance, "--sector", "psychiatry", "--basis", "consent",
               "--reference", "parent, 2026-11-03", "--as", "caseworker"]
    run(*consent, "--idempotency-key", "c-1")
    run(*consent, "--idempotency-key", "c-1")
    assign = ["assign", instance, "bup", "bup_rm", "--as", "leader"]
    run(*assign, "--idempotency-key", "a-1")
    run(*assign, "--idempotency-key", "a-1")
    kinds = [h["kind"] for h in json.loads(run("history", instance, "--json").output)]
    assert kinds.count("consent") == 1, kinds
    assert kinds.count("assignment") == 1, kinds
    other = run(*consent, "--withdraw", "--idempotency-key", "c-1", code=1)
    assert "idempotency key 'c-1' was used for a different request" in other.stderr
    run(*consent, "--withdraw", "--idempotency-key", "c-2")  # a new key acts
    correct = ["correct", instance, "--set", "severity=severe", "--reason", "typed wrong",
               "--as", "leader", "--role", "contact_person", "--json"]
    first = json.loads(run(*correct, "--idempotency-key", "k-1").output)
    assert json.loads(run(*correct, "--idempotency-key", "k-1").output) == first
    kinds = [h["kind"] for h in json.loads(run("history", instance, "--json").output)]
    assert kinds.count("consent_withdrawn") == 1, kinds
    assert kinds.count("correction") == 1, kinds


def _at_once(url: str, tmp_path: Path, point: str, *commands: list[str]) -> list[tuple[int, str]]:
    """Run the CLI commands in real processes; the first to reach `point` (just before its
    commit) holds there while the others catch up with it (on PostgreSQL they wait on its
    idempotency key, on SQLite for its write lock), then it goes on. (exit code, output)."""
    import time

    go = tmp_path / "go"
    env = {**os.environ, "PATHWAYS_FAILPOINTS": f"{point}=wait:{go}"}
    base = [sys.executable, "-m", "pathways", "--db", url, "--definitions", str(DEFINITIONS),
            "--actors", str(ACTORS)]
    procs = [subprocess.Popen([*base, *args], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for args in commands]
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("go.*.waiting")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)  # the others reach the first one's key (or lock) and wait on it
    go.touch()
    return [(p.wait(timeout=60), p.stdout.read()) for p in procs]  # type: ignore[union-attr]


def test_one_idempotency_key_sent_at_once_for_two_children_acts_for_one(
        run: Cli, db_url: str, tmp_path: Path) -> None:
    """Attack: the same key on two instances at the same moment. PostgreSQL let both check the
    key before either had committed it, and the second failed on the key's unique index with
    a traceback; it must be refused like any key reused for another request."""
    one, two = started(run), started(run, subject="C-2")
    answers = _at_once(db_url, tmp_path, "advance.before_commit",
                       *(["advance", instance, *REFER, "--idempotency-key", "shared", "--json"]
                         for instance in (one, two)))
    assert sorted(code for code, _ in answers) == [0, 1], answers
    refused = next(output for code, output in answers if code == 1)
    assert "idempotency key 'shared' was used for a different request" in refused
    assert "Traceback" not in refused
    revisions = [json.loads(run("show", i, "--json").output)["revision"] for i in (one, two)]
    assert sorted(revisions) == [1, 2], revisions  # one of them took the step


def test_one_start_sent_twice_at_once_with_its_key_starts_one_pathway(
        run: Cli, db_url: str, tmp_path: Path) -> None:
    """The same start with the same key, twice at the same moment: both get the one id."""
    answers = _at_once(db_url, tmp_path, "start.before_commit",
                       [*START, "--idempotency-key", "referral-9"],
                       [*START, "--idempotency-key", "referral-9"])
    assert [code for code, _ in answers] == [0, 0], answers
    ids = {json.loads(output)["id"] for _, output in answers}
    assert len(ids) == 1
    assert len(json.loads(run("list", "--json").output)) == 1


def test_a_new_child_already_stored_under_its_other_unique_key_is_no_traceback(
        db_url: str) -> None:
    """The race behind a traceback seen once in CI: two starts for one new child at the same
    instant. A subject is unique by `ref` and by `ref_key`; PostgreSQL's ON CONFLICT with a
    target checks only that index before inserting, so the later start could pass it and
    fail on the other. Provoked here deterministically: the row already there collides on
    `ref` only."""
    from pathways_engine.store.tables import subjects
    from pathways_engine.store.writes import insert_missing
    from sqlalchemy import func
    from sqlalchemy import insert
    from sqlalchemy import select

    db = Database(db_url)
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    with db.writing() as connection:
        connection.execute(insert(subjects).values(ref="C-9", ref_key="c-9-other",
                                                   created_at=now))
    with db.writing() as connection:
        insert_missing(connection, subjects, {"ref": "C-9", "ref_key": "c-9",
                                              "birth_date": None, "created_at": now})
    with db.reading() as connection:
        assert connection.execute(select(func.count()).select_from(subjects)).scalar() == 1
    db.dispose()


def test_a_second_running_pathway_for_the_same_child_is_refused(run: Cli) -> None:
    first = started(run)
    refused = run(*START[:-1], code=1)
    assert f"already has a running 'mistrivsel_referral' ({first})" in refused.stderr
    second = json.loads(run(*START, "--allow-duplicate").output)["id"]
    assert second != first


@pytest.mark.slow
def test_start_rerun_after_a_kill_past_commit_does_not_duplicate(run: Cli, db_url: str) -> None:
    killed = run_killed(db_url, "start.after_commit=kill", *START, "--idempotency-key", "k-1")
    assert killed.returncode == -signal.SIGKILL
    started(run, "--idempotency-key", "k-1")
    assert len(json.loads(run("list", "--json").output)) == 1


# ------------------------------------------------------------------ 13. delivery outlasts outages

def test_delivery_outlasts_a_long_outage_and_kills_are_not_failures(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: SMTP down for 45 minutes: every message dead-lettered after ~31 minutes."""
    from aiosmtpd.controller import Controller
    from test_notifications import Inbox
    from test_notifications import free_port

    parties = tmp_path / "parties.yaml"
    parties.write_text("parties:\n  - {id: ppr_x, roles: [ppr], name: PPR, email: p@x.example}\n")
    run = Cli(db_url)
    for n in range(3):
        run("--parties", str(parties), *START[:2], "--subject", f"D-{n}", *START[4:-3])
    port = free_port()
    monkeypatch.setenv("PATHWAYS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PATHWAYS_SMTP_PORT", str(port))
    first = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    killed = run_killed(db_url, "deliver.after_claim=kill", "deliver", "--now",
                        first.isoformat())
    assert killed.returncode == -signal.SIGKILL
    assert {r[0] for r in sql(db_url, "select attempts from outbox")} == {0}
    moment = first + dt.timedelta(minutes=6)  # after the killed claim's lease
    for _ in range(45):
        run("deliver", "--now", moment.isoformat())
        moment += dt.timedelta(minutes=1)
    assert {r[0] for r in sql(db_url, "select status from outbox")} == {"pending"}
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for _ in range(75):
            run("deliver", "--now", moment.isoformat())
            moment += dt.timedelta(minutes=1)
    finally:
        controller.stop()
    assert len(set(inbox.ids())) == 3
    assert {r[0] for r in sql(db_url, "select status from outbox")} == {"sent"}


def test_dead_letters_are_retried_by_an_operator_with_an_audit_entry(
        db_url: str, tmp_path: Path) -> None:
    parties = tmp_path / "parties.yaml"
    parties.write_text("parties:\n  - {id: ppr_x, roles: [ppr], name: PPR, email: p@x.example}\n")
    run = Cli(db_url)
    instance = json.loads(run("--parties", str(parties), *START).output)["id"]
    sql(db_url, "update outbox set status = 'failed', attempts = 9")
    assert "--as" in run("outbox", "retry", "--all", "--failed", code=2).output
    out = run("outbox", "retry", "--all", "--failed", "--as", "leader").output
    assert "1 message" in out
    assert {r[0] for r in sql(db_url, "select status from outbox")} == {"pending"}
    history = json.loads(run("history", instance, "--json").output)
    [entry] = [h for h in history if h["kind"] == "notification_retried"]
    assert entry["actor"] == "leader"


# ------------------------------------------------------------------ 14. bounded templates

@pytest.mark.parametrize("body", [
    "{{ 9**(9**9) }}", "{{ 10**5000 }}", "{{ 'x'*2000000000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    "{% include 'step_assigned/da.txt.j2' %}", "{{ 'x'|center(2000000000) }}",
    "{{ 'x'.ljust(2000000000) }}",
    # blocks that each call the next twice: 2**29 calls, never deeper than 30
    "".join(f"{{% block b{i} %}}{{{{ self.b{i + 1}() ~ self.b{i + 1}() }}}}{{% endblock %}}"
            for i in range(29)) + "{% block b29 %}{% endblock %}",
    # many values each small enough: 99,999 strings of 99,999 characters, in one line
    "{{ range(99999)|map('string')|map('center', 99999)|list|length }}",
    "{{ lipsum(99999, false, 99, 100) }}",  # six seconds in one line, then too long
])
def test_hostile_templates_are_refused_in_bounded_time(tmp_path: Path, body: str) -> None:
    from click.testing import CliRunner

    from pathways.cli import cli

    folder = tmp_path / "mistrivsel_referral"
    copy_pathway(folder)
    (folder / "templates" / "step_assigned" / "da.txt.j2").write_text(body + "\n")
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert "step_assigned/da.txt.j2:1:" in result.stdout


def test_only_a_template_that_can_repeat_itself_renders_under_the_line_budgets_trace() -> None:
    """The line and time budget is a trace function, which costs every function call while
    it is set; a template that runs each line once cannot exceed it and renders without it.
    Every shipped template is such a one."""
    from pathways_engine import Registry
    from pathways_notifications.rendering import _Meter
    from pathways_notifications.rendering import environment_for
    from pathways_notifications.rendering import render

    class Probe:
        seen: list[object] = []

        def __str__(self) -> str:
            self.seen.append(sys.gettrace())
            return "p"

    import dataclasses

    shipped = Registry.from_paths([DEFINITIONS]).all()
    definition = shipped[0]
    templates = {**definition.templates,
                 "straight/en.subject.j2": "{{ probe }}", "straight/en.txt.j2": "{{ probe }}",
                 "looping/en.subject.j2": "s",
                 "looping/en.txt.j2": "{% for i in range(2) %}{{ probe }}{% endfor %}"}
    trial = dataclasses.replace(definition, templates=templates,
                                content_hash="trial-" + definition.content_hash)
    assert render(trial, "straight", "en", {"probe": Probe()}).text == "p\n"
    # not the budget's meter (a coverage tool or debugger may have a trace of its own)
    assert [isinstance(trace, _Meter) for trace in Probe.seen] == [False, False]
    Probe.seen.clear()
    assert render(trial, "looping", "en", {"probe": Probe()}).text == "pp\n"
    assert [isinstance(trace, _Meter) for trace in Probe.seen] == [True, True]
    for pathway in shipped:
        env = environment_for(pathway)
        assert all(env.runs_straight(path) for path in pathway.templates), pathway.path


@pytest.mark.parametrize(("body", "reason"), [
    ("{{ range(20)|map('string')|map('center', 99999)|list|length }}",
     "values of more than 1000000 characters in all"),
    ("{{ lipsum(99999, false, 99, 100) }}", "lipsum of up to 9999900 words"),
])
def test_a_template_is_refused_before_it_makes_more_than_its_budget(body: str,
                                                                    reason: str) -> None:
    """Each value within the size limit is not enough: a `map` makes many of them, and
    `lipsum` makes its text before anything can measure it."""
    import dataclasses

    from pathways_engine import Registry
    from pathways_engine.errors import NotificationError
    from pathways_notifications.rendering import render

    definition = Registry.from_paths([DEFINITIONS]).all()[0]
    trial = dataclasses.replace(
        definition, content_hash=f"trial-{reason}",
        templates={**definition.templates, "big/en.subject.j2": "s", "big/en.txt.j2": body})
    with pytest.raises(NotificationError, match=reason):
        render(trial, "big", "en", {})
    assert render(dataclasses.replace(trial, content_hash="trial-small", templates={
        **trial.templates, "big/en.txt.j2": "{{ lipsum(2)|length > 0 }} "
                                            "{{ range(3)|map('string')|join('-') }}"}),
        "big", "en", {}).text == "True 0-1-2\n"


def test_a_caseworkers_value_cannot_make_a_template_hold_the_lock(db_url: str,
                                                                  tmp_path: Path) -> None:
    """Attack: a template looping over an int field; `--set n=100000` held SQLite's lock 60 s."""
    folder = tmp_path / "mistrivsel_referral"
    copy_pathway(folder)
    path = folder / "pathway.yaml"
    path.write_text(path.read_text().replace(
        "  outcome:\n", "  visits:\n    type: int\n  outcome:\n", 1).replace(
        "    requires: [referral_received]\n", "    requires: [referral_received]\n"
        "    accepts: [visits]\n", 1))
    template = folder / "templates" / "step_assigned" / "da.txt.j2"
    template.write_text("{% for i in range(data.visits|default(1)) %}"
                        "{% for j in range(data.visits|default(1)) %}{% endfor %}{% endfor %}\n"
                        + template.read_text())
    from click.testing import CliRunner

    from pathways.cli import cli

    checked = CliRunner().invoke(cli, ["check", str(folder)])
    assert checked.exit_code == 0, checked.output  # the sample context has visits = 1
    run = Cli(db_url, folder.parent)
    instance = started(run)
    result = run("advance", instance, *REFER, "--set", "visits=100000", code=1)
    assert "template step_assigned" in result.stderr
    assert "budget" in result.stderr
    assert json.loads(run("show", instance, "--json").output)["state"] == "referred"


# ------------------------------------------------------------------ 15. one subject, one reference

@pytest.mark.parametrize("ref", ["С-001", "C-0\u0301"],  # Cyrillic Es; a combining accent
                         ids=["cyrillic", "combining"])
def test_look_alike_subject_references_are_refused(run: Cli, ref: str) -> None:
    result = run(*START[:2], "--subject", ref, *START[4:], code=1)
    assert "subject reference" in result.stderr
    assert "Latin letters" in result.stderr


def test_subject_references_are_one_child_whatever_the_case_and_normal_form(run: Cli) -> None:
    first = started(run, subject="Ø-001")
    refused = run(*START[:2], "--subject", "ø-001", *START[4:], code=1)  # the same child
    assert first in refused.stderr
    decomposed = run(*START[:2], "--subject", "O\u0338-001", *START[4:], code=1)
    assert "Latin letters" in decomposed.stderr


def test_errors_never_echo_a_long_value(run: Cli) -> None:
    instance = started(run)
    result = run("advance", instance, "close", "--as", "p", "--role", "ppr", "--set",
                 "outcome=" + "x" * 120_000, code=1)
    assert len(result.stderr) < 400


# ------------------------------------------------------------------ 16. the actors file

def test_a_deployment_can_lock_its_actors_file(db_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: `--actors mine.yaml` let the caller name its own roles."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("actors:\n  - {id: mallory, name: M, roles: [gp, ppr, bup]}\n")
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(textwrap.dedent(f"""\
        actors: {ACTORS}
        lock_actors: true
        """))
    monkeypatch.setenv("PATHWAYS_DEPLOYMENT", str(deployment))
    from click.testing import CliRunner

    from pathways.cli import cli

    result = CliRunner().invoke(cli, ["--db", db_url, "--actors", str(mine), *START[:-5],
                                      "--as", "mallory", "--role", "gp"])
    assert result.exit_code == 4
    assert "locks the actors file" in result.stderr
    monkeypatch.setenv("PATHWAYS_ACTORS", str(mine))
    result = CliRunner().invoke(cli, ["--db", db_url, *START[:-5], "--as", "mallory",
                                      "--role", "gp"])
    assert result.exit_code == 4
    monkeypatch.delenv("PATHWAYS_ACTORS")
    result = CliRunner().invoke(cli, ["--db", db_url, *START[:-5], "--as", "dr.a",
                                      "--role", "gp"])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ random faults

def test_random_kills_across_start_advance_tick_and_deliver(db_url: str) -> None:
    """Kills at random fail points; after each, a rerun completes and every invariant holds."""
    import random

    seed = int(os.environ.get("PATHWAYS_FAULT_SEED", str(random.randrange(1_000_000))))
    rounds = int(os.environ.get("PATHWAYS_FAULT_ROUNDS", "6"))
    rng = random.Random(seed)
    run = Cli(db_url)
    ids = many_children(run, 3)
    points = ["advance.after_read", "advance.before_commit", "advance.after_commit",
              "start.before_commit", "start.after_commit", "tick.fired", "deliver.after_claim",
              "deliver.after_send"]
    for number in range(rounds):
        point = rng.choice(points)
        if point.startswith("start"):
            args = [*START[:2], "--subject", f"R-{seed}-{number}", *START[4:],
                    "--idempotency-key", f"r-{seed}-{number}"]
        elif point.startswith("advance"):
            args = ["advance", rng.choice(ids), "bup_declines", "--as", "b", "--role", "bup"]
        elif point.startswith("tick"):
            args = ["tick", "--force", "--now", "2026-12-31T12:00", "--batch-size", "2"]
        else:
            args = ["deliver", "--now", "2026-12-31T12:00"]
        run_killed(db_url, f"{point}=kill@{rng.randint(1, 2)}", *args)
        run(*args, code=None)  # the rerun completes what the kill interrupted
        assert run("audit", "verify", code=None).exit_code == 0, (seed, number, point)
    run("tick", "--force", "--now", "2026-12-31T12:00")
    assert json.loads(run("tick", "--force", "--now", "2026-12-31T12:00", "--json").output)["fired"] == 0
    keys = sql(db_url, "select idempotency_key, count(*) from outbox group by idempotency_key "
               "having count(*) > 1")
    assert keys == [], seed
