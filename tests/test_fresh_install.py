"""A new user's first hour: mistakes get one line and exit 1, and nothing is created or written.

Each case here was found by trying, as a new user would, on a fresh install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result
from pathways_engine import Database
from sqlalchemy import inspect
from support import ACTORS
from support import DEFINITIONS
from support import ROOT
from support import Cli
from support import version_of
from support import with_version

from pathways.cli import cli

START = ["start", "mistrivsel_referral", "--subject", "C-1", "--birth-date", "2014-05-02",
         "--set", "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a",
         "--role", "gp"]
READS = [["list"], ["show", "abc"], ["history", "abc"], ["overdue"], ["outbox"], ["report"],
         ["audit", "verify"], ["export", "abc"]]


def one_line_error(result: Result, *needles: str) -> str:
    stderr = result.stderr
    assert result.exit_code == 1, (result.exit_code, stderr)
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


@pytest.mark.parametrize("args", [*READS, ["tick"], ["deliver"]], ids=lambda a: a[0])
def test_a_read_or_sweep_of_a_missing_sqlite_database_creates_nothing(tmp_path: Path,
                                                                       args: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    one_line_error(Cli(url)(*args, code=None), f"there is no database at {url}",
                   "pathways db upgrade")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READS[:4], ids=lambda a: a[0])
def test_a_read_of_an_empty_database_creates_no_schema(db_url: str, args: list[str]) -> None:
    empty = Database(db_url, auto_upgrade=False)
    one_line_error(Cli(db_url)(*args, code=None), "has no pathways schema yet",
                   "pathways db upgrade")
    assert inspect(empty.engine).get_table_names() == []
    empty.dispose()


def test_start_and_db_upgrade_create_then_reads_work(db_url: str) -> None:
    run = Cli(db_url)
    assert "-> " in run("db", "upgrade").output
    assert json.loads(run("list", "--json").output) == []
    instance = json.loads(run(*START, "--json").output)["id"]
    assert json.loads(run("show", instance, "--json").output)["state"] == "referred"


def test_a_newer_schema_than_this_release_is_refused(db_url: str) -> None:
    run = Cli(db_url)
    run("db", "upgrade")
    db = Database(db_url)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    db.dispose()
    one_line_error(run("list", code=None), "schema revision 9999, newer than this release",
                   "upgrade pathways")


@pytest.mark.parametrize(("make", "needle"), [
    (lambda p: p.write_text("not a database at all\n" * 100), "file is not a database"),
    (lambda p: p.mkdir(), "is not a file"),
], ids=["not-a-database", "a-folder"])
def test_db_that_is_not_a_database_file(tmp_path: Path, make: object, needle: str) -> None:
    target = tmp_path / "x.db"
    make(target)  # type: ignore[operator]
    for args in (["list"], START):
        one_line_error(Cli(f"sqlite:///{target}")(*args, code=None), needle)


def test_db_at_a_path_that_cannot_be_created() -> None:
    one_line_error(Cli("sqlite:////proc/pathways-cannot-be-here.db")(*START, code=None),
                   "cannot create database file '/proc/pathways-cannot-be-here.db'")


def copy_pathway(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(DEFINITIONS / name, target)
    return target


@pytest.mark.parametrize("version", ["99999999999999999999999", "3000000000", "0"])
def test_check_refuses_a_version_no_database_can_store(tmp_path: Path, version: str) -> None:
    folder = copy_pathway(tmp_path, "bup_samhandlingsforlop")
    path = folder / "pathway.yaml"
    text = path.read_text()
    line = text[:text.index(f"\nversion: {version_of(text)}\n") + 1].count("\n") + 1
    path.write_text(with_version(text, version))
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 1
    assert result.stdout == (f"{path}:{line}: version: must be a whole number from 1 to "
                             f"2147483647, not {int(version)}\n")


def test_check_refuses_a_holiday_category_the_countrys_calendar_lacks(tmp_path: Path) -> None:
    folder = copy_pathway(tmp_path, "bup_samhandlingsforlop")
    path = folder / "pathway.yaml"
    text = path.read_text()
    anchor = "        duration: 10 working days\n"
    assert anchor in text
    text = text.replace(anchor, anchor + "        calendar: {holiday_categories: [de_facto]}\n", 1)
    path.write_text(text)
    line = text[:text.index("holiday_categories")].count("\n") + 1
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 1
    assert f"{path}:{line}: the NO holiday calendar has no 'de_facto' days; it has: public" in \
        result.stdout


@pytest.mark.parametrize(("name", "needle"), [
    ("/dev/null", "/dev/null:1: not a definition file or folder"),
    ("empty", "empty:1: no definitions here"),
    ("only-notes", "only-notes:1: no definitions here"),
])
def test_check_of_something_that_holds_no_definition_fails(tmp_path: Path, name: str,
                                                           needle: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if name == "empty":
        (tmp_path / name).mkdir()
    elif name == "only-notes":
        (tmp_path / name).mkdir()
        (tmp_path / name / "README.txt").write_text("notes\n")
    result = CliRunner().invoke(cli, ["check", name])
    assert result.exit_code == 1
    assert needle in result.stdout
    assert "definitions OK" not in result.output


def test_installed_package_never_uses_its_demo_actors_or_parties(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `pip install .` gives: the shipped definitions carry demo actors and parties."""
    import pathways.config as config

    installed = tmp_path / "site-packages" / "pathways" / "_definitions"
    shutil.copytree(DEFINITIONS, installed)
    assert (installed / "actors.yaml").is_file()
    monkeypatch.setattr(config, "_INSTALLED_DEFINITIONS", installed)
    monkeypatch.setattr(config, "shipped_definitions", lambda: installed)
    for name in ("PATHWAYS_ACTORS", "PATHWAYS_PARTIES", "PATHWAYS_DEFINITIONS"):
        monkeypatch.delenv(name, raising=False)
    settings = config.Settings.resolve(None, ())
    assert (settings.actors, settings.parties) == (None, None)
    url = f"sqlite:///{tmp_path / 'real.db'}"
    result = CliRunner().invoke(cli, ["--db", url, *START[:-4], "--as", "dr.jensen",
                                      "--role", "gp"])
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1
    assert "no actors file, so nobody may act: give --actors FILE or set PATHWAYS_ACTORS" in \
        result.stderr
    assert not (tmp_path / "real.db").exists()
    demo = settings.with_demo_deployment()
    assert demo.actors == installed / "actors.yaml"
    assert demo.parties == installed / "parties.yaml"
    # a deployment's own folder of definitions keeps its own actors file beside it
    own = tmp_path / "deployment"
    shutil.copytree(DEFINITIONS, own)
    assert config.Settings.resolve(None, (own,)).actors == own / "actors.yaml"


@pytest.mark.slow
def test_first_use_by_several_processes_at_once(db_url: str) -> None:
    """An empty database opened by four `start`s at once: one migrates, all succeed."""
    command = [sys.executable, "-m", "pathways", "--db", db_url, "--definitions",
               str(DEFINITIONS), "--actors", str(ACTORS)]
    procs = [subprocess.Popen([*command, *START[:2], "--subject", f"C-{n}", *START[4:]],
                              cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for n in range(4)]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    assert len(json.loads(Cli(db_url)("list", "--json").output)) == 4
