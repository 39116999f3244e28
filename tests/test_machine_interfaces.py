"""What integrations and people at a terminal rely on (issue 17): `check --json`, errors as
JSON under `--json`, and help for every option of every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from pathways.cli import COMMAND_MODULES
from pathways.cli import cli


def test_check_json_lists_every_problem_with_file_line_and_severity(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "pathway.yaml").write_text("id: bad\nversion: 1\ncountry: FI\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(folder), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["definitions"] == 1
    problems = report["problems"]
    assert problems
    assert all(p["file"].endswith("pathway.yaml") and isinstance(p["line"], int)
               and p["severity"] == "error" for p in problems)
    assert any(p["line"] == 3 and "country" in p["message"] for p in problems)
    good = CliRunner().invoke(cli, ["check", "--json"])
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["ok"] is True


def test_under_json_an_error_is_json_on_stderr_with_its_exit_code(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    result = CliRunner().invoke(cli, ["--db", missing, "show", "0123456789abcdef", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    error = json.loads(result.stderr)
    assert error["exit_code"] == 1
    assert "there is no database at" in error["error"]
    assert not (tmp_path / "typo.db").exists()
    plain = CliRunner().invoke(cli, ["--db", missing, "show", "0123456789abcdef"])
    assert plain.stderr.startswith("error: there is no database at")


def test_every_option_of_every_command_says_what_it_does() -> None:
    ctx = click.Context(cli)
    missing = []

    def walk(command: click.Command, name: str) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{name} {param.opts[0]}")
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                found = command.get_command(ctx, sub)
                assert found is not None
                walk(found, f"{name} {sub}")

    walk(cli, "pathways")
    assert set(COMMAND_MODULES) <= set(cli.list_commands(ctx))
    assert missing == []


def test_the_shell_completes_pathways_instances_and_the_events_allowed_now(
        tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    started = CliRunner().invoke(cli, [
        "--db", db, "start", "mistrivsel_referral", "--subject", "K-1", "--birth-date",
        "2014-05-02", "--set", "severity=moderate", "--set", "consent_exchange=true", "--as",
        "dr.jensen", "--role", "gp", "--json"])
    assert started.exit_code == 0, started.output
    instance = json.loads(started.stdout)["id"]

    def complete(words: str, cword: int) -> list[str]:
        result = CliRunner().invoke(cli, [], prog_name="pathways", env={
            "_PATHWAYS_COMPLETE": "bash_complete", "COMP_WORDS": words,
            "COMP_CWORD": str(cword), "PATHWAYS_DATABASE_URL": db})
        assert result.exit_code == 0, result.output
        return [line.split(",", 1)[1] for line in result.output.splitlines() if "," in line]

    assert complete("pathways start mis", 2) == ["mistrivsel_referral"]
    assert complete(f"pathways advance {instance[:4]}", 2) == [instance]
    assert complete(f"pathways advance {instance} tri", 3) == ["triage_to_ltt",
                                                               "triage_to_ppr"]
    assert complete("pathways list --pathway sip", 3) == ["sip_utskrivning"]


def test_the_committed_schema_is_current_and_describes_every_key() -> None:
    from pathways_engine.definition.spec import json_schema
    from support import ROOT

    committed = json.loads((ROOT / "docs" / "pathway.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "run: pathways schema > docs/pathway.schema.json"
    undescribed = [f"{model}.{key}" for model, spec in
                   [("PathwaySpec", committed), *committed["$defs"].items()]
                   for key, prop in (spec.get("properties") or {}).items()
                   if not prop.get("description")]
    assert undescribed == []


def test_a_definition_with_the_editor_line_still_checks(tmp_path: Path) -> None:
    import shutil

    from support import DEFINITIONS

    folder = tmp_path / "discharge_to_municipality"
    shutil.copytree(DEFINITIONS / "discharge_to_municipality", folder)
    path = folder / "pathway.yaml"
    path.write_text("# yaml-language-server: $schema=../../docs/pathway.schema.json\n"
                    + path.read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 0, result.output


def test_long_commands_report_progress_as_they_go(database: object, tmp_path: Path) -> None:
    """migrate and audit verify tell a progress bar how far they are (a bar is drawn only at a
    terminal; here the callbacks are counted)."""
    import datetime as dt

    from pathways_engine import PathwayEngine
    from pathways_engine import Registry
    from pathways_engine.audit.verify import verify
    from pathways_engine.runtime import migration
    from support import copy_pathway
    from support import version_of
    from support import with_version

    folder = copy_pathway(tmp_path / "defs" / "mistrivsel_referral")
    engine = PathwayEngine(database, Registry.from_paths([folder.parent]))  # type: ignore[arg-type]
    for n in range(7):
        engine.start("mistrivsel_referral", subject_ref=f"P-{n}", birth_date=dt.date(2014, 1, 1),
                     actor="gp1", role="gp",
                     values={"severity": "moderate", "consent_exchange": True})
    ticks: list[int] = []
    verify(database, on_instance=ticks.append)  # type: ignore[arg-type]
    assert sum(ticks) == 7
    source = (folder / "pathway.yaml").read_text(encoding="utf-8")
    newer = version_of(source) + 1
    (folder / "pathway.yaml").write_text(with_version(source, newer), encoding="utf-8")
    engine = PathwayEngine(database, Registry.from_paths([folder.parent]))  # type: ignore[arg-type]
    checked = migration.plan(engine, "mistrivsel_referral", newer, {})
    batches: list[int] = []
    assert migration.migrate(engine, checked, {}, "leader", on_batch=batches.append) == 7
    assert sum(batches) == 7


def test_deliver_reports_each_message_it_tries_for_its_progress_bar(run: Any,
                                                                     db_url: str) -> None:
    import datetime as dt

    from pathways_engine import Database
    from pathways_engine.store.outbox import due_count
    from pathways_notifications.channels import ChannelError
    from pathways_notifications.delivery import deliver

    for n in range(3):
        run("start", "mistrivsel_referral", "--subject", f"D-{n}", "--birth-date", "2014-05-02",
            "--set", "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a",
            "--role", "gp")

    class Flaky:
        calls = 0

        def send(self, message: object) -> None:
            Flaky.calls += 1
            if Flaky.calls % 2:
                raise ChannelError("mailbox full")

    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    database = Database(db_url)
    try:
        with database.reading() as connection:
            due = due_count(connection, now)
        assert due >= 3
        told: list[int] = []
        report = deliver(database, {"console": Flaky(), "email": Flaky()},  # type: ignore[dict-item]
                         now, on_message=lambda: told.append(1))
    finally:
        database.dispose()
    assert len(told) == due == report.sent + report.retried + report.failed
    assert report.sent > 0  # both kinds counted
    assert report.retried > 0


def test_the_environment_is_named_in_help_and_an_empty_entry_is_no_folder(
        tmp_path: Path, monkeypatch: Any) -> None:
    from support import DEFINITIONS

    shown = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    for variable in ("PATHWAYS_DATABASE_URL", "PATHWAYS_DEFINITIONS", "PATHWAYS_PARTIES",
                     "PATHWAYS_ACTORS"):
        assert f"[env var: {variable}]" in shown
    # a stray ':' must not load the current folder (a broken file there would fail)
    (tmp_path / "broken.yaml").write_text("id: [\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    listed = CliRunner().invoke(cli, ["definitions", "--json"],
                                env={"PATHWAYS_DEFINITIONS": f"{DEFINITIONS}::"})
    assert listed.exit_code == 0, listed.output
    assert "mistrivsel_referral" in {d["id"] for d in json.loads(listed.output)}
    refused = CliRunner().invoke(cli, ["definitions"],
                                 env={"PATHWAYS_DEFINITIONS": f"{DEFINITIONS}:."})
    assert refused.exit_code == 1
    assert "broken.yaml" in refused.output
