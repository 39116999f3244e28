"""`pathways serve` (issue 18): the JSON API, tokens, errors as status codes, the coordinators'
pages, /healthz and /metrics - against a real uvicorn server on 127.0.0.1, on both databases."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Annotated
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import APIRouter
from fastapi import Depends
from fastapi import Query
from pathways_engine.store import tokens
from web_support import Server

START = {"pathway": "mistrivsel_referral", "subject": "H-1", "birth_date": "2014-05-02",
         "role": "gp", "values": {"severity": "moderate", "consent_exchange": True},
         "area": "norddjurs"}


def started(http: httpx.Client, auth: dict[str, str], **changes: Any) -> str:
    response = http.post("/api/instances", json={**START, **changes}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_tokens_authenticate_and_the_actors_file_authorizes(server: Server) -> None:
    gp, syd = server.token("dr.a"), server.token("ppr.syd")
    with server.client() as http:
        assert http.get("/api/instances").status_code == 401
        assert http.get("/api/instances", headers={"Authorization": "Bearer pw_x"}
                        ).status_code == 401
        instance = started(http, gp)
        wrong_role = http.post(f"/api/instances/{instance}/events", headers=gp,
                               json={"event": "triage_to_ppr", "role": "ppr"})
        assert wrong_role.status_code == 403
        assert "does not hold" in wrong_role.json()["error"] or "role" in wrong_role.json()["error"]
        other_area = http.post(f"/api/instances/{instance}/events", headers=syd,
                               json={"event": "triage_to_ppr", "role": "ppr"})
        assert other_area.status_code == 403  # PPR Syddjurs may not act on a Norddjurs child
        assert http.get(f"/api/instances/{instance}", headers=syd).status_code == 403
        assert [r["id"] for r in http.get("/api/instances", headers=syd).json()] == []
        with server.app.db.writing() as connection:
            [row] = [r for r in tokens.listed(connection) if r.actor == "dr.a"]
            assert tokens.revoke(connection, row.id, server.app.clock.now())
        assert http.get("/api/instances", headers=gp).status_code == 401  # revoked at once


def test_tokens_expire_and_rotate_without_a_gap(server: Server) -> None:
    from pathways_engine.store.tables import api_tokens
    from sqlalchemy import update
    from support import Cli

    run = Cli(server.app.settings.database_url)
    made = json.loads(run("token", "create", "--actor", "dr.a", "--expires-in", "90 days",
                          "--json").output)
    left = dt.datetime.fromisoformat(made["expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=89, hours=23) < left <= dt.timedelta(days=90)
    old = {"Authorization": f"Bearer {made['token']}"}
    with server.client() as http:
        assert http.get("/api/instances", headers=old).status_code == 200
        rotated = json.loads(run("token", "rotate", str(made["id"]), "--overlap", "1 hour",
                                 "--json").output)
        assert (rotated["rotated"], rotated["actor"], rotated["expires_at"]) == \
            (made["id"], "dr.a", None)
        new = {"Authorization": f"Bearer {rotated['token']}"}
        assert http.get("/api/instances", headers=old).status_code == 200  # the switch-over
        assert http.get("/api/instances", headers=new).status_code == 200
        listed = {r["id"]: r for r in json.loads(run("token", "list", "--json").output)}
        assert listed[made["id"]]["status"] == "live"
        stops = dt.datetime.fromisoformat(listed[made["id"]]["expires_at"])
        assert dt.timedelta(minutes=59) < stops - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
        with server.app.db.writing() as connection:  # the hour has passed
            connection.execute(update(api_tokens).where(api_tokens.c.id == made["id"]).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        read = http.get("/api/instances", headers=old)
        assert read.status_code == 401
        assert "expired" in read.json()["error"]
        before = len(http.get("/api/instances", headers=new).json())
        step = http.post("/api/instances", json=START, headers=old)
        assert step.status_code == 401  # a step checks its token in its own transaction
        assert len(http.get("/api/instances", headers=new).json()) == before
        shown = run("token", "list").output
        assert any(line.split()[:3] == [str(made["id"]), "dr.a", "expired"]
                   for line in shown.splitlines()), shown
        at_once = json.loads(run("token", "rotate", str(rotated["id"]), "--overlap",
                                 "0 minutes", "--expires-in", "P30D", "--json").output)
        assert http.get("/api/instances", headers=new).status_code == 401  # revoked at once
        assert http.get("/api/instances", headers={
            "Authorization": f"Bearer {at_once['token']}"}).status_code == 200
        assert json.loads(run("token", "list", "--json").output)[-2]["status"] == "revoked"
    refused = run("token", "rotate", str(made["id"]), code=1)  # expired: nothing to rotate
    assert f"no live token {made['id']}" in refused.stderr
    months = run("token", "create", "--actor", "dr.a", "--expires-in", "2 months", code=2)
    assert "not working days or months" in months.stderr


def test_a_token_revoked_between_two_steps_acts_on_nothing(server: Server) -> None:
    gp, ppr = server.token("dr.a"), server.token("p1")
    with server.client() as http:
        first, second = started(http, gp), started(http, gp, subject="H-2")
        key = {**ppr, "Idempotency-Key": "inbox-1"}
        done = http.post(f"/api/instances/{first}/events", headers=key,
                         json={"event": "triage_to_ppr", "role": "ppr"})
        assert done.status_code == 200  # the token is known now: later steps check it inside
        before = http.get(f"/api/instances/{second}", headers=gp).json()
        with server.app.db.writing() as connection:
            [row] = [r for r in tokens.listed(connection) if r.actor == "p1"]
            assert tokens.revoke(connection, row.id, server.app.clock.now())
        refused = http.post(f"/api/instances/{second}/events", headers=ppr,
                            json={"event": "triage_to_ppr", "role": "ppr"})
        assert refused.status_code == 401
        replay = http.post(f"/api/instances/{first}/events", headers=key,
                           json={"event": "triage_to_ppr", "role": "ppr"})
        assert replay.status_code == 401  # not even a replayed answer
        after = http.get(f"/api/instances/{second}", headers=gp).json()
        assert (after["state"], after["revision"]) == (before["state"], before["revision"])
        assert len(after["history"]) == len(before["history"])
        # a start checks its token inside its transaction too (the gp's is known by now)
        with server.app.db.writing() as connection:
            [row] = [r for r in tokens.listed(connection) if r.actor == "dr.a"]
            assert tokens.revoke(connection, row.id, server.app.clock.now())
        assert http.post("/api/instances", json={**START, "subject": "H-3"},
                         headers=gp).status_code == 401
        with server.app.db.reading() as connection:
            assert connection.exec_driver_sql(
                "SELECT count(*) FROM instances").scalar() == 2  # nothing half-written


def test_writes_answer_as_the_cli_does_with_revisions_and_idempotency(server: Server) -> None:
    gp, ppr = server.token("dr.a"), server.token("p1")
    with server.client() as http:
        instance = started(http, gp)
        stale = http.post(f"/api/instances/{instance}/events", headers=ppr,
                          json={"event": "triage_to_ppr", "role": "ppr",
                                "expected_revision": 7})
        assert stale.status_code == 409
        assert stale.json()["kind"] == "ConcurrentModification"
        key = {**ppr, "Idempotency-Key": "inbox-4711"}
        first = http.post(f"/api/instances/{instance}/events", headers=key,
                          json={"event": "triage_to_ppr", "role": "ppr"})
        again = http.post(f"/api/instances/{instance}/events", headers=key,
                          json={"event": "triage_to_ppr", "role": "ppr"})
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        assert first.json()["to"] == "ppr_assessment"
        history = http.get(f"/api/instances/{instance}/history", headers=ppr).json()
        assert [h["event"] for h in history if h["kind"] == "transition"] == ["triage_to_ppr"]
        other = http.post(f"/api/instances/{instance}/events", headers=key,
                          json={"event": "refer_bup", "role": "ppr"})
        assert other.status_code == 409  # the same key for another request
        unknown = http.post(f"/api/instances/{instance}/events", headers=ppr,
                            json={"event": "refer_bpu", "role": "ppr"})
        assert unknown.status_code == 422
        assert "did you mean" in unknown.json()["error"]
        shown = http.get(f"/api/instances/{instance}", headers=ppr).json()
        assert shown["state"] == "ppr_assessment"
        assert shown["revision"] == 2


def test_concurrent_advances_of_one_instance_one_wins(server: Server) -> None:
    gp, ppr = server.token("dr.a"), server.token("p1")
    with server.client() as http:
        instance = started(http, gp)

    def advance(_: int) -> int:
        with server.client() as http:
            return http.post(f"/api/instances/{instance}/events", headers=ppr,
                             json={"event": "triage_to_ppr", "role": "ppr",
                                   "expected_revision": 1}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(advance, range(8)))
    assert codes.count(200) == 1
    assert set(codes) <= {200, 409, 422}


def test_two_hundred_concurrent_starts_lose_nothing(server: Server) -> None:
    gp = server.token("dr.a")

    def start(n: int) -> tuple[int, str]:
        with server.client() as http:
            answer = http.post("/api/instances", headers=gp,
                               json={**START, "subject": f"C-{n}"})
            return answer.status_code, answer.text

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(start, range(200)))
    assert [code for code, _ in answers] == [201] * 200, [a for a in answers if a[0] != 201]
    with server.client() as http:
        listed = http.get("/api/instances", params={"limit": 1000}, headers=gp).json()
    assert len({r["subject"] for r in listed}) == 200


def test_bad_input_is_refused_with_one_line_and_changes_nothing(server: Server) -> None:
    gp = server.token("dr.a")
    with server.client() as http:
        big = http.post("/api/instances", headers={**gp, "content-type": "application/json"},
                        content=b'{"pathway": "' + b"x" * 70_000 + b'"}')
        assert big.status_code == 413
        broken = http.post("/api/instances", headers={**gp, "content-type": "application/json"},
                           content=b'{"pathway": ')
        assert broken.status_code == 422
        extra = http.post("/api/instances", headers=gp, json={**START, "admin": True})
        assert extra.status_code == 422
        assert extra.json()["error"] == "body.admin: Extra inputs are not permitted"
        traversal = http.get("/api/instances/..%2F..%2Fetc%2Fpasswd", headers=gp)
        assert traversal.status_code in (404, 422)
        assert "Traceback" not in traversal.text
        missing = http.get("/api/instances/0123456789abcdef", headers=gp)
        assert missing.status_code == 404
        assert set(missing.json()) == {"error", "kind", "status"}
        assert http.get("/api/instances", headers=gp).json() == []  # nothing was written


def test_pages_escape_what_people_typed_and_speak_the_readers_language(server: Server) -> None:
    gp = server.token("leader")
    author = server.token("dr.a")
    with server.client() as http:
        instance = started(http, author, at="2026-11-02T09:00:00+01:00")
        http.post(f"/api/instances/{instance}/assign", headers=author,
                  json={"role": "contact_person", "party": "kontakt_hanne", "acting_role": "gp"})
        ppr = server.token("p1")
        noted = http.post(f"/api/instances/{instance}/events", headers=ppr,
                          json={"event": "triage_to_ppr", "role": "ppr",
                                "note": "<script>alert(1)</script>"})
        assert noted.status_code == 200, noted.text
        assert http.get("/ui/overdue", follow_redirects=False).status_code == 303
        token = gp["Authorization"].removeprefix("Bearer ")
        login = http.post("/ui/login", content=f"token={token}",
                          headers={"content-type": "application/x-www-form-urlencoded"},
                          follow_redirects=False)
        assert login.status_code == 303
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        page = http.get(f"/ui/instances/{instance}", params={"lang": "da"})
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert 'lang="da"' in page.text
        assert "Historik" in page.text
        child = http.get("/ui/subjects/H-1", params={"lang": "sv"})
        assert "Kontaktperson: kontakt_hanne" in child.text
        report = http.get("/ui/report")
        assert report.status_code == 200
        assert "<svg" in report.text
        diagram = http.get("/ui/pathways/mistrivsel_referral")
        assert "stateDiagram" in diagram.text
        bad = http.post("/ui/login", content="token=nope",
                        headers={"content-type": "application/x-www-form-urlencoded"})
        assert bad.status_code == 401


FORM = {"content-type": "application/x-www-form-urlencoded"}


def triaged_and_signed_in(http: httpx.Client, server: Server, author: dict[str, str]) -> str:
    """A child referred on 2 November and triaged to PPR on the 4th; the leader's pages."""
    instance = started(http, author, at="2026-11-02T09:00:00+01:00")
    moved = http.post(f"/api/instances/{instance}/events", headers=server.token("p1"),
                      json={"event": "triage_to_ppr", "role": "ppr",
                            "at": "2026-11-04T10:00:00+01:00"})
    assert moved.status_code == 200, moved.text
    signed_in_page(http, server, "leader")
    return instance


