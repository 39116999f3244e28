"""Assignments and consents: audited changes to who is told what about one instance."""

from __future__ import annotations

from pathways_engine import audit
from pathways_engine.errors import ConfigError
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import UnknownRole
from pathways_engine.errors import did_you_mean
from pathways_engine.runtime import get_instance
from pathways_engine.store.models import Assignment
from pathways_engine.store.models import Consent
from pathways_engine.store.models import bump_revision
from sqlalchemy import update

from .app import App


def assign_party(app: App, instance_id: str, role: str, party: str, actor: str) -> None:
    parties = app.parties
    if parties is None:
        raise ConfigError("no parties file: give --parties FILE or set PATHWAYS_PARTIES")
    if parties.get(party) is None:
        raise InvalidArgument(f"unknown party {party!r}{did_you_mean(party, parties.by_id)}")
    now = app.clock.now()
    with app.may("write").engine.writing(instance_id) as session:
        instance = get_instance(session, instance_id, lock=True)
        spec = app.engine.compiled_for(session, instance.content_hash).spec
        if role not in spec.roles:
            raise UnknownRole(role, spec.roles)
        acting_role = app.actors.authorize_any(actor, set(spec.roles))
        bump_revision(instance)
        session.execute(update(Assignment).where(Assignment.instance_id == instance_id,
                                                 Assignment.role == role).values(active=False))
        session.add(Assignment(instance_id=instance_id, role=role, party=party, at=now,
                               actor=actor, active=True))
        audit.append(session, instance, at=now, recorded_at=now, actor=actor, role=acting_role,
                     kind="assignment", changes={"role": role, "party": party})


def record_consent(app: App, instance_id: str, sector: str, basis: str, reference: str,
                   actor: str, withdraw: bool) -> None:
    now = app.clock.now()
    with app.may("write").engine.writing(instance_id) as session:
        instance = get_instance(session, instance_id, lock=True)
        spec = app.engine.compiled_for(session, instance.content_hash).spec
        acting_role = app.actors.authorize_any(actor, set(spec.roles))
        bump_revision(instance)
        sectors = {r.sector for r in spec.roles.values()}
        if sector not in sectors:
            raise InvalidArgument(f"unknown sector {sector!r}{did_you_mean(sector, sectors)}; "
                                  f"sectors of this pathway: {', '.join(sorted(sectors))}")
        if withdraw:
            session.execute(update(Consent).where(
                Consent.instance_id == instance_id, Consent.sector == sector,
                Consent.withdrawn_at.is_(None)).values(withdrawn_at=now))
        else:
            session.add(Consent(instance_id=instance_id, sector=sector, basis=basis,
                                reference=reference, given_by=actor, at=now, withdrawn_at=None))
        audit.append(session, instance, at=now, recorded_at=now, actor=actor, role=acting_role,
                     kind="consent_withdrawn" if withdraw else "consent",
                     changes={"sector": sector, "basis": basis, "reference": reference})
