"""Turning a notification request into outbox rows, in the engine's transaction.

One row per recipient role, keyed by an idempotency key (cause + role), so composing the same
cause twice writes nothing new. Personal data (name, personal identity number, fields marked
`personal`) goes into a message only when the instance records consent or a statutory basis
for the recipient's sector (domain.md §5); otherwise the message carries the pseudonymous
reference and where to look the case up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from pathways_engine.definition.loader import Definition
from pathways_engine.errors import NotificationError
from pathways_engine.ports import CaseView
from pathways_engine.ports import NotificationRequest
from pathways_engine.ports import Outgoing

from .parties import Parties
from .parties import Party
from .rendering import Rendered
from .rendering import render
from .wording import local_time

MESSAGE_DOMAIN = "pathways.invalid"


def message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{MESSAGE_DOMAIN}>"


def case_link(case_url: str | None, instance_id: str, subject_ref: str) -> str:
    """Where the reader opens the case: the deployment's own system if it says how
    (`case_url:` with {instance} and {subject}), else the pathway's id to quote."""
    if not case_url:
        return instance_id
    return case_url.format(instance=instance_id, subject=subject_ref)


def deadline_title(definition: Definition, name: str | None, language: str) -> str | None:
    if name is None:
        return None
    spec = definition.spec
    for deadline in [*spec.deadlines, *(d for s in spec.states.values() for d in s.deadlines)]:
        if deadline.name == name and deadline.title:
            return _label(deadline.title, language)
    return name.replace("_", " ")


def build_context(case: CaseView, request: NotificationRequest, role: str, party: Party | None,
                  basis: str | None, case_url: str | None = None) -> dict[str, Any]:
    """What a template sees. `deadline` and `due_at` (id, UTC) stay for templates written
    before `deadline_title` and `due_local` existed."""
    definition, instance, subject = case.definition, case.instance, case.subject
    spec = definition.spec
    personal_fields = {n for n, f in spec.fields.items() if f.personal}
    data = {k: v for k, v in instance.data.items() if basis or k not in personal_fields}
    language = party.language if party else spec.fallback_language
    if language not in spec.languages:
        language = spec.fallback_language
    state = spec.states[instance.state]
    zone = spec.timezone
    return {
        "pathway": {"id": spec.id, "version": spec.version,
                    "title": spec.title.get(language) or spec.title[next(iter(spec.title))]},
        "instance": {"id": instance.id, "state": instance.state,
                     "state_title": (state.title or {}).get(language, instance.state),
                     "started_at": instance.started_at.isoformat()},
        "subject": {"ref": subject.ref,
                    "name": subject.name if basis else None,
                    "personal_id": subject.personal_id if basis else None,
                    "birth_date": subject.birth_date.isoformat() if basis and subject.birth_date
                    else None},
        "personal_data": basis is not None,
        "data": data,
        "recipient": {"role": role, "role_label": _label(spec.roles[role].label, language),
                      "name": party.name if party else None},
        "trigger": request.trigger, "name": request.name, "at": request.at.isoformat(),
        "at_local": local_time(request.at, zone, language),
        "deadline": request.extra.get("deadline"), "due_at": request.extra.get("due_at"),
        "deadline_title": deadline_title(definition, request.extra.get("deadline"), language),
        "due_local": local_time(request.extra.get("due_at"), zone, language),
        "deadline_warning": request.extra.get("warning"),
        "lookup": case_link(case_url, instance.id, subject.ref),
    }


def _label(texts: dict[Any, str], language: str) -> str:
    return texts.get(language) or next(iter(texts.values()))