def test_an_instance_page_says_its_history_and_deadlines_in_words_and_local_time(
        server: Server) -> None:
    """A team lead reads what happened, by whom and when, in her language and the pathway's
    zone: not the audit's kinds, the actors' ids or UTC (`show --json` keeps those)."""
    author = server.token("dr.a")
    with server.client() as http:
        instance = triaged_and_signed_in(http, server, author)
        da = http.get(f"/ui/instances/{instance}", params={"lang": "da"}).text
        assert "<td>2. november 2026 kl. 09.00</td><td>Test GP 2 (Egen læge)</td>" \
            "<td>Startet: Henvist - visitation i kommunen</td>" in da
        assert "<td>systemet</td><td>Besked lagt i kø: PPR (pædagogisk psykologisk " \
            "rådgivning)</td>" in da
        assert "<td>Test PPR 2 (PPR (pædagogisk psykologisk rådgivning))</td>" in da
        assert "<td>Visitation i kommunen</td><td>PPR (pædagogisk psykologisk rådgivning)" \
            "</td><td>16. november 2026 kl. 23.59</td><td>overholdt</td>" \
            "<td>4. november 2026 kl. 10.00</td>" in da
        assert "(aktivt)" in da
        for engine_speak in ("notification_queued", "dr.a (gp)", "2026-11-02 08:00",
                             "triage_to_ppr", ">met<", ">pending<"):
            assert engine_speak not in da, engine_speak
        en = http.get(f"/ui/instances/{instance}", params={"lang": "en"}).text
        assert "<th scope=\"col\">When</th>" in en
        assert "<th scope=\"col\">Note</th>" in en  # no column without a header
        assert "<td>Message queued: Educational psychology service (PPR)</td>" in en
        assert "<td>Referred - municipal triage → PPR assessment</td>" in en  # no title
        child = http.get("/ui/subjects/H-1", params={"lang": "da"}).text
        assert "(aktivt)</h2>" in child
        assert "Ansvarlig: PPR Norddjurs</p>" in child  # routed by the parties file
        assert "(active)" not in child
        started(http, author, at="2026-11-02T09:00:00+01:00", subject="H-2")
        waiting = http.get("/ui/subjects/H-2", params={"lang": "da"}).text
        assert re.search(r"<td>Visitation i kommunen</td><td( class=\"late\")?>(åben|"
                         r"overskredet)</td><td>16\. november 2026 kl\. 23\.59</td>", waiting)


