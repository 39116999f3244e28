"""advance_many: many independent steps in one commit, each refused or applied whole."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pathways_engine import Database
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine import Step
from pathways_engine import StepRequest
from pathways_engine.audit.verify import verify
from pathways_engine.errors import FieldError
from pathways_engine.errors import GuardFailed
from pathways_engine.errors import InstanceNotFound
from pathways_engine.errors import RoleNotAllowed
from pathways_engine.reading.views import show
from support import copy_pathway

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
REFER = {"referral_received": "2026-11-03"}


def children(engine: PathwayEngine, count: int, severity: str = "moderate") -> list[str]:
    return [engine.start("mistrivsel_referral", subject_ref=f"G-{severity}-{n}",
                         birth_date=dt.date(2014, 1, 1), actor="gp1", role="gp",
                         values={"severity": severity, "consent_exchange": True}, at=START)
            for n in range(count)]


def test_refused_steps_come_back_as_errors_and_the_rest_commit(database: Database,
                                                               registry: Registry) -> None:
    engine = PathwayEngine(database, registry, clock=FixedClock(START + dt.timedelta(days=2)))
    ok = children(engine, 3)
    [mild] = children(engine, 1, "mild")
    results = engine.advance_many([
        StepRequest(ok[0], "refer_bup", "p", "ppr", REFER),
        StepRequest(ok[1], "refer_bup", "p", "bup", REFER),         # wrong role
        StepRequest(mild, "refer_bup", "p", "ppr", REFER),          # guard: not for mild
        StepRequest("nope", "refer_bup", "p", "ppr", REFER),         # no such instance
        StepRequest(ok[2], "triage_to_ppr", "p", "ppr"),
        StepRequest(ok[2], "refer_bup", "p", "ppr", REFER),          # same instance again
    ])
    assert isinstance(results[0], Step)
    assert results[0].to_state == "bup_referred"
    assert isinstance(results[1], RoleNotAllowed)
    assert isinstance(results[2], GuardFailed)
    assert isinstance(results[3], InstanceNotFound)
    assert [r.to_state for r in (results[4], results[5]) if isinstance(r, Step)] == [
        "ppr_assessment", "bup_referred"]
    assert show(engine, ok[0])["state"] == "bup_referred"
    assert show(engine, ok[1])["state"] == "referred"
    assert show(engine, ok[2])["revision"] == 3
    assert verify(database).breaks == []


def test_a_step_failing_while_writing_is_dropped_and_the_batch_redone(
        database: Database, tmp_path: Path) -> None:
    folder = tmp_path / "mistrivsel_referral"
    copy_pathway(folder)
    text = (folder / "pathway.yaml").read_text()
    # the BUP deadlines count from referral_received, which refer_bup no longer requires:
    # the step passes the machine and fails while opening its deadlines
    text = text.replace("    requires: [referral_received]\n", "    accepts: [referral_received]\n")
    (folder / "pathway.yaml").write_text(text)
    engine = PathwayEngine(database, Registry.from_paths([folder.parent]),
                           clock=FixedClock(START + dt.timedelta(days=2)))
    first, second, third = children(engine, 3)
    results = engine.advance_many([
        StepRequest(first, "refer_bup", "p", "ppr", REFER),
        StepRequest(second, "refer_bup", "p", "ppr"),                # fails while writing
        StepRequest(third, "refer_bup", "p", "ppr", REFER),
    ])
    assert isinstance(results[1], FieldError)
    assert "counts from field 'referral_received'" in str(results[1])
    assert [show(engine, i)["state"] for i in (first, second, third)] == [
        "bup_referred", "referred", "bup_referred"]
    assert show(engine, second)["revision"] == 1  # nothing of the failed step was written
    assert verify(database).breaks == []