class Composer:
    """The engine's MessageComposer: one rendered message per recipient role."""

    def __init__(self, parties: Parties | None = None, case_url: str | None = None) -> None:
        self.parties = parties
        self.case_url = case_url

    def recipient(self, case: CaseView, role: str) -> Party | None:
        """The assigned party, else the instance's area's party, else the role's default."""
        return self._party(case.assigned.get(role), role, case.instance.area)

    def preview(self, case: CaseView, template: str, role: str, language: str | None,
                at: dt.datetime, deadline: tuple[str, dt.datetime] | None,
                personal: bool) -> Rendered:
        """Render `template` as `role` would receive it for this instance now; writes nothing.

        Uses the recipient and the open deadline the real message would see; personal data
        appears only if `personal` (the caller has authorized the reader) and the instance
        has a basis for the role's sector.
        """
        party = self.recipient(case, role)
        basis = case.bases.get(case.definition.spec.roles[role].sector) if personal else None
        extra = {"deadline": deadline[0], "due_at": deadline[1].isoformat()} if deadline else {}
        request = NotificationRequest(template, (role,), "preview", case.instance.state, at,
                                      "preview", extra)
        context = build_context(case, request, role, party, basis, self.case_url)
        return render(case.definition, template, language or (party.language if party else None),
                      context)

    def compose(self, case: CaseView, request: NotificationRequest) -> list[Outgoing]:
        roles = list(request.roles)
        if request.trigger == "escalation":
            roles += [r for r in request.extra.get("escalate_to", []) if r not in roles]
        messages = []
        for role in roles:
            key = f"{request.cause_key}:{role}"
            party = self.recipient(case, role)
            basis = case.bases.get(case.definition.spec.roles[role].sector)
            context = build_context(case, request, role, party, basis, self.case_url)
            rendered = render(case.definition, request.template,
                              party.language if party else None, context)
            messages.append(Outgoing(
                idempotency_key=key, message_id=message_id(key), role=role,
                party=party.id if party else None,
                channel=party.channel if party else "console",
                address=party.email if party else None, language=rendered.language,
                template=request.template, subject=rendered.subject, body_text=rendered.text,
                body_html=rendered.html, personal_data=basis is not None, legal_basis=basis))
        return messages

    def _party(self, assigned: str | None, role: str, area: str | None) -> Party | None:
        if self.parties is None:
            return None
        party = self.parties.get(assigned) if assigned else None
        return party or self.parties.for_role(role, area)


def sample_context(definition: Definition, role: str, language: str | None = None) -> dict[str, Any]:
    """A context with every key set, for `pathways check` and `pathways render`."""
    spec = definition.spec
    data: dict[str, Any] = {}
    for name, field in spec.fields.items():
        data[name] = {"bool": True, "int": 1, "decimal": "1.5", "text": "tekst",
                      "date": "2026-12-01", "enum": (field.values or ["x"])[0]}[field.type]
    language = language or spec.fallback_language
    return {
        "pathway": {"id": spec.id, "version": spec.version, "title": _label(spec.title, language)},
        "instance": {"id": "0123456789abcdef", "state": spec.initial_state,
                     "state_title": spec.initial_state, "started_at": "2026-11-02T08:00:00+00:00"},
        "subject": {"ref": "C-0001", "name": "Navn Navnesen", "personal_id": "010101-0000",
                    "birth_date": "2015-01-01"},
        "personal_data": True, "data": data,
        "recipient": {"role": role, "role_label": role, "name": "Modtager"},
        "trigger": "enter", "name": spec.initial_state, "at": "2026-11-02T08:00:00+00:00",
        "at_local": local_time("2026-11-02T08:00:00+00:00", spec.timezone, language),
        "deadline": "deadline", "due_at": "2026-11-20T22:59:59+00:00",
        "deadline_title": "Frist", "due_local": local_time("2026-11-20T22:59:59+00:00",
                                                          spec.timezone, language),
        "deadline_warning": None,
        "lookup": "https://sag.example.dk/0123456789abcdef",
    }


def ensure_known_role(definition: Definition, role: str) -> None:
    if role not in definition.spec.roles:
        raise NotificationError(f"unknown role {role!r} in pathway {definition.spec.id!r}")