def test_the_pages_still_read_a_child_when_a_definition_file_is_broken(
        server: Server, tmp_path: Any) -> None:
    """A coordinator's half-edited file must not take the team lead's pages down: running
    instances read from their stored snapshots, and names fall back to the engine's ids
    where the files cannot say them (`pathways check` reports the file)."""
    from pathways_engine import Registry

    author = server.token("dr.a")
    with server.client() as http:
        instance = triaged_and_signed_in(http, server, author)
        broken = tmp_path / "definitions"
        broken.mkdir()
        (broken / "pathway.yaml").write_text("id: [unclosed\n", encoding="utf-8")
        server.app.__dict__["registry"] = Registry.lazy([broken])
        for address in (f"/ui/instances/{instance}", "/ui/subjects/H-1", "/ui/overdue",
                        "/ui/report"):
            page = http.get(address, params={"lang": "da"})
            assert page.status_code == 200, (address, page.text)
        shown = http.get(f"/ui/instances/{instance}", params={"lang": "da"}).text
        assert "Startet: Henvist - visitation i kommunen" in shown  # from the snapshot
        figures = http.get("/api/report", params={"by": "role", "from": "2026-01-01",
                                                  "to": "2026-12-31"},
                           headers=server.token("leader")).json()
        assert {r["role"] for r in figures} >= {"ppr"}  # roles from the stored version


def test_the_report_page_takes_a_period_a_pathway_and_a_grouping_and_names_them_for_people(
        server: Server) -> None:
    """What `pathways report --from --to --pathway --by` gives, as a form a team lead fills in,
    with each pathway, step and party by its title, not the engine's id."""
    author, leader = server.token("dr.a"), server.token("leader")
    with server.client() as http:
        triaged_and_signed_in(http, server, author)
        year = http.get("/ui/report", params={"lang": "da", "from": "2026-01-01",
                                              "to": "2026-12-31"})
        assert year.status_code == 200
        assert '<input id="from" name="from" type="date" value="2026-01-01">' in year.text
        assert '<label for="by">Gruppér efter</label>' in year.text
        assert ">Henvisning af børn og unge i mental mistrivsel</a></td><td>Henvist - " \
            "visitation i kommunen</td><td>1</td><td>1</td>" in year.text
        assert "<th scope=\"col\">Median, dage</th>" in year.text
        assert "100%" in year.text  # the triage deadline, closed in time, in the chart
        assert 'href="?lang=sv&amp;from=2026-01-01&amp;to=2026-12-31"' in year.text
        by_party = http.get("/ui/report", params={
            "lang": "en", "from": "2026-01-01", "to": "2026-12-31", "by": "organisation",
            "pathway": "mistrivsel_referral"})
        assert "<td>PPR Norddjurs</td>" in by_party.text
        assert '<option value="mistrivsel_referral" selected>' in by_party.text
        assert '<option value="organisation" selected>Organisation</option>' in by_party.text
        later = http.get("/ui/report", params={"lang": "en", "from": "2027-01-01",
                                               "to": "2027-12-31", "pathway": ""})
        assert "Nothing started in this period." in later.text
        not_a_day = http.get("/ui/report", params={"lang": "sv", "from": "2026-13-01"})
        assert not_a_day.status_code == 400
        assert "from &#39;2026-13-01&#39; is not a date (YYYY-MM-DD)" in not_a_day.text
        for hostile in ({"pathway": "<script>alert(1)</script>"}, {"by": "<b>x</b>"},
                        {"from": "<img src=x>"}):
            refused = http.get("/ui/report", params={"lang": "en", **hostile})
            assert refused.status_code in (400, 404, 422), (hostile, refused.status_code)
            assert "<script>" not in refused.text
            assert "<img" not in refused.text
            assert "<b>x" not in refused.text
        backwards = http.get("/ui/report", params={"from": "2027-01-01", "to": "2026-01-01"})
        assert backwards.status_code == 400
        assert "from 2027-01-01 is after to 2026-01-01" in backwards.text
        assert "--from" not in backwards.text
        api = http.get("/api/report", params={"from": "2027-01-01", "to": "2026-01-01"},
                       headers=leader)
        assert api.status_code == 400
        assert api.json()["error"] == "from 2027-01-01 is after to 2026-01-01"


def test_an_instance_page_links_the_pathways_it_was_handed_from_and_to_and_says_why(
        server: Server) -> None:
    """A child goes from sector to sector: each page links the pathway that handed it over
    and those it handed over to, and says the engine's notes ("handed over from
    mistrivsel_referral 3f2a... (low_threshold_offer)") in the reader's words."""
    author = server.token("dr.a")
    with server.client() as http:
        referral = started(http, author, at="2026-11-02T09:00:00+01:00")
        moved = http.post(f"/api/instances/{referral}/events", headers=server.token("p1"),
                          json={"event": "triage_to_ltt", "role": "ppr",
                                "at": "2026-11-04T10:00:00+01:00"})
        assert moved.status_code == 200, moved.text
        offer = moved.json()["started"][0]
        ltt = server.token("l")
        for event, values in (("forsamtale_holdt", {}), ("afslut", {"udfald": "henvist_bup"})):
            step = http.post(f"/api/instances/{offer}/events", headers=ltt, json={
                "event": event, "role": "ltt", "values": values,
                "at": "2026-11-10T10:00:00+01:00"})
            assert step.status_code == 200, step.text
        signed_in_page(http, server, "leader")
        child = http.get(f"/ui/instances/{offer}", params={"lang": "da"}).text
        assert f'<li>Startet fra: <a href="/ui/instances/{referral}?lang=da">Henvisning af ' \
            "børn og unge i mental mistrivsel</a></li>" in child
        assert f'<a href="/ui/instances/{referral}?lang=da">Overdraget fra Henvisning af børn ' \
            "og unge i mental mistrivsel</a>" in child
        assert "<td>Test PPR 2</td><td>Startet: Henvendelse</td>" in child
        parent = http.get(f"/ui/instances/{referral}", params={"lang": "da"}).text
        assert f'<li>Overdraget til: <a href="/ui/instances/{offer}?lang=da">Det kommunale ' \
            "behandlingstilbud til børn og unge i mistrivsel (med STIME)</a> (afsluttet)</li>" \
            in parent
        assert f'<a href="/ui/instances/{offer}?lang=da">Svar fra Det kommunale ' \
            "behandlingstilbud" in parent
        assert "<td>Test PPR 2</td><td>Overdraget til et andet forløb: Det kommunale " \
            "behandlingstilbud" in parent  # not "(Kommunalt behandlingstilbud)": PPR did it
        english = http.get(f"/ui/instances/{offer}", params={"lang": "en"}).text
        assert "Started from: <a" in english
        for page in (child, parent, english):  # the trail's own words stay in the trail
            assert "handed over from" not in page
            assert f"from {offer} (" not in page
        trail = http.get(f"/api/instances/{offer}", headers=author).json()["history"][0]
        assert trail["note"] == f"handed over from mistrivsel_referral {referral} " \
            "(low_threshold_offer)"


