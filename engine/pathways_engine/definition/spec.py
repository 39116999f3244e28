"""The definition format: frozen, behaviour-free models of a pathway file.

This is the single source of both validation and `pathways schema` (the JSON Schema editors
use). What it validates runs as parts.py's plain objects, which a step builds without
importing pydantic; tests check that the two declare the same fields. Cross-references
between parts (a transition naming a state, a guard naming a field) are checked in
`validate.py`, which can report them all at once with lines.
"""

from __future__ import annotations

import threading
from typing import Annotated
from typing import Any
from typing import Literal
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from pathways_engine.rules.durations import parse_duration

Lang = Literal["da", "nb", "sv", "en"]
Country = Literal["DK", "NO", "SE"]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Text = Annotated[dict[Lang, str], Field(min_length=1)]
FieldType = Literal["bool", "int", "decimal", "text", "date", "enum"]
MAX_VERSION = 2_147_483_647  # what every supported database stores in an INTEGER column
ClosedDay = Literal["none", "warn", "roll_forward", "roll_back", "se_1930_173"]
Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                             description="A local time of day, HH:MM.")]
LegalStatus = Literal["law", "guideline", "local_agreement", "proposal"]


class _Strict(BaseModel):
    """Frozen model that names the allowed keys when it meets an unknown one."""

    # Validators are built on first validation only: a stored snapshot is rebuilt without
    # them (rebuild.py), and building them for the whole format costs ~90 ms a command.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False,
                              defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = {f.alias or name for name, f in cls.model_fields.items()}
            unknown = [k for k in data if k not in allowed]
            if unknown:
                raise PydanticCustomError(
                    "unknown_key",
                    "unknown key {key}; allowed keys here: {allowed}",
                    {"key": repr(unknown[0]), "allowed": ", ".join(sorted(allowed))},
                )
        return data


def _check_duration(value: str, allow_zero: bool = False) -> str:
    parse_duration(value, allow_zero=allow_zero)
    return value


class RoleSpec(_Strict):
    label: Text
    sector: Identifier = Field(
        description="Sector the role belongs to; consent and legal bases for sharing "
        "personal data are recorded per sector (domain.md §5)."
    )


class EligibilitySpec(_Strict):
    min_age_years: int | None = Field(default=None, ge=0, le=130)
    max_age_years: int | None = Field(
        default=None, ge=0, le=130, description="Inclusive: 17 means up to and including 17."
    )
    birth_date_required: bool = False


class FieldSpec(_Strict):
    type: FieldType
    label: Text | None = None
    description: str | None = None
    values: list[Identifier] | None = Field(default=None, description="Allowed values of an enum.")
    min: float | None = None
    max: float | None = None
    personal: bool = Field(
        default=False,
        description="Holds personal data: only shown to recipients with consent or a legal basis.",
    )

    @model_validator(mode="after")
    def _enum_values(self) -> FieldSpec:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs a non-empty list of values")
        if self.type != "enum" and self.values is not None:
            raise ValueError("only an enum field takes values")
        if self.type not in {"int", "decimal"} and (self.min is not None or self.max is not None):
            raise ValueError("only int and decimal fields take min and max")
        return self


class CalendarSpec(_Strict):
    extra_closed_days: list[Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]] = (
        Field(default_factory=list, description="MM-DD days that are closed every year, e.g. 12-24.")
    )
    holiday_categories: list[Literal["public", "de_facto", "optional", "bank"]] = Field(
        default_factory=lambda: ["public"],  # type: ignore[arg-type]
        description="Which of the `holidays` package's categories close a day; Sweden's "
        "de_facto category holds midsommarafton, julafton and nyårsafton.",
    )
    saturday_is_working_day: bool = Field(
        default=False, description="Norway's `virkedag` may include Saturday (domain.md §4.2).")
    roll_forward: bool = Field(
        default=False,
        description="Deprecated: write closed_day: roll_forward (or se_1930_173 for Sweden).",
    )
    closed_day: ClosedDay | None = Field(
        default=None,
        description="What a calendar-day deadline that falls on a closed day does: none (stays, "
        "the default), warn (stays, and staff are told it is a holiday), roll_forward (moves to "
        "the next working day), roll_back (to the working day before), se_1930_173 (Lag "
        "1930:173 §2: rolls forward over Sundays, holidays, Saturdays, midsommarafton, julafton "
        "and nyårsafton - no need to list them).",
    )



