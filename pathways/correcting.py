"""Corrections from the CLI and the API: one path, so both check the actor, audit the change
and keep a retry's answer alike (the API's took an Idempotency-Key, the CLI's took none)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .app import App


def correct_instance(app: App, instance_id: str, values: Mapping[str, Any], *, reason: str,
                     actor: str, role: str, idempotency_key: str | None = None
                     ) -> dict[str, Any]:
    """Correct fields entered wrongly (runtime/corrections.py); {id, changes}. With
    `idempotency_key` a retry of the same request answers as the first did."""
    from pathways_engine.runtime.corrections import correct as correct_fields
    from pathways_engine.runtime.step import fingerprint

    app.actors.permit(actor, "correct", role)
    with app.may("write").engine.step(instance_id) as step:
        app.actors.check_area(actor, step.instance.area, instance_id)
        request = fingerprint(kind="correct", instance=instance_id, values=values,
                              reason=reason, actor=actor, role=role)
        if idempotency_key is not None:
            stored = step.replayed(idempotency_key, request)
            if stored is not None:
                return stored
        changes = correct_fields(step, values, reason=reason, actor=actor, role=role)
        answer = {"id": instance_id, "changes": changes}
        if idempotency_key is not None:
            step.remember(idempotency_key, "correct", request, answer)
    return answer