def test_the_report_reads_only_the_areas_its_reader_works_for(server: Server) -> None:
    """PPR Syddjurs reads Syddjurs' figures, never Norddjurs' (a small group's figures can
    point at a child); a reader of every area reads any one of them, or all."""
    author, syd = server.token("dr.a"), server.token("ppr.syd")
    year = {"from": "2026-01-01", "to": "2026-12-31"}
    with server.client() as http:
        triaged_and_signed_in(http, server, author)  # a Norddjurs child
        started(http, author, subject="H-2", area="syddjurs", at="2026-11-03T09:00:00+01:00")
        started(http, author, subject="H-3", area=None, at="2026-11-03T09:00:00+01:00")
        every = http.get("/api/report", params={**year, "by": "area"},
                         headers=server.token("leader")).json()
        assert {r["area"] for r in every} == {"norddjurs", "syddjurs", "(no area)"}
        theirs = http.get("/api/report", params={**year, "by": "area"}, headers=syd).json()
        assert {r["area"] for r in theirs} == {"syddjurs"}
        steps = {r["step"]: r for r in http.get("/api/report", params=year,
                                                headers=syd).json()}
        assert steps["referred"]["started"] == 1
        assert "ppr_assessment" not in steps  # only the Norddjurs child got there
        refused = http.get("/api/report", params={**year, "area": "norddjurs"}, headers=syd)
        assert refused.status_code == 403
        assert refused.json()["error"] == ("actor 'ppr.syd' works for syddjurs; the figures of "
                                           "norddjurs are not theirs to read")
        one = http.get("/api/report", params={**year, "area": "norddjurs", "by": "area"},
                       headers=server.token("leader")).json()
        assert {r["area"] for r in one} == {"norddjurs"}
        unknown = http.get("/api/report", params={"area": "nowhere"}, headers=syd)
        assert unknown.status_code == 400
        assert unknown.json()["error"].startswith("area 'nowhere': no such area")
        signed_in_page(http, server, "ppr.syd")
        page = http.get("/ui/report", params={**year, "lang": "en", "by": "area"}).text
        assert '<option value="syddjurs">syddjurs</option>' in page
        assert '<option value="norddjurs"' not in page  # not offered, and not in the figures
        assert "<td>norddjurs</td>" not in page
        assert "<td>syddjurs</td>" in page
        assert http.get("/ui/report", params={"area": "norddjurs"}).status_code == 403
        hostile = http.get("/ui/report", params={"area": "<script>alert(1)</script>"})
        assert hostile.status_code == 400
        assert "<script>" not in hostile.text
        signed_in_page(http, server, "leader")
        chosen = http.get("/ui/report", params={**year, "lang": "da", "area": "syddjurs",
                                                "by": "area"}).text
        assert '<option value="syddjurs" selected>syddjurs</option>' in chosen
        assert '<option value="">Alle områder</option>' in chosen
        assert "<td>norddjurs</td>" not in chosen
        assert "area=syddjurs" in chosen  # the language links keep the choice


def signed_in_page(http: httpx.Client, server: Server, actor: str) -> None:
    token = server.token(actor)["Authorization"].removeprefix("Bearer ")
    assert http.post("/ui/login", content=f"token={token}", headers=FORM,
                     follow_redirects=False).status_code == 303


def test_a_page_that_cannot_be_shown_says_why_as_a_page_in_the_readers_language(
        server: Server) -> None:
    author = server.token("dr.a")
    with server.client() as http:
        instance = started(http, author)
        signed_in_page(http, server, "ppr.syd")  # PPR Syddjurs: not this Norddjurs child
        refused = http.get(f"/ui/instances/{instance}", params={"lang": "da"})
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert 'lang="da"' in refused.text
        assert "<h1>Ikke tilladt</h1>" in refused.text
        assert "norddjurs" in refused.text  # the API's one-line reason
        missing = http.get("/ui/instances/0000000000000000",
                           headers={"accept-language": "sv-SE,sv;q=0.9,en;q=0.5"})
        assert missing.status_code == 404
        assert "<h1>Hittades inte</h1>" in missing.text
        assert "0000000000000000" in missing.text
        typed = http.get("/ui/subjects/%3Cb%3E", params={"lang": "nb"})  # refused by pattern
        assert typed.status_code == 422
        assert "<b>" not in typed.text
        assert "Forespørselen kan ikke brukes" in typed.text
        nowhere = http.get("/ui/no-such-page", params={"lang": "en"})
        assert nowhere.status_code == 404
        assert "<h1>Not found</h1>" in nowhere.text
        assert "Sign out" in nowhere.text  # still signed in: the way out is on every page
        api = http.get("/api/no-such-thing")  # the API keeps answering JSON
        assert api.status_code == 404
        assert api.json() == {"detail": "Not Found"}
        assert http.get(f"/api/instances/{instance}", headers=server.token("ppr.syd")
                        ).json()["status"] == 403


def test_the_servers_address_leads_to_the_pages_in_the_browsers_language(
        server: Server) -> None:
    with server.client() as http:
        for where, spoken, lang in [("/", "da-DK,da;q=0.9,en;q=0.8", "da"),
                                    ("/ui", "nn-NO,en;q=0.5", "nb"),
                                    ("/ui/", "en;q=0.2,sv;q=0.9", "sv"),
                                    ("/", "fr-FR,de;q=0.8", "en"),
                                    ("/?lang=sv", "da", "sv")]:
            home = http.get(where, headers={"accept-language": spoken},
                            follow_redirects=False)
            assert home.status_code == 303, where
            assert home.headers["location"] == f"/ui/overdue?lang={lang}", (where, spoken)
        login = http.get("/ui/login", headers={"accept-language": "nb-NO"})
        assert 'lang="nb"' in login.text
        assert "Logg inn" in login.text
        bad = http.post("/ui/login", content="token=nope&lang=sv", headers=FORM)
        assert bad.status_code == 401
        assert "Nyckeln är okänd, återkallad eller har gått ut." in bad.text


def test_signing_in_returns_to_the_page_asked_for_and_never_to_another_site(
        server: Server) -> None:
    author = server.token("dr.a")
    token = server.token("leader")["Authorization"].removeprefix("Bearer ")
    with server.client() as http:
        instance = started(http, author)
        asked = http.get(f"/ui/instances/{instance}", params={"lang": "sv"},
                         follow_redirects=False)
        assert asked.status_code == 303
        form = http.get(asked.headers["location"])
        assert 'lang="sv"' in form.text
        assert f'name="next" value="/ui/instances/{instance}?lang=sv"' in form.text
        assert f'<a href="?lang=da&amp;next=%2Fui%2Finstances%2F{instance}%3Flang%3Dsv"' \
            in form.text  # signing in in Danish still returns to the page asked for
        back = http.post("/ui/login", headers=FORM, follow_redirects=False, content=(
            f"token={token}&lang=sv&next=/ui/instances/{instance}%3Flang%3Dsv"))
        assert back.headers["location"] == f"/ui/instances/{instance}?lang=sv"
        for elsewhere in ["https://evil.example/ui/x", "//evil.example/", "/ui/../../etc",
                          "/ui/%2e%2e/docs", "/ui/../api/instances", "/ui/..\\/evil.example",
                          "/ui/x\r\nLocation: //evil.example", "/ui/login", "/docs"]:
            went = http.post("/ui/login", headers=FORM, follow_redirects=False,
                             content=f"token={token}&next={quote(elsewhere)}")
            assert went.status_code == 303
            assert went.headers["location"] == "/ui/overdue?lang=en", elsewhere