class EscalationSpec(_Strict):
    after: str = Field(description="How long overdue before escalating, e.g. '2 working days'.")
    to: list[Identifier] = Field(min_length=1, description="Roles told besides the notification's.")
    at: Clock | None = Field(default=None, description="Fire at this local time on the day the "
                             "escalation falls, e.g. 08:00 for the start of the working day "
                             "(default: the end of that day, or `after` hours for hours).")

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        return _check_duration(value)


class Happening(_Strict):
    """Events sent and states entered that meet, cancel or open a deadline."""

    events: list[Identifier] = Field(default_factory=list, description="Any of these events.")
    enter: list[Identifier] = Field(default_factory=list,
                                    description="Entering any of these states.")

    @model_validator(mode="after")
    def _not_empty(self) -> Happening:
        if not self.events and not self.enter:
            raise ValueError("name at least one event (events:) or state (enter:)")
        return self



class RepeatSpec(_Strict):
    every: str = Field(description="After each occurrence the next falls due this much later, "
                       "counted from the previous due date, e.g. '12 weeks'.")

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        return _check_duration(value)


class ExtendSpec(_Strict):
    by: str = Field(description="How much later each extension makes it due, e.g. '6 weeks'.")
    times: int = Field(default=1, ge=1, le=20, description="How often it may be extended.")
    roles: list[Identifier] = Field(min_length=1, description="Roles that may extend it.")

    @field_validator("by")
    @classmethod
    def _by(cls, value: str) -> str:
        return _check_duration(value)


class PauseSpec(_Strict):
    roles: list[Identifier] = Field(min_length=1, description="Roles that may pause and resume "
                                    "the clock (e.g. the family asked for a later date).")


class VariantSpec(_Strict):
    """Another rule for the same deadline, in force for anchor dates in its range."""

    effective_from: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = Field(
        default=None, description="First anchor date (YYYY-MM-DD) the rule applies to.")
    effective_until: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = Field(
        default=None, description="Last anchor date (inclusive) the rule applies to.")
    switch: Identifier | None = Field(
        default=None, description="Applies only where the deployment turns this switch on "
        "(`switches:` in the deployment file): a bill not yet in force.")
    duration: str
    status: LegalStatus
    source: str = Field(min_length=3)

    @field_validator("duration")
    @classmethod
    def _duration_ok(cls, value: str) -> str:
        return _check_duration(value, allow_zero=True)


class DeadlineSpec(_Strict):
    name: Identifier = Field(description="Unique across the pathway (state and whole-pathway "
                             "deadlines share one namespace).")
    duration: str = Field(description="'30 days', '10 working days', '24 hours', '1 month', "
                          "'P30D'; '0 days' is the same day.")
    counts_from: str = Field(
        default="state_entered",
        alias="from",
        pattern=r"^(state_entered|pathway_started|field:[a-z][a-z0-9_]*)$",
        description="state_entered, pathway_started or field:<date field>.",
    )
    calendar: CalendarSpec = Field(default_factory=CalendarSpec)
    status: LegalStatus = Field(description="law, guideline, local_agreement or proposal.")
    source: str = Field(min_length=3, description="Where the rule is stated (cite it).")
    responsible: Identifier | None = Field(
        default=None, description="The role it is on (default: the state's responsible role).")
    title: Text | None = Field(default=None, description="What staff read instead of the name.")
    reminders: list[str] = Field(
        default_factory=list, description="Remind this long before the due time; day-based "
        "reminders fire at 08:00 local time on their day.")
    remind_at_due: bool = Field(default=True, description="Wake up at the due time ('due').")
    due_time: Clock | None = Field(
        default=None, description="For day-based deadlines: fall due at this local time on the "
        "due date instead of at the end of the day (23:59:59).")
    escalate: EscalationSpec | None = None
    on_timeout: Identifier | None = Field(
        default=None, description="Event the system sends when the deadline passes."
    )
    met_by: Happening | None = Field(
        default=None, description="An obligation: met when one of these happens, not by "
        "leaving its state; still open when the pathway ends, it is recorded unmet.")
    cancelled_by: Happening | None = Field(
        default=None, description="Cancelled (no longer owed) when one of these happens.")
    opened_by: Happening | None = Field(
        default=None, description="Whole-pathway deadlines only: opened when one of these "
        "happens instead of at the start.")
    not_before: str | None = Field(
        default=None, description="A window: meeting it earlier than this after its start is "
        "recorded met_early (e.g. feedback within 2-3 weeks: not_before 2 weeks, 3 weeks).")
    repeat: RepeatSpec | None = None
    extend: ExtendSpec | None = None
    pause: PauseSpec | None = None
    variants: list[VariantSpec] = Field(
        default_factory=list, description="Other rules for this deadline in force by date or by "
        "deployment switch; the first that applies at the anchor date wins, else this one.")

    @field_validator("duration")
    @classmethod
    def _duration_ok(cls, value: str) -> str:
        return _check_duration(value, allow_zero=True)

    @field_validator("not_before")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        return None if value is None else _check_duration(value)

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, value: list[str]) -> list[str]:
        for item in value:
            _check_duration(item)
        return value


