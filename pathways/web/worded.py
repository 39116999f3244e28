"""The engine's things as the pages say them to a team lead: an instance's deadlines and
history (what happened in words of her language, a step by its title, from which state to
which, who did it by name and role, every time in the pathway's own zone) and the names of
pathways, states, roles and parties in the overdue list and the report. The engine's kinds,
ids and UTC stamps stay in `show --json` and the API, for programs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pathways_engine.audit import notes
from pathways_notifications.wording import local_time

# the audit's kinds (engine runtime/*.py `audit(...)`) and the statuses `show` gives
WORDS: dict[str, dict[str, str]] = {
    "en": {"start": "Started", "handover": "Handed over to another pathway",
           "joined": "Joined from another pathway", "notification_queued": "Message queued",
           "notification_sent": "Message sent", "notification_cancelled": "Messages cancelled",
           "timer_reminder": "Reminder", "timer_due": "Deadline reached",
           "timer_escalation": "Escalated", "timer_timeout": "Timed out",
           "timeout_not_applied": "Time-out not applied", "assignment": "Assigned",
           "consent": "Consent recorded", "consent_withdrawn": "Consent withdrawn",
           "correction": "Corrected", "undo": "Step undone", "withdrawn": "Withdrawn",
           "migration": "Moved to a new version", "deadline_extended": "Deadline extended",
           "deadline_paused": "Deadline paused", "deadline_resumed": "Deadline resumed",
           "signal_refused": "Signal refused",
           "active": "active", "completed": "completed", "pending": "open", "due": "due today",
           "overdue": "overdue", "paused": "paused", "met": "met", "met_early": "met early",
           "met_late": "met late", "unmet": "not met", "timed_out": "timed out",
           "cancelled": "cancelled", "what": "What", "when": "When", "who": "Who",
           "closed": "Closed", "responsible": "Responsible", "system": "the system",
           "note": "Note", "whole": "(whole pathway)", "no_area": "(no area)"},
    "da": {"start": "Startet", "handover": "Overdraget til et andet forløb",
           "joined": "Kommet fra et andet forløb", "notification_queued": "Besked lagt i kø",
           "notification_sent": "Besked sendt", "notification_cancelled": "Beskeder annulleret",
           "timer_reminder": "Påmindelse", "timer_due": "Fristen er nået",
           "timer_escalation": "Eskaleret", "timer_timeout": "Tiden er udløbet",
           "timeout_not_applied": "Udløb ikke gennemført", "assignment": "Tildelt",
           "consent": "Samtykke registreret", "consent_withdrawn": "Samtykke trukket tilbage",
           "correction": "Rettet", "undo": "Trin fortrudt", "withdrawn": "Trukket tilbage",
           "migration": "Flyttet til ny version", "deadline_extended": "Frist forlænget",
           "deadline_paused": "Frist sat på pause", "deadline_resumed": "Frist genoptaget",
           "signal_refused": "Signal afvist",
           "active": "aktivt", "completed": "afsluttet", "pending": "åben",
           "due": "udløber i dag", "overdue": "overskredet", "paused": "på pause",
           "met": "overholdt", "met_early": "overholdt før tid", "met_late": "overholdt for sent",
           "unmet": "ikke overholdt", "timed_out": "udløbet", "cancelled": "annulleret",
           "what": "Hvad", "when": "Hvornår", "who": "Hvem", "closed": "Lukket",
           "responsible": "Ansvarlig", "system": "systemet",
           "note": "Note", "whole": "(hele forløbet)", "no_area": "(intet område)"},
    "nb": {"start": "Startet", "handover": "Overført til et annet forløp",
           "joined": "Kommet fra et annet forløp", "notification_queued": "Melding lagt i kø",
           "notification_sent": "Melding sendt", "notification_cancelled": "Meldinger kansellert",
           "timer_reminder": "Påminnelse", "timer_due": "Fristen er nådd",
           "timer_escalation": "Eskalert", "timer_timeout": "Tiden er ute",
           "timeout_not_applied": "Utløp ikke gjennomført", "assignment": "Tildelt",
           "consent": "Samtykke registrert", "consent_withdrawn": "Samtykke trukket tilbake",
           "correction": "Rettet", "undo": "Steg angret", "withdrawn": "Trukket tilbake",
           "migration": "Flyttet til ny versjon", "deadline_extended": "Frist forlenget",
           "deadline_paused": "Frist satt på pause", "deadline_resumed": "Frist gjenopptatt",
           "signal_refused": "Signal avvist",
           "active": "aktivt", "completed": "avsluttet", "pending": "åpen",
           "due": "går ut i dag", "overdue": "oversittet", "paused": "på pause",
           "met": "overholdt", "met_early": "overholdt før tiden",
           "met_late": "overholdt for sent", "unmet": "ikke overholdt", "timed_out": "utløpt",
           "cancelled": "kansellert", "what": "Hva", "when": "Når", "who": "Hvem",
           "closed": "Lukket", "responsible": "Ansvarlig", "system": "systemet",
           "note": "Notat", "whole": "(hele forløpet)", "no_area": "(uten område)"},
    "sv": {"start": "Startat", "handover": "Överlämnat till ett annat förlopp",
           "joined": "Kommit från ett annat förlopp", "notification_queued": "Meddelande köat",
           "notification_sent": "Meddelande skickat",
           "notification_cancelled": "Meddelanden avbrutna", "timer_reminder": "Påminnelse",
           "timer_due": "Tidsgränsen är nådd", "timer_escalation": "Eskalerat",
           "timer_timeout": "Tiden har gått ut", "timeout_not_applied": "Utgång inte genomförd",
           "assignment": "Tilldelat", "consent": "Samtycke registrerat",
           "consent_withdrawn": "Samtycke återkallat", "correction": "Rättat",
           "undo": "Steg ångrat", "withdrawn": "Återkallat",
           "migration": "Flyttat till ny version", "deadline_extended": "Tidsgräns förlängd",
           "deadline_paused": "Tidsgräns pausad", "deadline_resumed": "Tidsgräns återupptagen",
           "signal_refused": "Signal avvisad",
           "active": "aktivt", "completed": "avslutat", "pending": "öppen",
           "due": "löper ut i dag", "overdue": "försenad", "paused": "pausad",
           "met": "hållen", "met_early": "hållen i förtid", "met_late": "hållen för sent",
           "unmet": "inte hållen", "timed_out": "utgången", "cancelled": "avbruten",
           "what": "Vad", "when": "När", "who": "Vem", "closed": "Stängd",
           "responsible": "Ansvarig", "system": "systemet",
           "note": "Anteckning", "whole": "(hela förloppet)", "no_area": "(inget område)"},
}


# the engine's own notes (pathways_engine/audit/notes.py), by form, as the pages say them
NOTES: dict[str, dict[str, str]] = {
    "en": {notes.HANDED_OVER: "Handed over from {pathway}",
           notes.JOINED: "Linked to the handover from {pathway}",
           notes.CARRIED: "Came along from {pathway}", notes.ANSWERED: "Answer from {pathway}",
           notes.ENDED: "Ended along with {pathway}", notes.PASSED: "The deadline passed: {deadline}",
           "started_from": "Started from", "handed_to": "Handed over to"},
    "da": {notes.HANDED_OVER: "Overdraget fra {pathway}",
           notes.JOINED: "Knyttet til overdragelsen fra {pathway}",
           notes.CARRIED: "Fulgte med fra {pathway}", notes.ANSWERED: "Svar fra {pathway}",
           notes.ENDED: "Afsluttet sammen med {pathway}",
           notes.PASSED: "Fristen blev overskredet: {deadline}",
           "started_from": "Startet fra", "handed_to": "Overdraget til"},
    "nb": {notes.HANDED_OVER: "Overført fra {pathway}",
           notes.JOINED: "Knyttet til overføringen fra {pathway}",
           notes.CARRIED: "Fulgte med fra {pathway}", notes.ANSWERED: "Svar fra {pathway}",
           notes.ENDED: "Avsluttet sammen med {pathway}",
           notes.PASSED: "Fristen ble oversittet: {deadline}",
           "started_from": "Startet fra", "handed_to": "Overført til"},
    "sv": {notes.HANDED_OVER: "Överlämnat från {pathway}",
           notes.JOINED: "Kopplat till överlämnandet från {pathway}",
           notes.CARRIED: "Följde med från {pathway}", notes.ANSWERED: "Svar från {pathway}",
           notes.ENDED: "Avslutat tillsammans med {pathway}",
           notes.PASSED: "Tidsgränsen passerades: {deadline}",
           "started_from": "Startat från", "handed_to": "Överlämnat till"},
}


def said(text: Any, lang: str, fallback: str) -> str:
    """A definition's text in the reader's language, else its first, else `fallback`."""
    if not text:
        return fallback
    return str(text.get(lang) or next(iter(text.values()), fallback))


def word(key: str, lang: str) -> str:
    """A kind or status in words; one this module does not know, as its id reads."""
    return WORDS[lang].get(key) or key.replace("_", " ")


class Worded:
    """One instance's `show` data, worded for the reader (see the module docstring).

    `view`: the read view of the instance's own definition snapshot (its states and roles);
    `steps`: each event's title, from the pathway's file where the server has it."""

    def __init__(self, data: dict[str, Any], view: Any, steps: dict[str, Any], actors: Any,
                 parties: Any, lang: str, pathway: Callable[[str], str] = str) -> None:
        self.data, self.view, self.steps, self.actors, self.lang = data, view, steps, actors, lang
        self.parties = parties.by_id if parties is not None else {}
        self.zone = str(data.get("timezone") or "UTC")
        self.words = WORDS[lang]
        self.pathway = pathway  # a pathway's title by its id
        parent = data.get("parent") or {}
        self.pathways = {c["id"]: c["pathway"] for c in data.get("children") or []}
        if parent.get("pathway"):
            self.pathways[parent["id"]] = parent["pathway"]

    def word(self, key: str) -> str:
        return word(key, self.lang)

    def time(self, at: str | None) -> str:
        return local_time(at, self.zone, self.lang) or "-"

    def state(self, name: str | None) -> str:
        if name is None:
            return "-"
        titles = self.view.state_titles if self.view is not None else {}
        return said(titles.get(name), self.lang, name)

    def role(self, role: str | None) -> str:
        if not role or role == "system":
            return ""
        labels = (self.view.role_labels or {}) if self.view is not None else {}
        return said(labels.get(role), self.lang, role)

    def who(self, actor: str, role: str | None) -> str:
        if actor == "system":
            return word("system", self.lang)
        person = self.actors.by_id.get(actor) if self.actors is not None else None
        name = person.name if person is not None and person.name else actor
        label = self.role(role)
        return f"{name} ({label})" if label else name

    def event(self, event: str) -> str:
        """The step's title; none for one without a title, which its move then says."""
        return said(self.steps.get(event), self.lang, "")

    def history(self) -> list[dict[str, str]]:
        rows = []
        for h in self.data["history"]:
            what = self.event(h["event"]) if h["kind"] == "transition" and h["event"] else \
                word(h["kind"], self.lang)
            moved = (f"{self.state(h.get('from'))} \u2192 {self.state(h.get('to'))}"
                     if h.get("from") else self.state(h.get("to"))) \
                if h.get("from") or h.get("to") else self.detail(h)
            what = f"{what}: {moved}" if what and moved else what or moved
            note, link = self.note(h)
            # a handover's entries carry the role the new pathway starts in, not the one its
            # actor acted in (the step before says that): the name alone
            handed = h["kind"] == "handover" or (h["kind"] == "start" and notes.read(
                "start", h.get("note"), h.get("changes"), h.get("actor")) is not None)
            rows.append({"seq": str(h["seq"]), "when": self.time(h["at"]),
                         "who": self.who(h["actor"], None if handed else h.get("role")),
                         "what": what, "note": note, "link": link})
        return rows

    def note(self, entry: dict[str, Any]) -> tuple[str, str]:
        """A person's note as written; the engine's own in words, with the instance it names
        (to link to) where the reader may follow it."""
        written = entry.get("note") or ""
        found = notes.read(entry["kind"], written, entry.get("changes"), entry.get("actor"))
        if found is None:
            return written, ""
        form, facts = found
        instance = facts.get("instance", "")
        if instance and instance not in self.pathways:
            return written, ""  # not this pathway's parent or child: the note as written
        titles = (self.view.deadline_titles or {}) if self.view is not None else {}
        deadline = facts.get("deadline", "")
        return NOTES[self.lang][form].format(
            pathway=self.pathway(self.pathways[instance]) if instance else "",
            deadline=said(titles.get(deadline), self.lang, deadline)), instance

    def related(self) -> list[dict[str, str]]:
        """The pathway that handed this one over, and those it handed over to: a child's
        way from sector to sector."""
        parent = self.data.get("parent")
        said_as = NOTES[self.lang]
        out = [{"label": said_as["started_from"], "id": parent["id"],
                "title": self.pathway(parent["pathway"]) if parent.get("pathway") else
                parent["id"], "status": ""}] if parent else []
        out += [{"label": said_as["handed_to"], "id": c["id"],
                 "title": self.pathway(c["pathway"]), "status": self.word(c["status"])}
                for c in self.data.get("children") or []]
        return out

    def detail(self, entry: dict[str, Any]) -> str:
        """Whom a message went to, which deadline a timer or a pause was for: never the
        entry's changed values, which may be personal data."""
        changes = entry.get("changes") or {}
        kind = entry["kind"]
        if kind == "notification_sent" and changes.get("party"):
            party = self.parties.get(changes["party"])
            return str(party.name if party is not None else changes["party"])
        if kind == "notification_queued" and changes.get("to"):
            return ", ".join(self.role(str(role)) for role in changes["to"])
        if kind == "handover" and changes.get("pathway"):
            return self.pathway(str(changes["pathway"]))
        if kind.startswith("timer_") or kind.startswith("deadline_"):
            name = changes.get("deadline")
            titles = (self.view.deadline_titles or {}) if self.view is not None else {}
            return said(titles.get(name), self.lang, str(name)) if name else ""
        return ""

    def deadlines(self) -> list[dict[str, str]]:
        return [{"title": d["title"], "status": word(d["status"], self.lang),
                 "late": "late" if d["status"] in ("overdue", "unmet", "timed_out",
                                                  "met_late") else "",
                 "responsible": self.role(d.get("responsible")) or "-",
                 "due": self.time(d.get("due_local")), "closed": self.time(d.get("closed_at"))
                 if d.get("closed_at") else "-"}
                for d in self.data["deadlines"] if not d.get("superseded")]


