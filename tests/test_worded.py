"""The engine's own audit notes, read back for the pages: only the engine's, said in words."""

from __future__ import annotations

from types import SimpleNamespace

from pathways_engine.audit import notes

from pathways.web.worded import Worded

CHILD = "0123456789abcdef"


def test_the_engine_reads_back_only_the_notes_it_wrote() -> None:
    passed = notes.PASSED.format(deadline="municipal_triage")
    assert notes.read("transition", passed, {}, "system") == (
        notes.PASSED, {"deadline": "municipal_triage"})
    assert notes.read("transition", passed, {}, "ppr.anne") is None  # a person typed it
    ended = notes.ENDED.format(pathway="mistrivsel_referral", instance=CHILD, why="completed")
    assert notes.read("withdrawn", ended, {"because": "handover low_threshold_offer"}) == (
        notes.ENDED, {"pathway": "mistrivsel_referral", "instance": CHILD, "why": "completed"})
    assert notes.read("withdrawn", ended, {}) is None  # a caseworker's reason, as written
    assert notes.read("start", "handed over from the GP", {}) is None
    assert notes.read("correction", passed, {}, "system") is None


def test_a_page_says_the_engines_notes_and_keeps_a_persons() -> None:
    view = SimpleNamespace(deadline_titles={"municipal_triage": {"da": "Visitation i kommunen"}},
                           state_titles={}, role_labels={})
    data = {"timezone": "Europe/Copenhagen", "parent": {"id": CHILD, "handover": "h",
                                                        "pathway": "mistrivsel_referral"},
            "children": []}
    titles = {"mistrivsel_referral": "Henvisning"}
    worded = Worded(data, view, {}, None, None, "da", lambda pathway: titles[pathway])

    def entry(kind: str, note: str, actor: str = "system") -> dict[str, object]:
        return {"kind": kind, "note": note, "actor": actor, "changes": {}}

    assert worded.note(entry("transition", notes.PASSED.format(
        deadline="municipal_triage"))) == ("Fristen blev overskredet: Visitation i kommunen", "")
    assert worded.note(entry("consent", notes.CARRIED.format(instance=CHILD, handover="h"),
                             "dr.a")) == ("Fulgte med fra Henvisning", CHILD)
    stranger = notes.CARRIED.format(instance="fedcba9876543210", handover="h")
    assert worded.note(entry("consent", stranger, "dr.a")) == (stranger, "")  # not its parent
    assert worded.note(entry("transition", "Ringede til moren", "ppr.anne")) == (
        "Ringede til moren", "")
