"""The coordinators' pages: server-rendered with Jinja2 (autoescaped), no build step, no
script. Read-only: what is overdue by area, party and pathway; one child's picture; one
instance; a pathway's diagram; the report with a chart. Labels in da, nb, sv or en (`?lang=`).

A browser signs in with the same API token (POST /ui/login), kept in an HttpOnly, SameSite=
Strict cookie; the pages check it exactly as the API checks the bearer header.
"""

from __future__ import annotations

import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Annotated
from typing import Any

from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi import Query
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from jinja2 import Environment
from jinja2 import FileSystemLoader
from jinja2 import select_autoescape

COOKIE = "pathways_token"
LANGS = ("da", "nb", "sv", "en")
LABELS: dict[str, dict[str, str]] = {
    "en": {"overdue": "Overdue now", "child": "Child", "pathway": "Pathway", "step": "Step",
           "deadline": "Deadline", "due": "Due", "late": "Late by", "area": "Area",
           "party": "Responsible", "nothing": "Nothing is overdue.", "report": "Report",
           "met": "Met on time", "started": "Started", "completed": "Completed",
           "sign_in": "Sign in", "token": "API token", "history": "History",
           "deadlines": "Deadlines", "status": "Status", "contact": "Contact person",
           "consents": "Consents", "diagram": "Diagram", "by_area": "By area",
           "by_party": "By responsible party", "by_pathway": "By pathway", "open": "Open"},
    "da": {"overdue": "Overskredet nu", "child": "Barn", "pathway": "Forløb", "step": "Trin",
           "deadline": "Frist", "due": "Udløber", "late": "Overskredet med", "area": "Område",
           "party": "Ansvarlig", "nothing": "Intet er overskredet.", "report": "Rapport",
           "met": "Overholdt", "started": "Startet", "completed": "Afsluttet",
           "sign_in": "Log ind", "token": "API-nøgle", "history": "Historik",
           "deadlines": "Frister", "status": "Status", "contact": "Kontaktperson",
           "consents": "Samtykker", "diagram": "Diagram", "by_area": "Efter område",
           "by_party": "Efter ansvarlig", "by_pathway": "Efter forløb", "open": "Åbn"},
    "nb": {"overdue": "Oversittet nå", "child": "Barn", "pathway": "Forløp", "step": "Steg",
           "deadline": "Frist", "due": "Går ut", "late": "Oversittet med", "area": "Område",
           "party": "Ansvarlig", "nothing": "Ingenting er oversittet.", "report": "Rapport",
           "met": "Overholdt", "started": "Startet", "completed": "Avsluttet",
           "sign_in": "Logg inn", "token": "API-nøkkel", "history": "Historikk",
           "deadlines": "Frister", "status": "Status", "contact": "Kontaktperson",
           "consents": "Samtykker", "diagram": "Diagram", "by_area": "Etter område",
           "by_party": "Etter ansvarlig", "by_pathway": "Etter forløp", "open": "Åpne"},
    "sv": {"overdue": "Försenat nu", "child": "Barn", "pathway": "Förlopp", "step": "Steg",
           "deadline": "Tidsgräns", "due": "Löper ut", "late": "Försenat med",
           "area": "Område", "party": "Ansvarig", "nothing": "Inget är försenat.",
           "report": "Rapport", "met": "I tid", "started": "Startade",
           "completed": "Avslutade", "sign_in": "Logga in", "token": "API-nyckel",
           "history": "Historik", "deadlines": "Tidsgränser", "status": "Status",
           "contact": "Kontaktperson", "consents": "Samtycken", "diagram": "Diagram",
           "by_area": "Per område", "by_party": "Per ansvarig", "by_pathway": "Per förlopp",
           "open": "Öppna"},
}

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)

Lang = Annotated[str, Query(pattern="^(da|nb|sv|en)$")]


