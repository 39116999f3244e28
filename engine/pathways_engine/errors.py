"""Every error a user can cause, each with a one-line message written for that user.

The CLI maps `PathwaysError` to exit 1 (3 for `ConcurrentModification`) at one boundary,
so no command formats errors itself. Messages say what is wrong and, where it helps, what
to do or which names were meant ("did you mean ...").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for a close match, else ''."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


MAX_SHOWN = 40


def shown(value: object) -> str:
    """A value as an error quotes it: never more than a short prefix of a long one."""
    if isinstance(value, str) and len(value) > MAX_SHOWN:
        return f"{value[:MAX_SHOWN]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN + 2 else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


def names(choices: Iterable[str]) -> str:
    items = sorted(set(choices))
    return ", ".join(items) if items else "(none)"


class PathwaysError(Exception):
    """Root of every error pathways reports to a user; `exit_code` is what the CLI returns."""

    exit_code = 1


# ---------------------------------------------------------------- definitions


@dataclass(frozen=True)
class Problem:
    """One problem in a definition file, reported as `file:line: message`."""

    path: str
    line: int
    message: str
    warning: bool = False  # reported, but the definition may go live

    def __str__(self) -> str:
        message = " ".join(self.message.split("\n"))  # one problem, one line, always
        return f"{self.path}:{self.line}: {'warning: ' if self.warning else ''}{message}"


class DefinitionError(PathwaysError):
    """A definition (or its templates, or a parties file) is invalid; carries every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.message))
        first = self.problems[0] if self.problems else Problem("?", 0, "invalid definition")
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        super().__init__(f"{first}{suffix}")


class UnknownPathway(PathwaysError, LookupError):
    def __init__(self, pathway: str, known: Iterable[str], version: int | None = None) -> None:
        known = list(known)
        what = f"{pathway!r} version {version}" if version is not None else repr(pathway)
        super().__init__(
            f"unknown pathway {what}{did_you_mean(pathway, known)}; available: {names(known)}"
        )


# ---------------------------------------------------------------- instances


class InstanceNotFound(PathwaysError, LookupError):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(
            f"no pathway instance {instance_id!r}; `pathways list` shows the instances there are"
        )


class EventNotAllowed(PathwaysError):
    def __init__(self, event: str, state: str, allowed: Iterable[str], known: Iterable[str],
                 engine_only: Iterable[str] = ()) -> None:
        allowed = sorted(set(allowed))
        hint = did_you_mean(event, allowed or known)
        if event in set(known):
            lead = f"event {event!r} is not allowed in state {state!r}"
        else:
            lead = f"unknown event {event!r}{hint}"
            hint = ""
        waits = sorted(set(engine_only))
        tail = (f" (the step waits for {names(waits)}, which only the engine sends)"
                if waits else "")
        super().__init__(f"{lead}{hint}; allowed now: {names(allowed)}{tail}")


class RoleNotAllowed(PathwaysError, PermissionError):
    def __init__(self, role: str, event: str, allowed: Iterable[str]) -> None:
        super().__init__(
            f"role {role!r} may not send {event!r}; it may be sent by: {names(allowed)}"
        )


class UnknownRole(PathwaysError, LookupError):
    def __init__(self, role: str, known: Iterable[str]) -> None:
        known = list(known)
        super().__init__(
            f"unknown role {role!r}{did_you_mean(role, known)}; roles of this pathway: {names(known)}"
        )


class GuardFailed(PathwaysError):
    def __init__(self, event: str, conditions: list[str]) -> None:
        conds = " / ".join(repr(c) for c in conditions)
        super().__init__(f"cannot send {event!r}: the condition {conds} is false for this instance")


class FieldError(PathwaysError, ValueError):
    """A value given with --set is missing, unknown, not allowed here or of the wrong type."""


class NotEligible(PathwaysError):
    pass


class InvalidArgument(PathwaysError, ValueError):
    """A command argument is wrong (a time in the future, an unparseable date, ...)."""


class ConcurrentModification(PathwaysError):
    exit_code = 3

    def __init__(self, instance_id: str, expected: int, actual: int | None) -> None:
        now = f"it is now at revision {actual}" if actual is not None else "it has changed"
        had = f"you had revision {expected}, " if expected else ""
        super().__init__(
            f"instance {instance_id!r} was changed by someone else ({had}{now}); nothing was "
            f"written: run `pathways show {instance_id}` and try again"
        )


class DuplicateInstance(PathwaysError):
    def __init__(self, subject: str, pathway: str, running: str) -> None:
        super().__init__(
            f"subject {subject!r} already has a running {pathway!r} ({running}); send it the "
            f"next event, or give --allow-duplicate to start a second one on purpose"
        )


class IdempotencyConflict(PathwaysError):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was used for a different request; a retry must repeat "
            f"the request exactly, a new request needs a new key"
        )


class IdempotencyRace(IdempotencyConflict):
    """The key was taken by a request committed while this one ran (PostgreSQL lets both
    check it first); the caller may still find it was the same request (engine.start)."""


class InstanceFinished(PathwaysError):
    def __init__(self, instance_id: str, state: str, status: str = "completed") -> None:
        how = {"completed": "has finished", "withdrawn": "was withdrawn",
               "cancelled": "was cancelled"}.get(status, f"is {status}")
        super().__init__(
            f"instance {instance_id!r} {how} in state {state!r}; no event can be sent to it"
        )


# ---------------------------------------------------------------- configuration


class NotAuthorized(PathwaysError):
    """The actor is unknown or does not hold the role it claims (exit 4)."""

    exit_code = 4


class ConfigError(PathwaysError):
    """The database URL, a parties/actors file or an environment setting is wrong."""


class MissingExtra(ConfigError):
    """An optional part (PostgreSQL, FHIR, DOT diagrams) whose package is not installed: say
    which extra brings it instead of an ImportError's traceback."""

    def __init__(self, purpose: str, extra: str) -> None:
        super().__init__(f"{purpose} needs the {extra!r} extra: pip install "
                         f"'nordic-pathways[{extra}]'")


class DatabaseError(PathwaysError):
    """The database cannot be reached or is not a pathways database."""


class NotificationError(PathwaysError):
    """A template, recipient or channel problem found while composing or delivering."""


class OutboxMessageNotFound(PathwaysError, LookupError):
    def __init__(self, message_id: int) -> None:
        super().__init__(f"no outbox message {message_id}; `pathways outbox` lists them")
