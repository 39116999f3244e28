"""Assignments and consents from the CLI: who is told what about one instance, audited steps.

The deployment files decide who may do it (the actors file, and the parties file for who may
be assigned); the definition decides which role may record which legal basis
(runtime/sharing.py). The actor's area is checked under the instance's lock.
"""

from __future__ import annotations

from pathways_engine.errors import ConfigError
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import PathwaysError
from pathways_engine.errors import did_you_mean
from pathways_engine.errors import names
from pathways_engine.runtime import sharing
from pathways_engine.runtime.step import StepContext
from pathways_engine.runtime.step import fingerprint

from .app import App


def _acting_role(app: App, step: StepContext, actor: str, role: str | None) -> str:
    if role is not None:
        app.actors.authorize(actor, role)
        return role
    return app.actors.authorize_any(actor, set(step.spec.roles))


def assign_party(app: App, instance_id: str, role: str, party: str, actor: str,
                 acting_role: str | None = None, for_child: bool = False,
                 idempotency_key: str | None = None) -> None:
    """Name `party` for `role`; with `idempotency_key` a retry of the same request does
    nothing (and the same key for another request is refused)."""
    parties = app.parties
    if parties is None:
        raise ConfigError("no parties file: give --parties FILE or set PATHWAYS_PARTIES")
    found = parties.get(party)
    if found is None:
        raise InvalidArgument(f"unknown party {party!r}{did_you_mean(party, parties.by_id)}")
    if role not in found.roles:
        serving = [p.id for p in parties.by_id.values() if role in p.roles]
        raise InvalidArgument(f"party {party!r} does not serve role {role!r} (the parties file "
                              f"gives it {', '.join(found.roles)}); parties for {role!r}: "
                              f"{names(serving)}")
    app.actors.known(actor)
    with app.may("write").engine.step(instance_id) as step:
        held = _acting_role(app, step, actor, acting_role)
        app.actors.check_area(actor, step.instance.area, instance_id)
        request = fingerprint(kind="assign", instance=instance_id, role=role, party=party,
                              actor=actor, acting_role=acting_role, for_child=for_child)
        if idempotency_key is not None and step.replayed(idempotency_key, request) is not None:
            return
        sharing.assign(step, role=role, party=party, actor=actor, acting_role=held,
                       for_child=for_child)
        if idempotency_key is not None:
            step.remember(idempotency_key, "assign", request, {"id": instance_id})


def record_consent(app: App, instance_id: str, sector: str, basis: str, reference: str,
                   actor: str, withdraw: bool, role: str | None = None,
                   idempotency_key: str | None = None) -> None:
    """Record (or withdraw) a basis for sharing; `idempotency_key` as in `assign_party`."""
    actors = app.actors
    actors.known(actor)
    with app.may("write").engine.step(instance_id) as step:
        actors.check_area(actor, step.instance.area, instance_id)
        if role is not None:
            actors.authorize(actor, role)
            candidates = [role]
        else:
            candidates = [r for r in actors.known(actor).roles if r in step.spec.roles]
            if not candidates:
                actors.authorize_any(actor, set(step.spec.roles))  # raises: no role here
        request = fingerprint(kind="consent", instance=instance_id, sector=sector, basis=basis,
                              reference=reference, actor=actor, withdraw=withdraw, role=role)
        if idempotency_key is not None and step.replayed(idempotency_key, request) is not None:
            return
        refusal: PathwaysError | None = None
        for candidate in candidates:  # the first role the definition lets record this basis
            try:
                sharing.may_record(step, sector, basis, reference, candidate)
            except PathwaysError as exc:
                refusal = refusal or exc
                continue
            sharing.record_basis(step, sector=sector, basis=basis, reference=reference,
                                 actor=actor, role=candidate, withdraw=withdraw)
            if idempotency_key is not None:
                step.remember(idempotency_key, "consent", request, {"id": instance_id})
            return
        assert refusal is not None
        raise refusal