class StateSpec(_Strict):
    initial: bool = False
    final: bool = False
    responsible: Identifier | None = None
    title: Text | None = None
    description: Text | None = None
    deadlines: list[DeadlineSpec] = Field(default_factory=list)


class StartSpec(_Strict):
    roles: list[Identifier] = Field(min_length=1, description="Roles that may start it.")
    requires: list[Identifier] = Field(default_factory=list)
    accepts: list[Identifier] = Field(default_factory=list)
    allow_parallel: bool = Field(
        default=False,
        description="Allow more than one running instance of this pathway per subject "
        "(otherwise a second start is refused, naming the running one).")


class TransitionSpec(_Strict):
    event: Identifier
    source: Identifier | list[Identifier] = Field(alias="from")
    target: Identifier | None = Field(default=None, alias="to",
                                      description="The state it leads to (not with internal).")
    internal: bool = Field(
        default=False, description="Happens in its state without leaving it: the state's "
        "deadlines keep running and nothing is entered; what it meets (met_by events) is met. "
        "E.g. 'the §90 letter is sent'.")
    roles: list[Identifier] = Field(
        default_factory=list, description="Roles that may send it; empty means only the system."
    )
    guard: str | None = Field(default=None, description="Condition over fields, e.g. 'level >= 3'.")
    requires: list[Identifier] = Field(default_factory=list)
    accepts: list[Identifier] = Field(default_factory=list)
    title: Text | None = None

    @model_validator(mode="after")
    def _target(self) -> TransitionSpec:
        if self.internal and self.target is not None:
            raise ValueError("an internal transition stays in its state: leave out `to:`")
        if not self.internal and self.target is None:
            raise ValueError("give `to:` (the state it leads to), or `internal: true` for an "
                             "event that happens without leaving the state")
        return self



class StatutoryBasisSpec(_Strict):
    reference: str = Field(min_length=3, description="The provision, as it is recorded and "
                           "shown, e.g. 'Barnets lov §133 (underretningspligt)'.")
    roles: list[Identifier] = Field(min_length=1,
                                    description="Roles the provision lets share without consent.")
    source: str | None = Field(default=None, description="Where the provision is stated.")


class SharingSpec(_Strict):
    """Who may record a legal basis for sharing personal data with one recipient sector."""

    consent: list[Identifier] | None = Field(
        default=None, description="Roles that may record (and withdraw) consent given by the "
        "family or the young person; omitted: every role of the pathway.")
    statutory: list[StatutoryBasisSpec] = Field(
        default_factory=list, description="Provisions that allow sharing without consent; "
        "only these can be recorded as a statutory basis.")