def test_the_overdue_page_narrows_to_an_area_a_party_or_a_pathway_as_the_cli_does(
        server: Server) -> None:
    author, leader = server.token("dr.a"), server.token("leader")
    long_ago = "2026-11-02T09:00:00+01:00"
    with server.client() as http:
        north = started(http, author, at=long_ago, subject="N-1")
        south = started(http, author, at=long_ago, subject="S-1", area="syddjurs")
        started(http, author, at=long_ago, subject="N-2")
        every = http.get("/api/overdue", headers=leader).json()
        assert {r["subject"] for r in every} == {"N-1", "S-1", "N-2"}
        assert {r["instance"]: r["responsible_party"] for r in every
                if r["instance"] in (north, south)} == {north: "ppr_norddjurs",
                                                        south: "ppr_syddjurs"}
        api = http.get("/api/overdue", params={"party": "ppr_syddjurs"}, headers=leader)
        assert [r["subject"] for r in api.json()] == ["S-1"]
        assert [r["subject"] for r in http.get(
            "/api/overdue", params={"area": "norddjurs"}, headers=leader).json()] == \
            ["N-1", "N-2"]
        typo = http.get("/api/overdue", params={"area": "nordjurs"}, headers=leader)
        assert typo.status_code == 400
        assert typo.json()["error"].startswith("area 'nordjurs': no such area")  # not "--area"
        assert "did you mean 'norddjurs'" in typo.json()["error"]
        scoped = http.get("/api/overdue", params={"area": "norddjurs"},
                          headers=server.token("ppr.syd"))
        assert scoped.json() == []  # PPR Syddjurs reads no Norddjurs child, asked or not

        signed_in_page(http, server, "leader")
        whole = http.get("/ui/overdue", params={"lang": "en"}).text
        assert all(f">{ref}</a>" in whole for ref in ("N-1", "S-1", "N-2"))
        assert '<a href="/ui/overdue?lang=en&amp;area=syddjurs">syddjurs</a>' in whole
        assert '<a href="/ui/overdue?lang=en&amp;party=ppr_syddjurs">PPR Syddjurs</a>' in whole
        assert ">Referral of children and young people in mental distress</a></td>" in whole
        assert "<td>PPR Syddjurs (Educational psychology service (PPR))</td>" in whole
        assert "<td>16 November 2026 at 23:59</td>" in whole  # the pathway's zone
        assert "ppr_norddjurs" not in whole.replace("party=ppr_norddjurs", "")  # only in links
        south_page = http.get("/ui/overdue", params={"lang": "da", "area": "syddjurs"}).text
        assert ">S-1</a>" in south_page
        assert ">N-1</a>" not in south_page
        assert ">N-2</a>" not in south_page
        assert "Kun:" in south_page
        assert "<strong>syddjurs</strong>" in south_page
        assert re.search(r'<td class="late">\d+ dage</td>', south_page)
        assert '<a href="/ui/overdue?lang=da">Vis alt, der er overskredet</a>' in south_page
        assert '<a href="?lang=sv&amp;area=syddjurs" lang="sv"' in south_page  # same list
        both = http.get("/ui/overdue", params={"lang": "en", "area": "norddjurs",
                                               "pathway": "mistrivsel_referral"}).text
        assert ">N-1</a>" in both
        assert ">S-1</a>" not in both
        assert 'href="/ui/overdue?lang=en&amp;pathway=mistrivsel_referral"' in both  # area off
        unknown = http.get("/ui/overdue", params={"lang": "sv", "party": "ppr_nowhere"})
        assert unknown.status_code == 400
        assert "<h1>Begäran kan inte användas</h1>" in unknown.text
        assert "ppr_nowhere" in unknown.text


def test_each_pathway_has_a_page_with_its_steps_in_words_and_its_drawing(
        server: Server) -> None:
    import shutil

    with server.client() as http:
        signed_in_page(http, server, "leader")
        index = http.get("/ui/pathways", params={"lang": "da"})
        assert index.status_code == 200
        assert '<a href="/ui/pathways?lang=da">Forløb</a>' in index.text  # in every menu
        assert '<a href="/ui/pathways/mistrivsel_referral?lang=da">' in index.text
        assert '<a href="/ui/pathways/discharge_to_municipality?lang=da">' in index.text
        page = http.get("/ui/pathways/mistrivsel_referral", params={"lang": "da"}).text
        assert "<caption>Trin</caption>" in page
        # a step in words: from the state, by whom, on which condition, to the state
        assert ("<tr><td>PPR-vurdering</td><td>Henvist til BUP</td>"
                "<td>Henvist til BUP - barnet venter</td><td>gp, ppr, ltt</td>") in page
        assert "<td>triage to ppr</td>" in page  # an event without a title: its name
        assert "<code>severity in [&#39;moderate&#39;, &#39;severe&#39;]</code>" in page
        assert "responsible: bup" in page  # the states' deadlines and who has them
        assert "stateDiagram-v2" in page  # the Mermaid source, folded away
        if shutil.which("dot"):
            assert '<figure role="img" aria-label="Tegning: ' in page
            assert "<svg" in page
        missing = http.get("/ui/pathways/no_such_pathway", params={"lang": "en"})
        assert missing.status_code == 404
        assert "<h1>Not found</h1>" in missing.text


@pytest.mark.skipif(__import__("shutil").which("dot") is None,
                    reason="Graphviz is not installed here (.ci/run installs it)")
def test_a_drawing_escapes_what_a_definition_says(tmp_path: Any) -> None:
    from pathways_engine.definition.registry import Registry
    from support import copy_pathway

    from pathways.web import pages

    folder = copy_pathway(tmp_path / "mistrivsel_referral")
    source = folder / "pathway.yaml"
    source.write_text(source.read_text(encoding="utf-8").replace(
        "en: Referred - municipal triage", 'en: "<script>alert(1)</script> & <img src=x '
        'onerror=alert(2)>"'), encoding="utf-8")
    compiled = Registry.from_paths([tmp_path]).compiled("mistrivsel_referral")
    drawing = pages._drawing(compiled)
    assert drawing is not None
    assert drawing.startswith("<svg")
    assert "<script" not in drawing
    assert "<img" not in drawing
    assert "&lt;script&gt;" in drawing
    html = pages.page("diagram.html", "en", spec=compiled.spec, text="", drawing=drawing,
                      steps=pages._steps(compiled, "en"), states=pages._states(compiled, "en"),
                      said=lambda text, name: pages.said(text, "en", name)).body.decode()
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img" in html  # the steps, escaped


