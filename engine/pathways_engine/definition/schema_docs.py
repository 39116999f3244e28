"""What the editor shows for a key whose model field carries no description of its own.

`pathways schema` (and the committed `docs/pathway.schema.json`) puts one on every property, so
a coordinator writing YAML with the YAML language server sees what each key means; a test
fails when a new key has neither a description in spec.py nor one here.
"""

from __future__ import annotations

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "PathwaySpec": {
        "id": "The pathway's id, lower_snake_case; instances and other pathways name it.",
        "title": "The pathway's name by language, e.g. {da: ..., en: ...}.",
        "description": "What the pathway is for, by language.",
        "country": "DK, NO or SE: the national holiday calendar of every deadline.",
        "timezone": "The IANA zone of every deadline and `--at`, e.g. Europe/Copenhagen.",
        "languages": "The languages its texts and templates are written in.",
        "fallback_language": "The language of a recipient whose own the pathway lacks.",
        "sources": "The documents the agreement comes from (seeds/, domain.md).",
        "roles": "The parties of the pathway: each role's label and sector.",
        "eligibility": "Who may be started on it: ages and whether a birth date is required.",
        "fields": "The values the pathway carries, by name.",
        "start": "Who may start it and the fields a start needs and takes.",
        "states": "The steps of the pathway, by id: one initial, at least one final.",
        "transitions": "The events that move the pathway, or happen within a step.",
        "notifications": "Which messages go to which roles when something happens.",
    },
    "DeadlineSpec": {
        "calendar": "How the national calendar applies: closed days, extra closed days.",
        "escalate": "When an unmet deadline is escalated, at what time, and to whom.",
        "repeat": "A recurring deadline: every N after the first, until the step is left.",
        "extend": "Who may extend it, by how much, how many times (a reason is required).",
        "pause": "Who may pause and resume the legal clock (the paused time is reported).",
    },
    "EligibilitySpec": {
        "min_age_years": "The youngest age (whole years, inclusive) that may be started.",
        "birth_date_required": "Refuse a start without the child's birth date.",
    },
    "FieldSpec": {
        "type": "bool, int, decimal, text, date or enum.",
        "label": "The field's name by language, for forms and messages.",
        "description": "What the field holds, by language.",
        "min": "The smallest value an int or decimal may take.",
        "max": "The largest value an int or decimal may take.",
    },
    "HandoverSpec": {
        "name": "The handover's name, unique in the definition; both trails show it.",
        "when": "The event sent ({event: E}) or the state entered ({enter: S}) that hands over.",
    },
    "HandoverWhen": {
        "event": "Hand over when this event is sent.",
        "enter": "Hand over when this state is entered.",
    },
    "NotificationSpec": {
        "when": "What queues the message: started, enter, event, or a deadline's wake-up.",
        "template": "The template folder under templates/ (one file per language).",
        "to": "The roles that receive it; each gets its own message.",
    },
    "RoleSpec": {
        "label": "The role's name by language, as recipients and caseworkers read it.",
    },
    "StartSpec": {
        "requires": "Fields a start must give.",
        "accepts": "Fields a start may give.",
    },
    "StateSpec": {
        "initial": "The step every instance starts in (exactly one state).",
        "final": "A step that ends the pathway.",
        "responsible": "The role whose turn it is in this step (messages, overdue, reports).",
        "title": "The step's name by language.",
        "description": "What happens in the step, by language.",
        "deadlines": "Deadlines that start when the step is entered.",
    },
    "TransitionSpec": {
        "event": "The event's name, e.g. refer_bup; `pathways advance ID EVENT` sends it.",
        "from": "The state or states it may be sent in.",
        "requires": "Fields the event must give.",
        "accepts": "Fields the event may give.",
        "title": "The event's name by language.",
    },
    "VariantSpec": {
        "duration": "The deadline's length while this rule is in force.",
        "status": "The rule's legal status: law, proposal, guideline, local_agreement, ...",
        "source": "Where the rule comes from.",
    },
    "WhenSpec": {
        "started": "When the pathway starts.",
        "enter": "When this state is entered.",
        "event": "When this event is sent.",
        "deadline": "On a wake-up of this deadline (with kind).",
        "kind": "reminder, due, escalation or timeout.",
    },
}
