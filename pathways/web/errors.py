"""pathways errors as HTTP answers: the same one-line message the CLI prints, a status code
that says what kind of mistake it is, never a stack trace."""

from __future__ import annotations

from pathways_engine import errors

# most specific first: the first class an error is an instance of gives its status
STATUS: list[tuple[type[errors.PathwaysError], int]] = [
    (errors.NotAuthorized, 403),
    (errors.InstanceNotFound, 404),
    (errors.UnknownPathway, 404),
    (errors.OutboxMessageNotFound, 404),
    (errors.ConcurrentModification, 409),
    (errors.IdempotencyConflict, 409),
    (errors.DuplicateInstance, 409),
    (errors.InstanceFinished, 409),
    (errors.FieldError, 422),
    (errors.GuardFailed, 422),
    (errors.EventNotAllowed, 422),
    (errors.RoleNotAllowed, 403),
    (errors.NotEligible, 422),
    (errors.DatabaseError, 503),
    (errors.MissingExtra, 501),
    (errors.ConfigError, 500),
]


def status_of(error: errors.PathwaysError) -> int:
    return next((code for kind, code in STATUS if isinstance(error, kind)), 400)