class WhenSpec(_Strict):
    started: bool | None = None
    enter: Identifier | None = None
    event: Identifier | None = None
    deadline: Identifier | None = None
    kind: Literal["reminder", "due", "escalation", "timeout"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> WhenSpec:
        given = [k for k in ("started", "enter", "event", "deadline") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of started, enter, event, deadline")
        if self.kind is not None and self.deadline is None:
            raise ValueError("kind goes with deadline")
        return self


class NotificationSpec(_Strict):
    when: WhenSpec
    template: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    to: list[Identifier] = Field(min_length=1)


class HandoverWhen(_Strict):
    event: Identifier | None = None
    enter: Identifier | None = None

    @model_validator(mode="after")
    def _one(self) -> HandoverWhen:
        if (self.event is None) == (self.enter is None):
            raise ValueError("give exactly one of event, enter")
        return self



class HandoverReturn(_Strict):
    event: Identifier = Field(description="The event this pathway receives (as the system) when "
                              "the other one completes; a transition for it must leave the "
                              "state the handover waits in.")
    fields: dict[Identifier, Identifier] = Field(
        default_factory=dict, description="This pathway's field: the other pathway's field, "
        "carried back with the event.")


class HandoverSpec(_Strict):
    """Starting another pathway for the same child, in the same step (a BPMN call activity)."""

    name: Identifier
    when: HandoverWhen
    start: Identifier = Field(description="The pathway to start.")
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION,
                                description="Its version (default: the newest).")
    role: Identifier = Field(alias="as", description="The role of the other pathway that "
                             "starts it (it must be one of its start roles).")
    condition: str | None = Field(default=None, alias="if",
                                  description="Hand over only when this holds, e.g. "
                                  "'age_years < 18'.")
    carry: dict[Identifier, Identifier] = Field(
        default_factory=dict, description="The other pathway's field: this pathway's field, "
        "given at its start.")
    consents: list[Identifier] = Field(
        default_factory=list, description="Sectors whose consent or statutory basis recorded "
        "here goes along (audited in the other pathway's trail).")
    returns: HandoverReturn | None = Field(
        default=None, description="Wait: when the other pathway completes, this one receives "
        "the event with the fields. Without it both go on alongside.")
    on_end: Literal["continue", "cancel"] = Field(
        default="continue", description="What happens to the other pathway if this one ends "
        "or is withdrawn while it runs: continue, or cancel it (audited in both).")


class PathwaySpec(_Strict):
    id: Identifier
    version: int = Field(description="A whole number from 1 to 2147483647; raise it whenever "
                         "the pathway or its templates change.")
    title: Text
    description: Text | None = None
    country: Country
    timezone: str
    languages: list[Lang] = Field(min_length=1)
    fallback_language: Lang
    sources: list[str] = Field(default_factory=list)
    roles: dict[Identifier, RoleSpec] = Field(min_length=1)
    eligibility: EligibilitySpec = Field(default_factory=EligibilitySpec)
    fields: dict[Identifier, FieldSpec] = Field(default_factory=dict)
    start: StartSpec
    states: dict[Identifier, StateSpec] = Field(min_length=2)
    transitions: list[TransitionSpec] = Field(min_length=1)
    deadlines: list[DeadlineSpec] = Field(
        default_factory=list, description="Whole-pathway deadlines, running until a final state."
    )
    notifications: list[NotificationSpec] = Field(default_factory=list)
    handovers: list[HandoverSpec] = Field(
        default_factory=list, description="Other pathways this one starts for the same child "
        "(a handover between sectors), with what goes along and what comes back.")
    sharing: dict[Identifier, SharingSpec] = Field(
        default_factory=dict, description="By recipient sector: who may record consent and "
        "which statutory bases exist (domain.md §5). A sector not listed takes consent from "
        "any role and no statutory basis.")

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if not 1 <= value <= MAX_VERSION:
            raise ValueError(f"must be a whole number from 1 to {MAX_VERSION}, not {value}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Copenhagen)") from None
        return value



_building = threading.Lock()


def validating() -> type[PathwaySpec]:
    """PathwaySpec with every model's validators built, once, under a lock of our own.

    The models defer building them (see `_Strict`); the build pydantic starts lazily on first
    use was not thread-safe in every release this project allows (pydantic#13438), and a
    server validates definitions in several threads at once."""
    if not PathwaySpec.__pydantic_complete__:
        with _building:
            for model in _Strict.__subclasses__():
                model.model_rebuild()
    return PathwaySpec


def json_schema() -> dict[str, Any]:
    """The schema editors read; every property described (schema_docs.py fills the gaps)."""
    from .schema_docs import DESCRIPTIONS

    schema = validating().model_json_schema(by_alias=True)
    models = {"PathwaySpec": schema, **schema.get("$defs", {})}
    for model, texts in DESCRIPTIONS.items():
        for key, text in texts.items():
            prop = models[model]["properties"][key]
            prop.setdefault("description", text)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pathways definition"
    return schema
