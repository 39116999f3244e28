"""Who is told what: consents, statutory bases and assignments, as steps with audit entries.

A legal basis to share personal data is recorded per recipient sector (domain.md §5). The
definition's `sharing:` says which roles may record consent for a sector and which statutory
provisions exist, with the roles each lets share; anything else is refused, so a GP cannot
declare a "statutory" basis for psychiatry that no law gives. Withdrawing consent cancels the
unsent messages whose personal data that consent covered, and queues each again without it.
"""

from __future__ import annotations

from typing import Any

from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import NotAuthorized
from pathways_engine.errors import UnknownRole
from pathways_engine.errors import did_you_mean
from pathways_engine.errors import names
from pathways_engine.ports import NotificationRequest
from pathways_engine.store import reads

from .step import SYSTEM_ACTOR
from .step import SYSTEM_ROLE
from .step import StepContext

BASES = ("consent", "statutory")
_NEW_ID = 1 << 62  # orders a basis recorded in this batch after every stored one


def sectors_of(step: StepContext) -> list[str]:
    return sorted({role.sector for role in step.spec.roles.values()})


def may_record(step: StepContext, sector: str, basis: str, reference: str, role: str) -> str:
    """The reference as the definition spells it, if `role` may record this basis; else raise."""
    spec = step.spec
    sectors = sectors_of(step)
    if sector not in sectors:
        raise InvalidArgument(f"unknown sector {sector!r}{did_you_mean(sector, sectors)}; "
                              f"sectors of this pathway: {', '.join(sectors)}")
    if role not in spec.roles:
        raise UnknownRole(role, spec.roles)
    rules = spec.sharing.get(sector)
    if basis == "consent":
        allowed = list(rules.consent) if rules and rules.consent is not None else list(spec.roles)
        if role not in allowed:
            raise NotAuthorized(f"role {role!r} may not record consent for sharing with "
                                f"{sector!r}; the definition lets these record it: {names(allowed)}")
        return reference
    declared = rules.statutory if rules else []
    if not declared:
        raise InvalidArgument(f"pathway {spec.id!r} declares no statutory basis for sharing with "
                              f"{sector!r}; record consent, or ask the coordinator to declare "
                              f"the provision under `sharing: {sector}: statutory:`")
    match = next((b for b in declared if b.reference.casefold() == reference.casefold()), None)
    if match is None:
        known = [b.reference for b in declared]
        raise InvalidArgument(f"{reference!r} is not a statutory basis for sharing with "
                              f"{sector!r}{did_you_mean(reference, known)}; declared: "
                              f"{'; '.join(known)}")
    if role not in match.roles:
        raise NotAuthorized(f"role {role!r} may not record a statutory basis ({match.reference}) "
                            f"for sharing with {sector!r}; it names: {names(match.roles)}")
    return match.reference


def record_basis(step: StepContext, *, sector: str, basis: str, reference: str, actor: str,
                 role: str, withdraw: bool = False) -> None:
    """Record or withdraw consent or a statutory basis for sharing with `sector`."""
    reference = may_record(step, sector, basis, reference, role)
    case, instance, now = step.case, step.instance, step.now
    changes = {"sector": sector, "basis": basis, "reference": reference}
    if not withdraw:
        step.bump()
        case.consents.append((_NEW_ID + len(case.consents), sector, basis, reference))
        step.writes.consents.append({"instance_id": instance.id, "sector": sector, "basis": basis,
                                     "reference": reference, "given_by": actor, "at": now,
                                     "withdrawn_at": None})
        step.audit("consent", at=now, actor=actor, role=role, changes=changes,
                   effects={"consent": [sector, basis, reference]})
        return
    if not any(c[1] == sector and c[2] == basis for c in case.consents):
        raise InvalidArgument(f"there is no {basis} to withdraw for sharing with {sector!r}")
    step.bump()
    case.consents = [c for c in case.consents if not (c[1] == sector and c[2] == basis)]
    step.writes.withdrawals.append({"b_i": instance.id, "b_sector": sector, "b_basis": basis,
                                    "b_at": now})
    step.audit("consent_withdrawn", at=now, actor=actor, role=role, changes=changes,
               effects={"withdrawn": [sector, basis]})
    if basis == "consent" and sector not in case.bases:
        _recall(step, sector)


def _recall(step: StepContext, sector: str) -> None:
    """Cancel unsent messages that carried personal data on the withdrawn consent; requeue."""
    roles = {name for name, spec in step.spec.roles.items() if spec.sector == sector}
    pending = [m for m in reads.pending_messages(step.batch.connection, step.instance.id)
               if m.role in roles and m.personal_data and
               (m.legal_basis or "").startswith("consent:")]
    if not pending:
        return
    reason = f"consent withdrawn for {sector}"
    step.writes.cancelled_messages += [{"b_id": m.id, "b_reason": reason} for m in pending]
    step.audit("notification_cancelled", at=step.now, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE,
               changes={"messages": [m.id for m in pending], "reason": reason},
               effects={"cancelled": [m.idempotency_key for m in pending]})
    causes = reads.queued_requests(step.batch.connection, step.instance.id)
    for message in pending:
        cause = causes.get(message.idempotency_key, {})
        extra: dict[str, Any] = {**cause.get("extra", {}), "escalate_to": []}
        request = NotificationRequest(
            template=message.template, roles=(message.role,),
            trigger=str(cause.get("trigger", "resend")), name=str(cause.get("name", "")),
            at=step.now, cause_key=f"{message.idempotency_key}:withdrawn", extra=extra)
        step.queue(request, reason=f"replaces message {message.id}: {reason}")


def assign(step: StepContext, *, role: str, party: str, actor: str, acting_role: str,
           for_child: bool = False) -> None:
    """Name `party` for `role` on this instance - or, `for_child`, on every pathway of the
    child, present and future (seed 001's kontaktpersonordning); audited here."""
    if role not in step.spec.roles:
        raise UnknownRole(role, step.spec.roles)
    step.bump()
    step.case.assigned[role] = party
    if for_child:
        step.case.subject_assigned[role] = party
        step.writes.subject_assignments.append({
            "subject_id": step.instance.subject_id, "role": role, "party": party,
            "at": step.now, "actor": actor, "active": True})
        step.audit("assignment", at=step.now, actor=actor, role=acting_role,
                   changes={"role": role, "party": party, "for": "child"},
                   effects={"assigned_for_child": [role, party]})
        return
    step.writes.assignments.append({"instance_id": step.instance.id, "role": role,
                                    "party": party, "at": step.now, "actor": actor,
                                    "active": True})
    step.audit("assignment", at=step.now, actor=actor, role=acting_role,
               changes={"role": role, "party": party}, effects={"assigned": [role, party]})
