"""`pathways demo`: the shipped pathways walked through a scripted scenario, with a timeline.

Simulated time runs from 2 November 2026 to January 2028 (across Christmas, Easter, both
daylight-saving changes, and a Swedish deadline moved past julafton); the sweep fires
reminders and escalations and the console channel shows the messages as they go out.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import click
from pathways_engine.ports import FixedClock
from pathways_engine.reading.views import show
from pathways_engine.runtime.sweep import tick

from .app import App
from .delivery import deliver_pending

CPH = ZoneInfo("Europe/Copenhagen")


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=CPH)


def run_demo(app: App) -> None:
    clock = FixedClock(_t("2026-11-02T08:00"))
    app.clock = clock
    engine = app.engine
    tag = secrets.token_hex(2)

    def at(when: str, what: str, action: Callable[[], object]) -> None:
        moment = _t(when)
        clock.current = max(clock.current, moment)
        sweep(moment)
        action()
        click.echo(f"{moment:%Y-%m-%d %H:%M}  {what}")
        deliver_pending(app)

    def advance(instance: str, event: str, *, actor: str, role: str, **kw: Any) -> object:
        app.actors.authorize(actor, role)  # the demo acts as the CLI would: authorized actors
        return engine.advance(instance, event, actor=actor, role=role, **kw)

    def start(pathway: str, *, actor: str, role: str, **kw: Any) -> str:
        app.actors.authorize(actor, role)
        return engine.start(pathway, actor=actor, role=role, **kw)

    def sweep(until: dt.datetime) -> None:
        summary = tick(engine, until)
        if summary.total:
            click.echo(f"{until:%Y-%m-%d %H:%M}  ⏰ sweep: {summary.total} timers fired "
                       f"({summary.fired['reminder']} reminders, {summary.fired['escalation']} "
                       f"escalations, {summary.fired['due']} due)")
            deliver_pending(app)

    click.echo("== Mistrivsel: GP -> kommune -> BUP, support while the child waits ==")
    clock.current = _t("2026-11-02T09:15")
    child = start("mistrivsel_referral", subject_ref=f"DEMO-{tag}-B1",
                         birth_date=dt.date(2013, 4, 9), actor="dr.jensen", role="gp",
                         values={"severity": "moderate", "consent_exchange": True},
                         at=_t("2026-11-02T09:15"))
    click.echo(f"2026-11-02 09:15  GP refers child {child} (severity moderate)")
    deliver_pending(app)
    handed: list[Any] = []
    at("2026-11-05T10:00", "PPR triages to the low-threshold offer: behandlingstilbud_ltt starts",
       lambda: handed.append(advance(child, "triage_to_ltt", actor="ppr.anne", role="ppr")))
    offer = handed[0].started[0]
    at("2026-11-12T13:00", "low-threshold offer: first conversation held",
       lambda: advance(offer, "forsamtale_holdt", actor="ltt.ole", role="ltt"))
    at("2026-11-19T13:00", "low-threshold offer: standardised assessment started",
       lambda: advance(offer, "afdaekning_startet", actor="ltt.ole", role="ltt"))
    at("2026-11-26T13:00", "low-threshold offer ends advising BUP; the referral pathway is told",
       lambda: advance(offer, "afslut", actor="ltt.ole", role="ltt",
                       values={"udfald": "henvist_bup"}))
    at("2026-11-27T09:00", "GP refers on to BUP",
       lambda: advance(child, "refer_bup", actor="dr.jensen", role="gp",
                       values={"referral_received": "2026-11-27"}))
    at("2026-12-30T09:00", "BUP accepts after the §82 b deadline passed",
       lambda: advance(child, "bup_accepts", actor="bup.lise", role="bup"))

    click.echo("\n== Pregnancy: level 3, ambulant birth, health visitor takes over ==")
    clock.current = max(clock.current, _t("2026-11-03T10:00"))
    mother = start("pregnancy_communication", subject_ref=f"DEMO-{tag}-G1",
                          actor="dr.jensen", role="gp", at=min(clock.current, _t("2027-01-01T10:00")),
                          values={"vulnerability_level": 3, "expected_birth_date": "2027-05-20"})
    click.echo(f"2026-11-03 10:00  GP first examination {mother}: level 3 (common language)")
    at("2026-11-03T10:05", "level 3: interdisciplinary care, health visitor told",
       lambda: advance(mother, "assess_interdisciplinary", actor="dr.jensen", role="gp"))
    born: list[Any] = []
    at("2027-05-18T04:30", "birth: the pathway after the birth (postnatal_follow_up) starts",
       lambda: born.append(advance(mother, "birth", actor="jm.sofie", role="midwife",
                                   values={"birth_date": "2027-05-18"})))
    baby = born[0].started[0]
    at("2027-05-18T09:00", "birth notification sent to the health visitor service",
       lambda: advance(baby, "birth_notification_sent", actor="fode.ida", role="birthplace"))
    at("2027-05-18T15:00", "ambulant discharge: 24-hour contact deadline starts",
       lambda: advance(baby, "discharge", actor="fode.ida", role="birthplace",
                       values={"ambulant": True}))
    at("2027-05-19T11:00", "family contacted; health visitor takes over",
       lambda: advance(baby, "family_contacted", actor="jm.sofie", role="midwife"))

    click.echo("\n== Discharge from BUP to the municipality ==")
    clock.current = max(clock.current, _t("2027-05-20T09:00"))
    teen = start("discharge_to_municipality", subject_ref=f"DEMO-{tag}-B2",
                        birth_date=dt.date(2011, 8, 1), actor="bup.lise", role="bup",
                        at=_t("2027-05-20T09:00"),
                        values={"discharge_date": "2027-05-28", "consent_to_municipality": True})
    click.echo(f"2027-05-20 09:00  BUP plans discharge {teen}")
    at("2027-05-21T12:00", "discharge notice sent to the municipality and GP",
       lambda: advance(teen, "send_discharge_notice", actor="bup.lise", role="bup"))
    at("2027-06-14T12:00", "follow-up agreed with a contact person (after an escalation)",
       lambda: advance(teen, "agree_follow_up", actor="kommune.per", role="municipality",
                              values={"follow_up_plan": "Ugentlige samtaler, skolestøtte"}))
    sweep(_t("2027-06-30T12:00"))

    click.echo("\n== Sweden: discharge and SIP; Lag 1930:173 moves the deadline past julafton ==")
    clock.current = max(clock.current, _t("2027-12-13T10:00"))
    youth = start("sip_utskrivning", subject_ref=f"DEMO-{tag}-S1", birth_date=dt.date(2012, 3, 1),
                  actor="avd.dalarna", role="slutenvard", at=_t("2027-12-13T10:00"),
                  values={"beraknad_utskrivning": "2027-12-21"}, area="borlange")
    click.echo(f"2027-12-13 10:00  admitted to the BUP ward in Region Dalarna {youth}")
    deliver_pending(app)
    at("2027-12-13T16:00", "admission notice sent within 24 hours",
       lambda: advance(youth, "skicka_inskrivningsmeddelande", actor="avd.dalarna",
                       role="slutenvard"))
    at("2027-12-21T11:00", "ready for discharge: SIP call due 27 Dec (24 Dec is julafton)",
       lambda: advance(youth, "meddela_utskrivningsklar", actor="avd.dalarna", role="slutenvard",
                       values={"insatser_region_och_kommun": True}))
    at("2027-12-27T09:00", "SIP meeting called, with the young person's consent",
       lambda: advance(youth, "kalla_till_sip", actor="fvk.borlange", role="fast_vardkontakt",
                       values={"samtycke_sip": True}))
    sweep(_t("2028-01-10T12:00"))

    click.echo("\n== Norway: drøftingsmøte, BUP, and a barnekoordinator in the municipality ==")
    clock.current = max(clock.current, _t("2028-01-17T09:00"))
    norway = start("bup_samhandlingsforlop", subject_ref=f"DEMO-{tag}-N1",
                   birth_date=dt.date(2018, 2, 3), actor="kommune.ingrid", role="kommune",
                   at=_t("2028-01-17T09:00"), area="haugesund",
                   values={"alvorlighet": "alvorlig", "rett_til_barnekoordinator": True})
    click.echo(f"2028-01-17 09:00  the municipality raises a concern {norway}")
    at("2028-01-19T13:00", "consultation meeting with BUP agreed",
       lambda: advance(norway, "drofting_avtalt", actor="kommune.ingrid", role="kommune"))
    at("2028-01-24T10:00", "the GP refers: assessment within 10 working days",
       lambda: advance(norway, "henvis", actor="fastlege.nils", role="fastlege",
                       values={"henvisning_mottatt": "2028-01-24"}))
    granted: list[Any] = []
    at("2028-02-01T10:00", "BUP grants the right to care: the barnekoordinator pathway starts",
       lambda: granted.append(advance(norway, "rett_innvilget", actor="bup.fonna", role="bup",
                                      values={"rett_til_helsehjelp": True})))
    coordinator = granted[0].started[0]
    at("2028-02-14T11:00", "the coordinating unit appoints a barnekoordinator",
       lambda: advance(coordinator, "oppnevn", actor="ke.haugesund",
                       role="koordinerende_enhet", values={"individuell_plan": True}))

    click.echo("\n== Where each pathway stands ==")
    for instance in (child, mother, baby, teen, youth, norway, coordinator):
        data = show(engine, instance)
        click.echo(f"{data['id']}  {data['pathway']:<28} {data['state']:<26} "
                   f"history: {len(data['history'])} entries")
        for d in data["deadlines"]:
            click.echo(f"    {d['name']:<34} {d['status']:<9} due {d['due_local'][:16]}  "
                       f"({d['rule']['status']})")