def test_signing_out_forgets_the_token_in_this_browser_only(server: Server) -> None:
    leader = server.token("leader")
    token = leader["Authorization"].removeprefix("Bearer ")
    with server.client() as http:
        assert http.post("/ui/login", content=f"token={token}", headers=FORM,
                         follow_redirects=False).status_code == 303
        overdue = http.get("/ui/overdue", params={"lang": "da"})
        assert overdue.status_code == 200
        assert "Log ud" in overdue.text
        out = http.post("/ui/logout", content="lang=da", headers=FORM, follow_redirects=False)
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login?lang=da"
        cookie = out.headers["set-cookie"].lower()
        assert "pathways_token=" in cookie
        assert "max-age=0" in cookie
        assert "httponly" in cookie
        assert "pathways_token" not in http.cookies
        after = http.get("/ui/overdue", follow_redirects=False)
        assert after.status_code == 303
        assert after.headers["location"].startswith("/ui/login")
        assert http.get("/api/instances", headers=leader).status_code == 200  # not revoked


def test_health_metrics_and_openapi(server: Server) -> None:
    gp = server.token("dr.a")
    with server.client() as http:
        health = http.get("/healthz")
        assert health.status_code == 200
        assert health.json()["schema_current"] is True
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        started(http, gp, at=old.isoformat())  # its triage deadline's wake-ups are long due
        metrics = http.get("/metrics").text
        lag = next(float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith("pathways_timer_lag_seconds"))
        assert lag > 86400  # the sweep has not run: the oldest due wake-up is days late
        assert 'pathways_outbox_messages{channel="console",status="pending"}' in metrics
        started(http, gp, subject="H-2")
        every = http.get("/api/outbox", headers=gp).json()
        newest = http.get("/api/outbox", params={"limit": 1}, headers=gp).json()
        assert len(every) > 1
        assert newest == every[-1:]
        assert http.get("/api/outbox", params={"limit": 0}, headers=gp).status_code == 422
        spec = http.get("/openapi.json").json()
        assert "/api/instances/{instance}/events" in spec["paths"]
        assert json.dumps(spec).count("Idempotency-Key") >= 2


@contextmanager
def served(tmp_path: Any, *options: str) -> Iterator[tuple[str, dict[str, str], Any]]:
    """`pathways serve OPTIONS` in its own process on a fresh database: (base URL, the
    Authorization header of a token of dr.a, the process). On leaving, SIGTERM, and the
    server must not have printed a traceback."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from pathways_engine import Database
    from support import ACTORS
    from support import DEFINITIONS
    from support import ROOT

    url = f"sqlite:///{tmp_path / 'served.db'}"
    database = Database(url)
    with database.writing() as connection:
        _, secret = tokens.create(connection, "dr.a", "test", dt.datetime.now(dt.UTC))
    database.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATHWAYS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pathways", "--db", url, "--definitions", str(DEFINITIONS),
         "--parties", str(DEFINITIONS / "parties.yaml"), "--actors", str(ACTORS), "serve",
         "--port", str(port), *options], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, {"Authorization": f"Bearer {secret}"}, process
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert b"Traceback" not in errors, errors.decode()


def test_serve_with_several_workers_answers_from_every_process(tmp_path: Any) -> None:
    """`pathways serve --workers 2` in its own process: the workers build their App from the
    settings `serve` was given (database, definitions, parties, actors)."""
    with served(tmp_path, "--workers", "2") as (base, auth, _), \
            httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        ids = [started(http, auth, subject=f"W-{n}") for n in range(6)]
        assert len(set(ids)) == 6
        assert {r["id"] for r in http.get("/api/instances").json()} == set(ids)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_serve_threads_bounds_the_requests_worked_on_at_once(tmp_path: Any) -> None:
    """`--threads 1`: 200 requests from 20 clients at once (API reads and the sync health
    check, which FastAPI runs in anyio's threads) all answer, and the server starts no thread
    beyond those its first requests started - each kind of work has its one thread."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    with served(tmp_path, "--threads", "1") as (base, auth, process), \
            httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        instance = started(http, auth)
        assert http.get(f"/api/instances/{instance}").status_code == 200
        tasks = Path(f"/proc/{process.pid}/task")
        before = len(list(tasks.iterdir()))
        clients = [httpx.Client(base_url=base, headers=auth, timeout=60) for _ in range(20)]

        def get(n: int) -> int:
            path = f"/api/instances/{instance}" if n % 2 else "/healthz"
            return clients[n % 20].get(path).status_code

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(get, range(200)))
        for client in clients:
            client.close()
        assert answers == [200] * 200
        assert len(list(tasks.iterdir())) == before


@pytest.mark.parametrize(("given", "threads"), [("2", 2), (None, 4)])
def test_the_worker_processes_of_serve_take_its_threads(tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        given: str | None, threads: int) -> None:
    """`serve --workers N --threads T`: each worker process builds its app from the
    environment `serve` set, T included (the default when serve set none)."""
    from pathways_engine import Database
    from support import ACTORS
    from support import DEFINITIONS

    from pathways.config import ACTORS_ENV
    from pathways.config import DATABASE_ENV
    from pathways.config import DEFINITIONS_ENV
    from pathways.web.server import THREADS_ENV
    from pathways.web.server import from_environment

    url = f"sqlite:///{tmp_path / 'workers.db'}"
    Database(url).dispose()
    monkeypatch.setenv(DATABASE_ENV, url)
    monkeypatch.setenv(DEFINITIONS_ENV, str(DEFINITIONS))
    monkeypatch.setenv(ACTORS_ENV, str(ACTORS))
    if given is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, given)
    api = from_environment()
    assert api.state.threads == threads
    api.state.pathways.close()


def test_serve_threads_default_is_the_servers_and_zero_is_refused() -> None:
    from click.testing import CliRunner
    from support import ACTORS

    from pathways.cli import cli
    from pathways.web.server import DEFAULT_THREADS

    shown = CliRunner().invoke(cli, ["serve", "--help"])
    assert f"[default: {DEFAULT_THREADS};" in " ".join(shown.output.split()), shown.output
    refused = CliRunner().invoke(cli, ["--actors", str(ACTORS), "serve", "--port", "1",
                                       "--threads", "0"])
    assert refused.exit_code == 2, refused.output
    assert "Invalid value for '--threads': 0 is not in the range 1<=x<=64." in refused.stderr
    assert "Traceback" not in refused.output


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins on Linux only")
def test_serve_pin_cpu_runs_every_thread_of_the_server_on_that_cpu(tmp_path: Any) -> None:
    """Its event loop, its worker threads (started per request, after the pin) and its
    answers: all on the one CPU given."""
    from pathlib import Path

    cpu = max(os.sched_getaffinity(0))
    with served(tmp_path, "--pin-cpu", str(cpu)) as (base, auth, process), \
            httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        instance = started(http, auth)
        assert http.get(f"/api/instances/{instance}").status_code == 200
        threads = list(Path(f"/proc/{process.pid}/task").iterdir())
        assert len(threads) >= 2  # the loop and at least the worker thread of the requests
        for thread in threads:
            assert os.sched_getaffinity(int(thread.name)) == {cpu}, thread


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins on Linux only")
@pytest.mark.parametrize(("options", "says"), [
    (["--pin-cpu", "{absent}"], "Invalid value for '--pin-cpu': CPU {absent} is not one this "
                                "process may run on"),
    (["--pin-cpu", "{cpu}", "--workers", "2"], "Invalid value for '--pin-cpu': pins one server "
                                                "process; it needs --workers 1"),
    (["--pin-cpu", "one"], "Invalid value for '--pin-cpu': 'one' is not a valid integer"),
])
def test_serve_pin_cpu_refuses_what_it_cannot_pin_before_serving(options: list[str],
                                                                  says: str) -> None:
    from click.testing import CliRunner
    from support import ACTORS

    from pathways.cli import cli

    allowed = os.sched_getaffinity(0)
    values = {"absent": max(allowed) + 1, "cpu": max(allowed)}
    result = CliRunner().invoke(cli, ["--actors", str(ACTORS), "serve", "--port", "1",
                                      *(o.format(**values) for o in options)])
    assert result.exit_code == 2, result.output
    assert says.format(**values) in result.stderr
    assert "Traceback" not in result.output
    assert os.sched_getaffinity(0) == allowed  # refused before pinning anything


