"""`pathways report`: figures computed in the database, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from pathways_engine import Database
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from support import Cli

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def populate(engine: PathwayEngine) -> None:
    """11 children triaged after 1..10 and 20 days (municipal triage: 10 working days, due
    16 November), 2 still waiting (overdue now), one of them in another area."""
    for n, days in enumerate([*range(1, 11), 20]):
        child = engine.start("mistrivsel_referral", subject_ref=f"R-{n}",
                             birth_date=dt.date(2014, 1, 1), actor="gp1", role="gp",
                             values={"severity": "moderate", "consent_exchange": True}, at=START,
                             area="norddjurs")
        engine.advance(child, "triage_to_ppr", actor="p", role="ppr",
                       at=START + dt.timedelta(days=days))
    for n, area in enumerate(["norddjurs", "syddjurs"]):
        engine.start("mistrivsel_referral", subject_ref=f"W-{n}", birth_date=dt.date(2014, 1, 1),
                     actor="gp1", role="gp", values={"severity": "mild", "consent_exchange": True},
                     at=START, area=area)


def test_report_by_step_role_and_organisation(database: Database, registry: Registry,
                                              db_url: str) -> None:
    populate(PathwayEngine(database, registry, clock=FixedClock(START + dt.timedelta(days=200))))
    run = Cli(db_url)
    args = ["report", "--from", "2026-11-01", "--to", "2026-12-31", "--format", "json"]
    rows = {r["step"]: r for r in json.loads(run(*args).output)}
    referred = rows["referred"]
    assert referred["started"] == 13
    assert referred["completed"] == 11
    assert referred["median_days"] == 6.0   # the 6th of 11 stays
    assert referred["p90_days"] == 10.0     # the 10th of 11
    assert referred["deadlines_closed"] == 11
    assert referred["deadlines_met_share"] == round(10 / 11, 3)  # the 20-day one was late
    assert referred["overdue_now"] == 2
    assert rows["ppr_assessment"]["started"] == 11
    by_role = {r["role"]: r for r in json.loads(run(*args, "--by", "role").output)}
    assert by_role["ppr"]["completed"] == 11
    assert "(none)" not in {r["role"] for r in by_role.values()}  # final states have no role
    by_area = {r["area"]: r for r in json.loads(run(*args, "--by", "area").output)}
    assert by_area["syddjurs"]["overdue_now"] == 1
    assert by_area["norddjurs"]["overdue_now"] == 1
    # organisation: the party responsible - routed by area (PPR Syddjurs serves syddjurs)
    by_party = {r["organisation"]: r for r in json.loads(run(*args, "--by", "organisation")
                                                         .output)}
    assert by_party["ppr_syddjurs"]["overdue_now"] == 1
    assert by_party["ppr_norddjurs"]["overdue_now"] == 1
    assert by_party["ppr_norddjurs"]["completed"] == 11
    later = json.loads(run("report", "--from", "2027-01-01", "--to", "2027-01-31", "--format",
                           "json").output)
    assert all(r["started"] == 0 and r["completed"] == 0 for r in later)
    table = run("report", "--from", "2026-11-01", "--to", "2026-12-31").output
    assert "91%" in table
    assert table.splitlines()[0].split() == [
        "pathway", "step", "started", "completed", "migrated", "median_days", "p90_days",
        "deadlines_closed",
        "deadlines_met_share", "deadlines_met_early", "paused_days", "overdue_now"]
    parsed = list(csv.DictReader(io.StringIO(run(*args[:-2], "--format", "csv").output)))
    assert {r["step"] for r in parsed} >= {"referred", "ppr_assessment"}


def test_report_of_one_area_counts_only_its_instances(database: Database, registry: Registry,
                                                      db_url: str) -> None:
    """A municipality's steering group reads its own figures: `--area` leaves out every
    instance of another area (and those started without one), in each grouping."""
    populate(PathwayEngine(database, registry, clock=FixedClock(START + dt.timedelta(days=200))))
    run = Cli(db_url)
    args = ["report", "--from", "2026-11-01", "--to", "2026-12-31", "--format", "json"]
    syd = {r["step"]: r for r in json.loads(run(*args, "--area", "syddjurs").output)}
    assert syd["referred"]["started"] == 1
    assert syd["referred"]["completed"] == 0
    assert syd["referred"]["overdue_now"] == 1
    assert "ppr_assessment" not in syd
    nord = {r["step"]: r for r in json.loads(run(*args, "--area", "norddjurs").output)}
    assert nord["referred"]["started"] == 12
    assert nord["referred"]["deadlines_closed"] == 11
    assert nord["ppr_assessment"]["started"] == 11
    by_area = json.loads(run(*args, "--by", "area", "--area", "syddjurs").output)
    assert {r["area"] for r in by_area} == {"syddjurs"}
    assert "--area 'nowhere': no such area in the parties file" in run(
        *args, "--area", "nowhere", code=1).stderr


def test_report_argument_errors(run: Cli) -> None:
    assert "--from 2027-01-02 is after --to 2027-01-01" in run(
        "report", "--from", "2027-01-02", "--to", "2027-01-01", code=1).stderr
    assert "unknown pathway 'nope'" in run("report", "--pathway", "nope", code=1).stderr


def test_a_step_counts_under_the_role_of_the_version_its_instance_runs_on(
        tmp_path: object, db_url: str) -> None:
    """Attack: a coordinator gives a step to another role in a new version; the children
    still on the old one are PPR's, not the new role's, in the steering group's figures. And
    a file left half-edited does not stop the report: roles come from the stored versions."""
    import shutil
    from pathlib import Path

    from support import DEFINITIONS
    from support import copy_pathway
    from support import version_of
    from support import with_version

    folder = copy_pathway(Path(str(tmp_path)) / "defs" / "mistrivsel_referral")
    shutil.copy(DEFINITIONS / "parties.yaml", folder.parent / "parties.yaml")
    run = Cli(db_url, folder.parent)

    def start(ref: str) -> None:
        run("start", "mistrivsel_referral", "--subject", ref, "--birth-date", "2014-05-02",
            "--set", "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a",
            "--role", "gp", "--at", "2026-11-02T09:00")

    start("V-old")
    source = (folder / "pathway.yaml").read_text(encoding="utf-8")
    changed = with_version(source, version_of(source) + 1).replace(
        "  referred:\n    initial: true\n    responsible: ppr\n",
        "  referred:\n    initial: true\n    responsible: ltt\n", 1)
    assert changed != with_version(source, version_of(source) + 1)
    (folder / "pathway.yaml").write_text(changed, encoding="utf-8")
    start("V-new")
    args = ["report", "--from", "2026-11-01", "--to", "2026-12-31", "--by", "role",
            "--format", "json"]
    by_role = {r["role"]: r for r in json.loads(run(*args).output)
               if r["pathway"] == "mistrivsel_referral"}
    assert by_role["ppr"]["started"] == 1  # the child on the old version
    assert by_role["ltt"]["started"] == 1  # the child on the new one
    (folder / "pathway.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    again = {r["role"]: r for r in json.loads(run(*args).output)}
    assert again["ppr"]["started"] == 1
    assert again["ltt"]["started"] == 1
    typo = run(*args, "--pathway", "mistrivsel_referal", code=1).stderr  # still refused
    assert "--pathway 'mistrivsel_referal': no such pathway" in typo
    assert "did you mean" in typo.lower()


def test_a_migration_is_neither_an_entry_nor_an_exit(tmp_path: object, db_url: str) -> None:
    """Attack: "started 7" where 5 started - a migration counted as leaving and entering."""
    import shutil
    from pathlib import Path

    from support import DEFINITIONS
    from support import copy_pathway
    from support import version_of
    from support import with_version

    folder = copy_pathway(Path(str(tmp_path)) / "defs" / "mistrivsel_referral")
    shutil.copy(DEFINITIONS / "parties.yaml", folder.parent / "parties.yaml")
    run = Cli(db_url, folder.parent)
    ids = [json.loads(run("start", "mistrivsel_referral", "--subject", f"M-{n}", "--birth-date",
                          "2014-05-02", "--set", "severity=moderate", "--set",
                          "consent_exchange=true", "--as", "dr.a", "--role", "gp", "--at",
                          "2026-11-02T09:00", "--json").output)["id"] for n in range(3)]
    source = (folder / "pathway.yaml").read_text(encoding="utf-8")
    newer = version_of(source) + 1
    (folder / "pathway.yaml").write_text(with_version(source, newer), encoding="utf-8")
    run("migrate", "--pathway", "mistrivsel_referral", "--to", str(newer), "--as", "leader")
    for instance in ids:
        run("advance", instance, "triage_to_ppr", "--as", "p", "--role", "ppr", "--at",
            "2026-11-09T09:00")
    rows = {r["step"]: r for r in json.loads(run(
        "report", "--from", "2026-11-01", "--to", "2030-12-31", "--format", "json").output)}
    referred = rows["referred"]
    assert referred["started"] == 3
    assert referred["migrated"] == 3
    assert referred["completed"] == 3
    assert rows["ppr_assessment"]["started"] == 3