def page(name: str, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(t=LABELS[lang], lang=lang, **context)
    return HTMLResponse(html, status_code=status)


def login_redirect() -> Response:
    return RedirectResponse("/ui/login", status_code=303)


def add_pages(api: FastAPI, app: Any, caller: Any) -> None:
    def signed_in(request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            return str(caller(f"Bearer {token}"))
        except Exception:  # noqa: BLE001 - an unknown or revoked token: sign in again
            return None

    _add_login(api, caller)
    _add_cases(api, app, signed_in)
    _add_figures(api, app, signed_in)


def _add_login(api: FastAPI, caller: Any) -> None:
    @api.get("/ui/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(lang: Lang = "en") -> HTMLResponse:
        return page("login.html", lang)

    @api.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        try:
            caller(f"Bearer {token}")
        except Exception:  # noqa: BLE001 - the same answer for every bad token
            return page("login.html", "en", status=401, failed=True)
        response = RedirectResponse("/ui/overdue", status_code=303)
        secure = request.headers.get("x-forwarded-proto", request.url.scheme) == "https"
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure,
                            max_age=8 * 3600)
        return response



def _add_cases(api: FastAPI, app: Any, signed_in: Any) -> None:
    @api.get("/ui/overdue", response_class=HTMLResponse, include_in_schema=False)
    def overdue(request: Request, lang: Lang = "en") -> Response:
        from pathways_engine.reading.views import overdue as overdue_rows

        from pathways.cases import assigned_by_instance
        from pathways.cases import party_of

        actor = signed_in(request)
        if actor is None:
            return login_redirect()
        scope = app.actors.scope(actor)
        rows = overdue_rows(app, areas=set(scope) if scope is not None else None,
                            language=lang)
        assigned = assigned_by_instance(app, sorted({r["instance"] for r in rows}))
        for r in rows:
            r["party"] = party_of(app, r["responsible"], r["area"],
                                  assigned.get(r["instance"], {})) or "-"
        groups = {key: _count(rows, key) for key in ("area", "party", "pathway")}
        return page("overdue.html", lang, rows=rows, groups=groups)

    @api.get("/ui/subjects/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def subject(request: Request,
                ref: Annotated[str, PathParam(max_length=64, pattern=r"^[A-Za-z0-9_.:/#-]+$")],
                lang: Lang = "en") -> Response:
        from pathways_engine.reading.subjects import subject as subject_view

        actor = signed_in(request)
        if actor is None:
            return login_redirect()
        scope = app.actors.scope(actor)
        data = subject_view(app, ref, language=lang,
                            areas=set(scope) if scope is not None else None)
        return page("subject.html", lang, data=data)

    @api.get("/ui/instances/{instance}", response_class=HTMLResponse, include_in_schema=False)
    def instance(request: Request,
                 instance: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")],
                 lang: Lang = "en") -> Response:
        from pathways_engine.reading.views import show

        actor = signed_in(request)
        if actor is None:
            return login_redirect()
        data = show(app, instance, language=lang,
                    authorize=lambda area: app.actors.check_area(actor, area, instance))
        return page("instance.html", lang, data=data)



def _add_figures(api: FastAPI, app: Any, signed_in: Any) -> None:
    @api.get("/ui/pathways/{pathway}", response_class=HTMLResponse, include_in_schema=False)
    def diagram(request: Request,
                pathway: Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
                lang: Lang = "en") -> Response:
        from pathways_engine.definition.diagrams import mermaid

        if signed_in(request) is None:
            return login_redirect()
        compiled = app.registry.compiled(pathway)
        return page("diagram.html", lang, spec=compiled.spec, text=mermaid(compiled))

    @api.get("/ui/report", response_class=HTMLResponse, include_in_schema=False)
    def report(request: Request, lang: Lang = "en") -> Response:
        from pathways.readouts import report_rows

        if signed_in(request) is None:
            return login_redirect()
        rows = report_rows(app, None, None, None, "step")
        return page("report.html", lang, rows=rows)


def _count(rows: list[dict[str, Any]], key: str) -> list[tuple[str, int]]:
    counted: dict[str, int] = defaultdict(int)
    for r in rows:
        counted[str(r.get(key) or "-")] += 1
    return sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
