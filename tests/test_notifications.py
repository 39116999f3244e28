"""Notifications: rendered in the step's transaction, delivered over real SMTP at least once."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import textwrap
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from pathways_engine import Database
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.errors import DefinitionError
from pathways_engine.store.tables import outbox as outbox_table
from pathways_notifications import Composer
from pathways_notifications import deliver
from pathways_notifications import load_parties
from pathways_notifications.channels import FileDropChannel
from pathways_notifications.channels import SmtpChannel
from sqlalchemy import select
from sqlalchemy import text
from support import DEFINITIONS
from support import Cli
from support import run_killed

from pathways.cli import cli

NOW = dt.datetime(2026, 11, 10, 8, 0, tzinfo=dt.UTC)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 OK"

    def ids(self) -> list[str]:
        return [str(message_from_bytes(m)["Message-ID"]) for m in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def parties(tmp_path: Path) -> Path:
    path = tmp_path / "parties.yaml"
    path.write_text(textwrap.dedent("""\
        areas: [norddjurs, syddjurs, favrskov]
        parties:
          - {id: ppr_x, roles: [ppr], name: PPR X, email: ppr@x.example, channel: email, language: da}
          - {id: bup_x, roles: [bup], name: BUP X, email: bup@x.example, channel: email, language: en}
          - {id: kp_x, roles: [contact_person], name: KP X, email: kp@x.example, channel: email}
          - {id: kp_hanne, roles: [contact_person], name: Hanne, email: hanne@x.example, channel: email}
          - {id: gp_x, roles: [gp], name: GP X, email: gp@x.example, channel: email}
          - {id: ppr_syddjurs, roles: [ppr], name: PPR Syddjurs, email: ppr@syd.example,
             areas: [syddjurs, favrskov]}
        """))
    return path


@pytest.fixture
def notifying(database: Database, registry: Registry, parties: Path) -> PathwayEngine:
    return PathwayEngine(database, registry, clock=FixedClock(NOW),
                         composer=Composer(load_parties(parties)))


def start_child(engine: PathwayEngine) -> str:
    return engine.start("mistrivsel_referral", subject_ref="C-1", birth_date=dt.date(2014, 1, 1),
                        values={"severity": "moderate", "consent_exchange": True,
                                "concern": "Skolevægring og angst"},
                        actor="gp1", role="gp", at=NOW - dt.timedelta(days=7))


def outbox(db: Database) -> list[Any]:
    with db.reading() as c:
        return list(c.execute(select(outbox_table).order_by(outbox_table.c.id)))


def name_subject(db: Database, name: str, personal_id: str | None = None) -> None:
    """Personal data arrives from the case system; here it is written directly."""
    with db.engine.begin() as c:
        c.execute(text("update subjects set name = :n, personal_id = :p"),
                  {"n": name, "p": personal_id})


def test_message_is_written_with_the_step_in_the_recipients_language(
        notifying: PathwayEngine) -> None:
    instance = start_child(notifying)
    [message] = outbox(notifying.db)
    assert (message.role, message.party, message.address) == ("ppr", "ppr_x", "ppr@x.example")
    assert message.language == "da"
    assert message.status == "pending"
    assert "ny opgave" in message.subject
    notifying.advance(instance, "refer_bup", actor="p", role="ppr",
                      values={"referral_received": "2026-11-09"})
    bup = [m for m in outbox(notifying.db) if m.role == "bup"][0]
    assert bup.language == "en"
    assert "new task" in bup.subject


def test_personal_data_only_with_consent_or_legal_basis(notifying: PathwayEngine,
                                                        parties: Path, db_url: str) -> None:
    instance = start_child(notifying)
    name_subject(notifying.db, "Ida Jensen", "090414-1234")
    notifying.advance(instance, "refer_bup", actor="p", role="ppr",
                      values={"referral_received": "2026-11-09"})
    first = [m for m in outbox(notifying.db) if m.role == "bup"][0]
    assert "Ida" not in first.body_text
    assert "090414" not in first.body_text
    assert "C-1" in first.body_text
    assert not first.personal_data
    run = Cli(db_url)
    run("--parties", str(parties), "consent", instance, "--sector", "psychiatry", "--basis",
        "consent", "--reference", "parent consent 2026-11-10", "--as", "caseworker")
    notifying.advance(instance, "bup_declines", actor="b", role="bup")
    notifying.advance(instance, "refer_bup", actor="p", role="ppr",
                      values={"referral_received": "2026-11-09"})
    second = [m for m in outbox(notifying.db) if m.role == "bup"][-1]
    assert "Ida Jensen" in second.body_text
    assert "090414-1234" in second.body_text
    assert second.personal_data
    assert second.legal_basis == "consent: parent consent 2026-11-10"


def test_assignment_takes_precedence(notifying: PathwayEngine, parties: Path, db_url: str) -> None:
    instance = start_child(notifying)
    Cli(db_url)("--parties", str(parties), "assign", instance, "contact_person", "kp_hanne",
                "--as", "leader")
    notifying.advance(instance, "refer_bup", actor="p", role="ppr",
                      values={"referral_received": "2026-11-09"})
    contact = [m for m in outbox(notifying.db) if m.role == "contact_person"][0]
    assert contact.party == "kp_hanne"
    assert contact.address == "hanne@x.example"
    history = json.loads(Cli(db_url)("history", instance, "--json").output)
    assert any(h["kind"] == "assignment" for h in history)


def test_area_routes_to_that_areas_party_and_unknown_area_is_refused(
        parties: Path, db_url: str) -> None:
    run = Cli(db_url)
    base = ["--parties", str(parties), "start", "mistrivsel_referral", "--birth-date",
            "2014-01-01", "--set", "severity=moderate", "--set", "consent_exchange=true",
            "--as", "gp1", "--role", "gp"]
    south = run(*base, "--subject", "C-S", "--area", "syddjurs").output.strip()
    north = run(*base, "--subject", "C-N", "--area", "norddjurs").output.strip()
    plain = run(*base, "--subject", "C-P").output.strip()
    messages = {m.instance_id: m for m in outbox(Database(db_url)) if m.role == "ppr"}
    assert messages[south].party == "ppr_syddjurs"
    assert messages[south].address == "ppr@syd.example"
    assert messages[north].party == "ppr_x"  # no party of its own: the role's default
    assert messages[plain].party == "ppr_x"
    assert json.loads(run("show", south, "--json").output)["area"] == "syddjurs"
    typo = run(*base, "--subject", "C-T", "--area", "syddjur", code=1)
    assert "--area 'syddjur' is not an area of the parties file" in typo.stderr
    assert "did you mean 'syddjurs'" in typo.stderr
    bad = run(*base, "--subject", "C-B", "--area", "Syd Djurs", code=1)
    assert "--area 'Syd Djurs': use a lower-case code" in bad.stderr
    assert len(json.loads(run("list", "--json").output)) == 3
    late = ["--parties", str(parties), "overdue", "--now", "2027-02-01T12:00"]
    theirs = json.loads(run(*late, "--party", "ppr_syddjurs", "--json").output)
    assert [(r["instance"], r["responsible_party"]) for r in theirs] == \
        [(south, "ppr_syddjurs")]
    assert {r["instance"] for r in json.loads(run(*late, "--party", "ppr_x", "--json").output)
            } == {north, plain}
    assert "ppr_syddjurs (ppr)" in run(*late, "--area", "syddjurs").output


def test_a_party_filter_without_a_parties_file_says_where_to_give_one(
        db_url: str, tmp_path: Path) -> None:
    """On the command line the option; over HTTP the server's start-up, not a CLI option the
    caller cannot give."""
    import shutil

    from pathways_engine.errors import InvalidArgument

    from pathways.app import App
    from pathways.cases import filters
    from pathways.config import Settings

    alone = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS, alone, ignore=shutil.ignore_patterns("parties.yaml"))
    run = Cli(db_url, alone)
    refused = run("overdue", "--party", "ppr_x", code=1)
    assert refused.stderr.strip().endswith(
        "--party needs the parties file (--parties or PATHWAYS_PARTIES)")
    app = App(Settings.resolve(db_url, (alone,)))
    try:
        with pytest.raises(InvalidArgument) as over_http:
            filters(app, party="ppr_x", prefix="")
    finally:
        app.close()
    assert str(over_http.value) == (
        "party needs the parties file (this server was started without one: "
        "`pathways serve --parties` or PATHWAYS_PARTIES)")


def test_render_for_an_instance_uses_its_recipient_and_legal_basis(
        notifying: PathwayEngine, parties: Path, db_url: str) -> None:
    instance = start_child(notifying)
    name_subject(notifying.db, "Ida Jensen")
    run = Cli(db_url)
    queued = len(outbox(notifying.db))
    args = ["--parties", str(parties), "render", "mistrivsel_referral", "step_assigned",
            "--instance", instance]
    before = run(*args, "--role", "bup").output
    assert "Language: en" in before  # BUP X reads English
    assert "C-1" in before
    assert "Ida" not in before
    run("--parties", str(parties), "consent", instance, "--sector", "psychiatry", "--basis",
        "consent", "--reference", "parent 2026-11-10", "--as", "cw")
    # a basis for BUP lets BUP's message carry the name, but a preview shows it only to a
    # reader who may see it too (issue 19: render --instance leaked it to anyone)
    assert "Ida" not in run(*args, "--role", "bup").output
    as_bup = run(*args, "--role", "bup", "--as", "b", "--reader-role", "bup").output
    assert "Ida Jensen" in as_bup
    assert "Language: da" in run(*args, "--role", "ppr").output
    assert len(outbox(notifying.db)) == queued  # a preview queues nothing
    wrong = run("render", "pregnancy_communication", "step_assigned", "--instance", instance,
                code=1)
    assert "runs pathway 'mistrivsel_referral', not 'pregnancy_communication'" in wrong.stderr
    missing = run("render", "mistrivsel_referral", "step_assigned", "--instance", "nope", code=1)
    assert "no pathway instance 'nope'" in missing.stderr


def test_smtp_down_then_up_every_message_arrives_once(notifying: PathwayEngine) -> None:
    for n in range(3):
        notifying.start("mistrivsel_referral", subject_ref=f"C-{n}", birth_date=dt.date(2014, 1, 1),
                        values={"severity": "mild", "consent_exchange": True}, actor="g",
                        role="gp", at=NOW)
    port = free_port()
    channels = {"email": SmtpChannel("127.0.0.1", port, timeout=2)}
    report = deliver(notifying.db, channels, NOW)
    assert (report.sent, report.retried) == (0, 3)
    assert all(m.status == "pending" and m.attempts == 1 for m in outbox(notifying.db))
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert deliver(notifying.db, channels, NOW).sent == 0  # backing off
        later = NOW + dt.timedelta(minutes=2)
        assert deliver(notifying.db, channels, later).sent == 3
        assert deliver(notifying.db, channels, later + dt.timedelta(hours=1)).sent == 0
    finally:
        controller.stop()
    expected = sorted(m.message_id for m in outbox(notifying.db))
    assert sorted(inbox.ids()) == expected
    assert all(m.status == "sent" for m in outbox(notifying.db))


@pytest.mark.parametrize("point", ["deliver.after_claim", "deliver.after_send"])
def test_delivery_killed_then_rerun_sends_at_least_once_with_one_message_id(
        notifying: PathwayEngine, parties: Path, db_url: str, point: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    instance = start_child(notifying)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("PATHWAYS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PATHWAYS_SMTP_PORT", str(controller.port))
    killed = run_killed(db_url, f"{point}=kill", "--parties", str(parties), "deliver",
                        "--now", NOW.isoformat())
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(inbox.messages) == (1 if point == "deliver.after_send" else 0)
    [message] = outbox(notifying.db)
    assert message.status == "pending"  # claimed for a lease, not lost
    channels = {"email": SmtpChannel("127.0.0.1", controller.port, timeout=5)}
    assert deliver(notifying.db, channels, NOW).sent == 0  # the lease still holds
    assert deliver(notifying.db, channels, NOW + dt.timedelta(minutes=6)).sent == 1
    controller.stop()
    assert len(set(inbox.ids())) == 1  # a duplicate carries the same Message-ID
    [message] = outbox(notifying.db)
    assert message.status == "sent"
    history = json.loads(Cli(db_url)("history", instance, "--json").output)
    assert [h["kind"] for h in history].count("notification_sent") == 1
    assert Cli(db_url)("audit", "verify").exit_code == 0


def test_dead_letter_and_operator_retry(notifying: PathwayEngine, db_url: str) -> None:
    from pathways_notifications.delivery import Policy

    instance = start_child(notifying)
    channels = {"email": SmtpChannel("127.0.0.1", free_port(), timeout=1)}
    policy = Policy(give_up_after=dt.timedelta(hours=2), min_attempts=3)
    moment = NOW
    for _ in range(6):
        deliver(notifying.db, channels, moment, policy=policy)
        moment += dt.timedelta(hours=1)
    [message] = outbox(notifying.db)
    assert message.status == "failed"
    assert message.attempts == 3  # kept trying for the give-up period, then gave up
    assert message.last_error
    run = Cli(db_url)
    rows = json.loads(run("outbox", "--status", "failed", "--json").output)
    assert [r["id"] for r in rows] == [message.id]
    run("outbox", "retry", str(message.id), "--as", "leader")
    assert outbox(notifying.db)[0].status == "pending"
    history = json.loads(run("history", instance, "--json").output)
    assert [h["kind"] for h in history].count("notification_failed") == 1
    assert [h["actor"] for h in history if h["kind"] == "notification_retried"] == ["leader"]
    assert "no outbox message 999" in run("outbox", "retry", "999", "--as", "leader",
                                          code=1).stderr
    assert "not a dead letter" in run("outbox", "retry", str(message.id), "--as", "leader",
                                      code=1).stderr
    assert run("audit", "verify").exit_code == 0


def test_file_drop_writes_eml_and_json(notifying: PathwayEngine, tmp_path: Path) -> None:
    start_child(notifying)
    with notifying.db.engine.begin() as c:
        c.execute(text("update outbox set channel = 'file'"))
    drop = tmp_path / "drop"
    assert deliver(notifying.db, {"file": FileDropChannel(drop)}, NOW).sent == 1
    files = sorted(p.suffix for p in drop.iterdir())
    assert files == [".eml", ".json"]
    meta = json.loads(next(drop.glob("*.json")).read_text())
    assert meta["role"] == "ppr"
    assert meta["personal_data"] is False


def test_template_injection_is_refused(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "defs" / "mistrivsel_referral"
    shutil.copytree(DEFINITIONS / "mistrivsel_referral", target)
    (target / "templates" / "step_assigned" / "da.txt.j2").write_text(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "defs")])
    assert result.exit_code == 1
    assert "step_assigned/da.txt.j2:1:" in result.output
    assert "unsafe" in result.output or "__class__" in result.output


def test_check_reports_undefined_variable_and_missing_template(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "defs" / "mistrivsel_referral"
    shutil.copytree(DEFINITIONS / "mistrivsel_referral", target)
    (target / "templates" / "deadline_reminder" / "en.txt.j2").write_text(
        "Hello\n{{ recipient.nmae }}\n")
    shutil.rmtree(target / "templates" / "deadline_escalation")
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "defs")])
    assert result.exit_code == 1
    assert "deadline_reminder/en.txt.j2:2: 'dict object' has no attribute 'nmae'" in result.output
    assert "unknown template 'deadline_escalation'" in result.output


def test_render_previews_a_template() -> None:
    result = CliRunner().invoke(cli, ["render", "mistrivsel_referral", "step_assigned",
                                      "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Subject: Referral of children")
    bad = CliRunner().invoke(cli, ["render", "mistrivsel_referral", "step_asigned"])
    assert bad.exit_code == 1
    assert "did you mean 'step_assigned'" in bad.stderr


def test_parties_file_errors_have_lines(tmp_path: Path) -> None:
    path = tmp_path / "parties.yaml"
    path.write_text("parties:\n  - {id: a, roles: [gp], name: A, email: not-an-address}\n")
    with pytest.raises(DefinitionError) as info:
        load_parties(path)
    assert info.value.problems[0].line == 2
    assert "not a valid email address" in str(info.value)


def test_parties_file_area_not_declared(tmp_path: Path) -> None:
    path = tmp_path / "parties.yaml"
    path.write_text("areas: [norddjurs]\nparties:\n"
                    "  - {id: a, roles: [gp], name: A, channel: console, areas: [norddjur]}\n")
    with pytest.raises(DefinitionError) as info:
        load_parties(path)
    assert str(info.value) == (f"{path}:3: party 'a': area 'norddjur' is not in `areas:` "
                               "(did you mean 'norddjurs'?)")


def test_check_reports_parties_with_unknown_roles(tmp_path: Path) -> None:
    path = tmp_path / "parties.yaml"
    path.write_text("parties:\n  - {id: a, roles: [gp], name: A, channel: console}\n"
                    "  - {id: b, roles: [ppx], name: B, channel: console}\n")
    result = CliRunner().invoke(cli, ["--parties", str(path), "check", str(DEFINITIONS)])
    assert result.exit_code == 1
    assert f"{path}:3: unknown role 'ppx'" in result.output


def test_delivery_give_up_period_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                            db_url: str) -> None:
    from pathways.delivery import policy_from_env

    monkeypatch.setenv("PATHWAYS_DELIVERY_GIVE_UP", "5 days")
    assert policy_from_env().give_up_after == dt.timedelta(days=5)
    monkeypatch.setenv("PATHWAYS_DELIVERY_GIVE_UP", "2 working days")
    run = Cli(db_url)
    run("db", "upgrade")
    result = run("deliver", code=1)
    assert "PATHWAYS_DELIVERY_GIVE_UP: give minutes, hours, days or weeks" in result.stderr