def test_fhir_over_http_is_the_clis_export_of_the_pinned_version(server: Server) -> None:
    """The API and `pathways export` share one path, which reads the definition the instance
    is pinned to (the API once read the newest file instead)."""
    from click.testing import CliRunner
    from support import ACTORS

    from pathways.cli import cli

    gp, ppr = server.token("dr.a"), server.token("p1")
    with server.client() as http:
        instance = started(http, gp)
        http.post(f"/api/instances/{instance}/events", headers=ppr,
                  json={"event": "triage_to_ppr", "role": "ppr"}).raise_for_status()
        over_http = http.get(f"/api/instances/{instance}/fhir", headers=gp)
        assert over_http.status_code == 200, over_http.text
        assert http.get(f"/api/instances/{instance}/fhir",
                        headers=server.token("ppr.syd")).status_code == 403
    exported = CliRunner().invoke(cli, ["--db", server.app.settings.database_url, "--actors",
                                        str(ACTORS), "export", instance])
    assert exported.exit_code == 0, exported.output
    assert over_http.json()["entry"] == json.loads(exported.stdout)["entry"]
    with server.client() as http:
        plan = http.get("/api/definitions/mistrivsel_referral/fhir?version=3", headers=gp)
        assert plan.status_code == 200, plan.text
        assert http.get("/api/definitions/nope/fhir", headers=gp).status_code == 404
        assert http.get("/api/definitions/mistrivsel_referral/fhir").status_code == 401
    defined = CliRunner().invoke(cli, ["export", "--definition", "mistrivsel_referral"])
    assert plan.json() == json.loads(defined.stdout)


def test_fhir_without_its_extra_is_501_naming_the_extra(server: Server,
                                                         monkeypatch: Any) -> None:
    import sys

    gp = server.token("dr.a")
    monkeypatch.setitem(sys.modules, "fhirclient.models.fhirelementfactory", None)
    with server.client() as http:
        answer = http.get("/api/definitions/mistrivsel_referral/fhir", headers=gp)
    assert answer.status_code == 501
    assert answer.json() == {
        "error": "a FHIR export needs the 'fhir' extra: pip install 'nordic-pathways[fhir]'",
        "kind": "MissingExtra", "status": 501}


def test_serve_refuses_to_start_without_a_database(tmp_path: Any) -> None:
    """A mistyped --db must not serve 503s forever: one line, exit 1, no file created."""
    from click.testing import CliRunner
    from support import ACTORS

    from pathways.cli import cli

    missing = tmp_path / "typo.db"
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{missing}", "--actors", str(ACTORS),
                                      "serve", "--port", "1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: there is no database at")
    assert not missing.exists()


BAD_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("not JSON", {"content": b"event=triage_to_ppr", "headers": {"content-type": "text/plain"}}),
    ("empty", {"content": b"", "headers": {"content-type": "application/json"}}),
    ("broken JSON", {"content": b'{"role": ', "headers": {"content-type": "application/json"}}),
    ("unknown field", {"json": {"role": "ppr", "admin": True}}),
    ("missing field", {"json": {"event": "triage_to_ppr"}}),
    ("bad pattern", {"json": {"role": "P P R"}}),
    ("wrong type", {"json": {"role": ["ppr"]}}),
]


@pytest.mark.parametrize(("case", "request_"), BAD_STEPS, ids=[c for c, _ in BAD_STEPS])
def test_step_endpoints_refuse_bad_input_exactly_as_fastapi_parsed_ones_do(
        server: Server, case: str, request_: dict[str, Any]) -> None:
    """The step endpoints parse their own requests (pathways/web/lean_route.py); what they
    refuse, and how they say it, must not differ from an endpoint FastAPI parses (assign)."""
    ppr = server.token("p1")
    with server.client() as http:
        instance = started(http, server.token("dr.a"))

        def sent(path: str, fill: dict[str, Any]) -> httpx.Response:
            options = dict(request_)
            if "json" in options:
                options["json"] = {**fill, **options["json"]}
            options["headers"] = {**ppr, **options.get("headers", {})}
            return http.post(f"/api/instances/{instance}/{path}", **options)

        lean = sent("events", {"event": "triage_to_ppr"})
        parsed = sent("assign", {"party": "ppr_norddjurs"})
        assert lean.status_code == parsed.status_code == 422, (lean.text, parsed.text)
        assert set(lean.json()) == {"error", "kind", "status"}
        assert lean.json()["kind"] == parsed.json()["kind"] == "RequestValidationError"
        if "json" in request_:  # the same words for the same mistake in a body
            assert lean.json()["error"] == parsed.json()["error"]
        assert "Traceback" not in lean.text
        shown = http.get(f"/api/instances/{instance}", headers=ppr).json()
        assert shown["revision"] == 1  # refused before anything was written


def test_step_endpoints_check_path_headers_and_token_as_fastapi_would(server: Server) -> None:
    ppr = server.token("p1")
    body = {"event": "triage_to_ppr", "role": "ppr"}
    with server.client() as http:
        instance = started(http, server.token("dr.a"))
        for path, sent in (("events", body),  # lean, and parsed by FastAPI
                           ("assign", {"role": "ppr", "party": "ppr_norddjurs"})):
            bad_id = http.post(f"/api/instances/NOT-AN-ID/{path}", headers=ppr, json=sent)
            assert bad_id.status_code == 422
            assert bad_id.json()["error"].startswith("path.instance: String should match")
            anonymous = http.post(f"/api/instances/{instance}/{path}", json=sent)
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"] == "Bearer"
        long_key = http.post(f"/api/instances/{instance}/events", json=body,
                             headers={**ppr, "Idempotency-Key": "k" * 129})
        assert long_key.status_code == 422
        assert long_key.json()["error"] == ("header.idempotency-key: String should have at "
                                            "most 128 characters")
        done = http.post(f"/api/instances/{instance}/events", json=body,
                         headers={**ppr, "Idempotency-Key": "k" * 128})
        assert done.status_code == 200, done.text
        assert done.json()["to"] == "ppr_assessment"


