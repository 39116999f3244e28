"""Scenario files: a pathway tried against realistic cases in simulated time, before it goes live.

The format, with an example the test suite runs, is in docs/definitions.md ("Scenarios"). Each
scenario runs on its own throwaway SQLite database (nothing touches the configured one); before
every step the sweep runs up to the step's time, as the scheduler would; every run ends by
verifying its audit trail.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal
from zoneinfo import ZoneInfo

from pathways_engine.definition.files import load_model
from pathways_engine.errors import DefinitionError
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import PathwaysError
from pathways_engine.errors import Problem
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

_RELATIVE = re.compile(r"^\+\s*(\d{1,4})\s+(minutes?|hours?|days?|working days?|weeks?)$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ExpectedDeadline(_Strict):
    due: str | None = Field(default=None, description="ISO 8601 with offset, e.g. 2027-01-07T23:59:59+01:00")
    status: str | None = None
    warning: str | None = Field(default=None, description="Text the closed-day warning holds.")
    rule: str | None = Field(default=None, description="The status of the rule in force "
                             "(law, proposal, ...), e.g. after a variant.")
    occurrence: int | None = Field(default=None, description="Which occurrence of a "
                                   "repeating deadline (the newest is checked).")
    extensions: int | None = Field(default=None, description="How often it was extended.")


class ExpectedNotification(_Strict):
    template: str
    to: str
    trigger: str | None = None


class ExpectedPathway(_Strict):
    state: str | None = None
    status: str | None = Field(default=None, description="active, completed or withdrawn.")


class Expect(_Strict):
    state: str | None = None
    status: str | None = None
    deadlines: dict[str, ExpectedDeadline] = Field(default_factory=dict)
    notifications: list[ExpectedNotification] | None = None
    error: str | None = None
    pathways: dict[str, ExpectedPathway] = Field(
        default_factory=dict, description="The child's other pathways (started by handovers), "
        "by pathway id: the newest instance of each.")


class Subject(_Strict):
    ref: str = "SCENARIO-1"
    birth_date: dt.date | None = None


class Start(_Strict):
    at: str
    role: str = Field(alias="as")
    set: dict[str, Any] = Field(default_factory=dict)
    area: str | None = None


class ConsentStep(_Strict):
    sector: str
    basis: Literal["consent", "statutory"] = "consent"
    reference: str = "scenario"
    withdraw: bool = False


class AssignStep(_Strict):
    role: str
    party: str


ACTIONS = ("event", "tick", "consent", "assign", "extend", "pause", "resume", "withdraw",
           "correct", "undo")


class Step(_Strict):
    at: str
    event: str | None = None
    tick: bool = False
    consent: ConsentStep | None = None
    assign: AssignStep | None = None
    extend: str | None = Field(default=None, description="A deadline to extend.")
    pause: str | None = Field(default=None, description="A deadline whose clock to pause.")
    resume: str | None = Field(default=None, description="A deadline whose clock to resume.")
    withdraw: bool = Field(default=False, description="Withdraw the pathway (with reason:).")
    correct: bool = Field(default=False, description="Correct the fields given in set:.")
    undo: bool = Field(default=False, description="Undo the latest transition.")
    reason: str = "scenario"
    pathway: str | None = Field(default=None, description="Act on the child's instance of "
                                "this pathway (one a handover started) instead of the "
                                "scenario's own; `expect` then reads that one.")
    role: str | None = Field(default=None, alias="as")
    set: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None
    expect: Expect | None = None

    @property
    def action(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a))

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [a for a in ACTIONS if getattr(self, a)]
        if len(given) != 1:
            raise ValueError("give exactly one of `event:`, `tick: true`, `consent:`, "
                             "`assign:`, `extend:`, `pause:`, `resume:`, `withdraw: true`, "
                             "`correct: true`, `undo: true`")
        if not self.tick and self.role is None:
            what = f"event {self.event!r}" if self.event else f"`{given[0]}:`"
            raise ValueError(f"{what} needs `as: ROLE`")
        return self


class ScenarioFile(_Strict):
    name: str
    switches: list[str] = Field(default_factory=list,
                                description="Deployment rule switches in force (variants).")
    pathway: str | None = None
    version: int | None = None
    subject: Subject = Field(default_factory=Subject)
    start: Start
    expect: Expect | None = None
    steps: list[Step] = Field(default_factory=list)


@dataclass
class Outcome:
    path: str
    name: str
    failures: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # every message queued

    @property
    def passed(self) -> bool:
        return not self.failures


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files: given files, or every `scenarios/*.yaml` under given folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(path.glob("**/scenarios/*.yaml")) + sorted(
                p for p in path.glob("*.yaml") if p.parent.name == "scenarios")
        else:
            raise DefinitionError([Problem(str(path), 1, "no such file or folder")])
    return sorted(set(found))


def run_file(path: Path, definitions: tuple[Path, ...], parties: Path | None) -> Outcome:
    scenario, document = load_model(path, ScenarioFile)
    pathway = scenario.pathway or _pathway_of(path)
    if pathway is None:
        raise DefinitionError([Problem(str(path), 1, "name the pathway: `pathway: ID`")])
    with tempfile.TemporaryDirectory(prefix="pathways-simulate-") as folder:
        return _Run(path, scenario, pathway, definitions, parties, Path(folder)).run(
            document.line_of)


def _pathway_of(path: Path) -> str | None:
    definition = path.parent.parent / "pathway.yaml"
    if path.parent.name == "scenarios" and definition.is_file():
        from pathways_engine.definition.yamlsafe import parse_file

        data = parse_file(definition).data
        return str(data.get("id")) if isinstance(data, dict) and data.get("id") else None
    return None


class _Run:
    def __init__(self, path: Path, scenario: ScenarioFile, pathway: str,
                 definitions: tuple[Path, ...], parties: Path | None, folder: Path) -> None:
        from pathways_engine import FixedClock
        from pathways_engine import Registry
        from pathways_notifications.composer import Composer
        from pathways_notifications.parties import load_parties

        self.path, self.scenario, self.pathway = path, scenario, pathway
        self.registry = Registry.lazy(definitions)
        self.definition = self.registry.get(pathway, scenario.version)
        self.zone = ZoneInfo(self.definition.spec.timezone)
        self.clock = FixedClock(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        self.database_url = f"sqlite:///{folder / 'scenario.db'}"
        self.composer = Composer(load_parties(parties) if parties else None)
        self.outcome = Outcome(str(path), scenario.name)
        self.seen_messages = 0
        self.instance = ""

    def run(self, line_of: Callable[[tuple[str | int, ...]], int]) -> Outcome:
        from pathways_engine import Database
        from pathways_engine import PathwayEngine

        # every time first, so a mistake in the file is reported before anything runs
        moment = self._time(self.scenario.start.at, None, line_of(("start", "at")))
        moments = [moment]
        for number, step in enumerate(self.scenario.steps):
            moments.append(self._time(step.at, moments[-1], line_of(("steps", number, "at"))))
        self.db = Database(self.database_url)
        self.engine = PathwayEngine(self.db, self.registry, clock=self.clock,
                                    composer=self.composer, switches=self.scenario.switches)
        try:
            self.clock.current = moment
            start = self.scenario.start
            try:
                self.instance = self.engine.start(
                    self.pathway, subject_ref=self.scenario.subject.ref,
                    birth_date=self.scenario.subject.birth_date, actor="scenario",
                    role=start.role, values=start.set, at=moment, version=self.scenario.version,
                    area=start.area)
            except PathwaysError as exc:
                self.outcome.failures.append(f"start: refused: {exc}")
                return self.outcome
            self._check("start", self.scenario.expect, None)
            for number, (step, when) in enumerate(zip(self.scenario.steps, moments[1:],
                                                      strict=True), 1):
                self._step(number, step, when)
            self._verify_trail()
            self._keep_messages()
        finally:
            self.db.dispose()
        return self.outcome

    def _step(self, number: int, step: Step, moment: dt.datetime) -> None:
        from pathways_engine.runtime.sweep import tick

        what = step.event or step.action
        label = f"step {number} ({what} at {moment.astimezone(self.zone):%Y-%m-%d %H:%M})"
        self.clock.current = moment
        tick(self.engine, moment)
        error = None
        target = self.instance
        try:
            if step.pathway is not None:
                target = self._instance_of(step.pathway)
            if not step.tick:
                self._act(step, moment, target)
        except PathwaysError as exc:
            error = str(exc)
        self._check(label, step.expect, error, target)

    def _instance_of(self, pathway: str) -> str:
        """The newest instance of `pathway` for the scenario's child."""
        from pathways_engine.reading.views import list_instances

        found = [r for r in list_instances(self.engine, subject=self.scenario.subject.ref)
                 if r["pathway"] == pathway]
        if not found:
            raise InvalidArgument(f"the child has no {pathway!r} pathway (no handover "
                                  "started one)")
        return str(found[-1]["id"])

    def _act(self, step: Step, moment: dt.datetime, target: str) -> None:
        from pathways_engine.runtime import clocks
        from pathways_engine.runtime import corrections
        from pathways_engine.runtime import sharing
        from pathways_engine.runtime.withdraw import withdraw

        role = step.role or "scenario"
        if step.event:
            self.engine.advance(target, step.event, actor="scenario", role=role,
                                values=step.set, note=step.note, at=moment)
            return
        with self.engine.step(target) as context:
            if step.withdraw:
                withdraw(context, reason=step.reason, actor="scenario", role=role)
                return
            if step.correct:
                corrections.correct(context, step.set, reason=step.reason, actor="scenario",
                                    role=role)
                return
            if step.undo:
                corrections.undo(context, reason=step.reason, actor="scenario", role=role)
                return
            if step.consent:
                sharing.record_basis(context, sector=step.consent.sector,
                                     basis=step.consent.basis, reference=step.consent.reference,
                                     actor="scenario", role=role,
                                     withdraw=step.consent.withdraw)
            elif step.assign:
                sharing.assign(context, role=step.assign.role, party=step.assign.party,
                               actor="scenario", acting_role=role)
            else:
                operation = getattr(clocks, step.action)
                operation(context, getattr(step, step.action), reason=step.reason,
                          actor="scenario", role=role)

    def _check(self, label: str, expect: Expect | None, error: str | None,
               target: str | None = None) -> None:
        from pathways_engine.reading.views import show

        fail = self.outcome.failures.append
        if expect is None or expect.error is None:
            if error is not None:
                fail(f"{label}: refused: {error}")
                return
        elif error is None:
            fail(f"{label}: expected the step to be refused ({expect.error!r}), but it was applied")
        elif expect.error not in error:
            fail(f"{label}: refused with {error!r}, expected a message containing {expect.error!r}")
        data = show(self.engine, target or self.instance)
        messages = self._new_messages()
        if expect is None:
            return
        if expect.pathways:
            self._check_pathways(label, expect.pathways)
        if expect.state is not None and data["state"] != expect.state:
            fail(f"{label}: state: expected {expect.state}, got {data['state']}")
        if expect.status is not None and data["status"] != expect.status:
            fail(f"{label}: status: expected {expect.status}, got {data['status']}")
        deadlines = {d["name"]: d for d in data["deadlines"]}
        for name, wanted in expect.deadlines.items():
            got = deadlines.get(name)
            if got is None:
                fail(f"{label}: deadline {name}: expected one, there is none "
                     f"(there are: {', '.join(deadlines) or 'none'})")
                continue
            self._check_deadline(f"{label}: deadline {name}", wanted, got)
        if expect.notifications is not None:
            wanted_set = [(n.template, n.to, n.trigger) for n in expect.notifications]
            got_set = [(m["template"], m["role"], m["trigger"]) for m in messages]
            missing = [w for w in wanted_set if not any(_matches(w, g) for g in got_set)]
            extra = [g for g in got_set if not any(_matches(w, g) for w in wanted_set)]
            if missing or extra:
                fail(f"{label}: notifications: missing {_names(missing)}; unexpected {_names(extra)}")

    def _check_pathways(self, label: str, wanted: dict[str, Any]) -> None:
        from pathways_engine.reading.views import list_instances

        mine = list_instances(self.engine, subject=self.scenario.subject.ref)
        for pathway, wanted_pathway in wanted.items():
            found = [r for r in mine if r["pathway"] == pathway]
            if not found:
                self.outcome.failures.append(
                    f"{label}: pathway {pathway}: expected one, the child has none")
                continue
            for key in ("state", "status"):
                want = getattr(wanted_pathway, key)
                if want is not None and found[-1][key] != want:
                    self.outcome.failures.append(f"{label}: pathway {pathway} {key}: "
                                                 f"expected {want}, got {found[-1][key]}")

    def _check_deadline(self, label: str, wanted: Any, got: dict[str, Any]) -> None:
        fail = self.outcome.failures.append
        if wanted.due is not None and not _same_instant(wanted.due, got["due_local"]):
            fail(f"{label} due: expected {wanted.due}, got {got['due_local']}")
        if wanted.status is not None and got["status"] != wanted.status:
            fail(f"{label} status: expected {wanted.status}, got {got['status']}")
        warning = got["rule"].get("warning") or ""
        if wanted.warning is not None and wanted.warning not in warning:
            fail(f"{label} warning: expected {wanted.warning!r}, got {warning or 'none'!r}")
        for key in ("occurrence", "extensions"):
            if getattr(wanted, key) is not None and got[key] != getattr(wanted, key):
                fail(f"{label} {key}: expected {getattr(wanted, key)}, got {got[key]}")
        if wanted.rule is not None and got["rule"]["status"] != wanted.rule:
            fail(f"{label} rule: expected {wanted.rule}, got {got['rule']['status']}")

    def _verify_trail(self) -> None:
        """Every scenario ends with `audit verify` of the child's pathways: the rows must be
        what the trails say."""
        from pathways_engine.audit.verify import verify
        from pathways_engine.reading.views import list_instances

        ids = [r["id"] for r in list_instances(self.engine, subject=self.scenario.subject.ref)]
        for found in verify(self.db, ids).breaks:
            self.outcome.failures.append(f"audit trail: {found}")

    def _keep_messages(self) -> None:
        """What every queued message says, for tests that read them as a recipient would."""
        from pathways_engine.store import views

        with self.db.reading() as connection:
            self.outcome.messages = [
                {"instance": m.instance_id, "template": m.template, "language": m.language,
                 "subject": m.subject, "text": m.body_text} for m in
                views.outbox_rows(connection, None)]

    def _new_messages(self) -> list[dict[str, Any]]:
        """Messages queued since the last check, each with the trigger that queued it."""
        from pathways_engine.store import reads
        from pathways_engine.store import views

        with self.db.reading() as connection:
            rows = views.outbox_rows(connection, None)
            causes: dict[str, dict[str, Any]] = {}
            for instance_id in sorted({m.instance_id for m in rows}):
                causes.update(reads.queued_requests(connection, instance_id))
        new = [{"template": m.template, "role": m.role,
                "trigger": causes.get(m.idempotency_key, {}).get("trigger")}
               for m in rows][self.seen_messages:]
        self.seen_messages += len(new)
        return new

    def _time(self, text: str, previous: dt.datetime | None, line: int) -> dt.datetime:
        relative = _RELATIVE.match(text.strip())
        if relative:
            if previous is None:
                raise DefinitionError([Problem(str(self.path), line,
                                               "the start needs an absolute time")])
            return self._add(previous, int(relative.group(1)), relative.group(2))
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise DefinitionError([Problem(
                str(self.path), line, f"time {text!r}: use ISO 8601 (2027-01-05T09:00) or a "
                "relative time such as '+3 working days'")]) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=self.zone)
        if previous is not None and moment < previous:
            raise DefinitionError([Problem(str(self.path), line,
                                           f"time {text} is before the previous step")])
        return moment

    def _add(self, previous: dt.datetime, amount: int, unit: str) -> dt.datetime:
        from pathways_engine.rules.calendars import CalendarRules
        from pathways_engine.rules.calendars import WorkCalendar

        local = previous.astimezone(self.zone)
        if unit.startswith("working"):
            calendar = WorkCalendar(self.definition.spec.country, CalendarRules())
            day = calendar.add_working_days(local.date(), amount)
            return dt.datetime.combine(day, local.time(), tzinfo=self.zone)
        if unit.startswith(("minute", "hour")):
            hours = amount if unit.startswith("hour") else amount / 60
            return previous + dt.timedelta(hours=hours)
        days = amount * (7 if unit.startswith("week") else 1)
        return dt.datetime.combine(local.date() + dt.timedelta(days=days), local.time(),
                                   tzinfo=self.zone)


def _same_instant(wanted: str, got: str) -> bool:
    try:
        return dt.datetime.fromisoformat(wanted) == dt.datetime.fromisoformat(got)
    except ValueError:
        return wanted == got


def _matches(wanted: tuple[str, str, str | None], got: tuple[str, str, str | None]) -> bool:
    return wanted[0] == got[0] and wanted[1] == got[1] and wanted[2] in (None, got[2])


def _names(items: list[tuple[str, str, str | None]]) -> str:
    if not items:
        return "none"
    return ", ".join(f"{t} to {r}" + (f" ({trigger})" if trigger else "") for t, r, trigger in items)