def loaded_specs(app: Any) -> dict[str, Any]:
    """The pathways' files by id; none while a file does not load. A coordinator's broken
    file is `pathways check`'s to report: it must not take down the pages that read running
    instances (from their stored snapshots), which then name things by their ids."""
    from pathways_engine.errors import DefinitionError

    try:
        return {d.spec.id: d.spec for d in app.registry.all()}
    except DefinitionError:
        return {}


class Names:
    """Pathways, states, roles and parties as their titles say them in the reader's
    language (the engine's ids where a title is missing, or a pathway has left the
    definitions)."""

    def __init__(self, app: Any, lang: str) -> None:
        self.app, self.lang = app, lang
        self.specs = loaded_specs(app)
        self.parties = app.parties.by_id if app.parties is not None else {}

    def time(self, pathway: str, at: str) -> str:
        """`at` in the pathway's zone, as its reader writes dates."""
        spec = self.specs.get(pathway)
        return local_time(at, spec.timezone if spec else "UTC", self.lang) or at

    def pathway(self, pathway: str) -> str:
        spec = self.specs.get(pathway)
        return said(spec.title, self.lang, pathway) if spec else pathway

    def group(self, by: str, pathway: str, value: Any) -> str:
        from pathways_engine.reading.reporting import NO_AREA
        from pathways_engine.reading.reporting import WHOLE_PATHWAY

        if value is None:
            return "-"
        if value in (WHOLE_PATHWAY, NO_AREA):
            return word("whole" if value == WHOLE_PATHWAY else "no_area", self.lang)
        spec = self.specs.get(pathway)
        if by == "step" and spec is not None and value in spec.states:
            return said(spec.states[value].title, self.lang, str(value))
        if by == "role" and spec is not None and value in spec.roles:
            return said(spec.roles[value].label, self.lang, str(value))
        if by == "organisation" and value in self.parties:
            return str(self.parties[value].name)
        return str(value)

    def responsible(self, shown: dict[str, Any]) -> str:
        """Whose turn it is in one of a child's pathways: the party (assigned, else routed
        by the parties file, as the overdue page finds it) by its name, else the role."""
        from pathways.cases import party_of

        pathway, role = str(shown["pathway"]), shown.get("responsible")
        party = shown.get("responsible_party") or party_of(
            self.app, role, shown.get("area"), dict(shown.get("assigned") or {}))
        return self.group("organisation", pathway, party) if party else \
            self.group("role", pathway, role)