def test_a_lean_route_refuses_an_endpoint_it_cannot_parse_when_the_app_is_built() -> None:
    from pathways.web.lean_route import LeanRoute
    from pathways.web.server import bearer

    router = APIRouter(route_class=LeanRoute)
    with pytest.raises(TypeError, match="limit"):
        @router.get("/x")
        async def listed(limit: Annotated[int, Query()] = 10) -> None: ...
    guarded = APIRouter(route_class=LeanRoute, dependencies=[Depends(bearer)])
    with pytest.raises(TypeError, match="dependencies"):
        @guarded.get("/y")
        async def shown() -> None: ...


def test_every_answer_has_a_request_id_and_one_json_log_line(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    ppr = server.token("p1")
    with caplog.at_level(logging.INFO, logger="pathways.http"), server.client() as http:
        instance = started(http, server.token("dr.a"))
        given = http.post(f"/api/instances/{instance}/events", headers={
            **ppr, "X-Request-Id": "inbox-77"}, json={"event": "triage_to_ppr", "role": "ppr"})
        made = [http.get(f"/api/instances/{instance}", headers=ppr) for _ in range(3)]
        refused = http.get("/api/instances/0123456789abcdef", headers=ppr)
    assert given.headers["x-request-id"] == "inbox-77"
    ids = [r.headers["x-request-id"] for r in [*made, refused]]
    assert len(set(ids)) == 4
    assert all(len(i) >= 16 for i in ids)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pathways.http"]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["inbox-77"]["status"] == 200
    assert by_id["inbox-77"]["method"] == "POST"
    assert by_id["inbox-77"]["path"] == f"/api/instances/{instance}/events"
    assert by_id[ids[-1]]["status"] == 404
    assert all(isinstance(line["ms"], float | int) for line in lines)


RETRIED = [
    ("assign", "dr.a", {"role": "contact_person", "party": "kontakt_hanne", "acting_role": "gp"},
     {"party": "kontakt_norddjurs"}),
    ("consent", "caseworker", {"sector": "psychiatry", "basis": "consent",
                               "reference": "parent consent 2026-11-10"},
     {"reference": "another paper"}),
    ("correct", "leader", {"values": {"severity": "severe"}, "reason": "typed wrong",
                           "role": "contact_person"},
     {"values": {"severity": "moderate"}}),
]


@pytest.mark.parametrize(("path", "who", "body", "other"), RETRIED, ids=[r[0] for r in RETRIED])
def test_a_retried_write_with_its_idempotency_key_acts_once(
        server: Server, path: str, who: str, body: dict[str, Any],
        other: dict[str, Any]) -> None:
    """docs/http.md: `Idempotency-Key` on any POST; assign, consent and correct as well as
    start and advance."""
    author = server.token(who)
    with server.client() as http:
        instance = started(http, server.token("dr.a"))
        key = {**author, "Idempotency-Key": f"inbox-{path}"}
        first = http.post(f"/api/instances/{instance}/{path}", headers=key, json=body)
        assert first.status_code == 200, first.text
        history = http.get(f"/api/instances/{instance}/history", headers=author).json()
        revision = http.get(f"/api/instances/{instance}", headers=author).json()["revision"]
        again = http.post(f"/api/instances/{instance}/{path}", headers=key, json=body)
        assert (again.status_code, again.json()) == (200, first.json())
        assert http.get(f"/api/instances/{instance}/history", headers=author).json() == history
        assert http.get(f"/api/instances/{instance}",
                        headers=author).json()["revision"] == revision
        reused = http.post(f"/api/instances/{instance}/{path}", headers=key,
                           json={**body, **other})
        assert reused.status_code == 409
        assert reused.json()["kind"] == "IdempotencyConflict"
        without = http.post(f"/api/instances/{instance}/{path}", headers=author,
                            json={**body, **other})
        assert without.status_code == 200, without.text  # a new request acts


def test_the_benchmarks_client_reads_what_httpx_reads(server: Server) -> None:
    """bench/http.py measures the API through its own few-line client: it must send the same
    requests and read the same answers, refusals included, or the figure is not the API's."""
    import sys

    from support import ROOT

    sys.path.insert(0, str(ROOT))
    from bench.http import _Client

    gp, ppr = server.token("dr.a"), server.token("p1")
    body = json.dumps({"event": "triage_to_ppr", "role": "ppr"}).encode()
    json_body = {**ppr, "Content-Type": "application/json"}
    client = _Client(server.url)
    try:
        with server.client() as http:
            instance = started(http, gp)
            status, answer = client.request("POST", f"/api/instances/{instance}/events",
                                            json_body, body)
            assert status == 200
            assert json.loads(answer)["to"] == "ppr_assessment"
            for path, headers in [(f"/api/instances/{instance}", ppr),
                                  (f"/api/instances/{instance}/history", ppr),
                                  (f"/api/instances/{instance}", {}),
                                  ("/api/instances/not-an-id", ppr)]:
                expected = http.get(path, headers=headers)
                status, answer = client.request("GET", path, headers)  # the same connection
                assert (status, json.loads(answer)) == (expected.status_code, expected.json())
            status, answer = client.request("POST", f"/api/instances/{instance}/events",
                                            json_body, body)  # not allowed now
            assert status == 422
            assert "triage_to_ppr" in json.loads(answer)["error"]
    finally:
        client.close()


def _serve_lifespan(app: Any) -> None:
    """Start and stop the server's app as uvicorn does, without a socket."""
    import asyncio

    from pathways.web.server import create_app

    api = create_app(app)

    async def once() -> None:
        async with api.router.lifespan_context(api):
            pass

    asyncio.run(once())


def test_a_server_prepares_its_running_pathways_before_its_first_request(
        db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A fresh process compiled a pathway (and imported python-statemachine) on the first
    step of one of its instances, and parsed its read view on the first read: 58-80 ms a
    request, twenty at once behind a restart. It does both before it serves; a snapshot that
    does not compile is logged and keeps nothing else from being prepared or served."""
    from pathways_engine import Database
    from pathways_engine.definition import compiler
    from pathways_engine.definition import view
    from pathways_engine.store.tables import definition_snapshots
    from pathways_engine.store.tables import instances
    from sqlalchemy import insert
    from sqlalchemy import select
    from support import ACTORS
    from support import DEFINITIONS

    from pathways.app import App
    from pathways.config import Settings

    Database(db_url).dispose()  # the schema, as `pathways db upgrade` leaves it
    app = App(Settings.resolve(db_url, (DEFINITIONS,), DEFINITIONS / "parties.yaml", ACTORS))
    try:
        app.engine.start("mistrivsel_referral", subject_ref="W-1", actor="dr.a", role="gp",
                         birth_date=dt.date(2014, 5, 2),
                         values={"severity": "moderate", "consent_exchange": True})
        with app.db.writing() as connection:
            pinned = connection.execute(select(instances.c.content_hash)).scalar_one()
            connection.execute(insert(definition_snapshots).values(
                content_hash="f" * 64, pathway_id="broken", version=1, source="{not json",
                created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
        compiler._cache.pop(pinned, None)  # as in a process that has not run this pathway
        view._views.pop(pinned, None)
        with caplog.at_level(logging.WARNING, logger="pathways.prepare"):
            _serve_lifespan(app)
        assert compiler.cached(pinned) is not None
        assert view.cached_view(pinned, None) is not None
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warning.startswith(f"pathway snapshot {'f' * 12} not prepared")
        assert compiler.cached("f" * 64) is None
    finally:
        app.close()
