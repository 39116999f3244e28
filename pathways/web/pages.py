"""The coordinators' pages: server-rendered with Jinja2 (autoescaped), no build step, no
script. Read-only: what is overdue by area, party and pathway; one child's picture; one
instance; a pathway's diagram; the report with a chart. Labels in da, nb, sv or en (`?lang=`).

A browser signs in with the same API token (POST /ui/login), kept in an HttpOnly, SameSite=
Strict cookie; the pages check it exactly as the API checks the bearer header.
"""

from __future__ import annotations

import datetime as dt
import posixpath
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
from pathways_engine.errors import InvalidArgument

from .worded import Names
from .worded import said

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
           "by_party": "By responsible party", "by_pathway": "By pathway", "open": "Open",
           "sign_out": "Sign out", "skip": "Skip to content",
           "bad_token": "The token is unknown, revoked or expired.", "e400": "This request cannot be used",
           "e403": "Not allowed", "e404": "Not found", "e409": "Changed meanwhile",
           "e500": "Something went wrong", "only": "Only", "remove": "remove",
           "show_all": "Show everything overdue", "pathways": "Pathways",
           "from": "From", "event": "Event", "to": "To", "who": "Who may", "condition": "When",
           "stays": "(stays)", "system": "the system", "states": "States",
           "transitions": "Steps", "drawing": "Drawing",
           "by": "Group by", "all_pathways": "All pathways", "all_areas": "All areas",
           "show": "Show",
           "median": "Median days", "p90": "90 % within (days)", "role": "Role",
           "organisation": "Organisation", "period": "Period",
           "no_figures": "Nothing started in this period."},
    "da": {"overdue": "Overskredet nu", "child": "Barn", "pathway": "Forløb", "step": "Trin",
           "deadline": "Frist", "due": "Udløber", "late": "Overskredet med", "area": "Område",
           "party": "Ansvarlig", "nothing": "Intet er overskredet.", "report": "Rapport",
           "met": "Overholdt", "started": "Startet", "completed": "Afsluttet",
           "sign_in": "Log ind", "token": "API-nøgle", "history": "Historik",
           "deadlines": "Frister", "status": "Status", "contact": "Kontaktperson",
           "consents": "Samtykker", "diagram": "Diagram", "by_area": "Efter område",
           "by_party": "Efter ansvarlig", "by_pathway": "Efter forløb", "open": "Åbn",
           "sign_out": "Log ud", "skip": "Spring til indhold",
           "bad_token": "Nøglen er ukendt, tilbagekaldt eller udløbet.",
           "e400": "Forespørgslen kan ikke bruges", "e403": "Ikke tilladt",
           "e404": "Ikke fundet", "e409": "Ændret imens", "e500": "Noget gik galt",
           "only": "Kun", "remove": "fjern", "show_all": "Vis alt, der er overskredet", "pathways": "Forløb",
           "from": "Fra", "event": "Hændelse", "to": "Til", "who": "Hvem må", "condition": "Når",
           "stays": "(bliver)", "system": "systemet", "states": "Tilstande",
           "transitions": "Trin", "drawing": "Tegning",
           "by": "Gruppér efter", "all_pathways": "Alle forløb", "all_areas": "Alle områder",
           "show": "Vis",
           "median": "Median, dage", "p90": "90 % inden for (dage)", "role": "Rolle",
           "organisation": "Organisation", "period": "Periode",
           "no_figures": "Intet er startet i perioden."},
    "nb": {"overdue": "Oversittet nå", "child": "Barn", "pathway": "Forløp", "step": "Steg",
           "deadline": "Frist", "due": "Går ut", "late": "Oversittet med", "area": "Område",
           "party": "Ansvarlig", "nothing": "Ingenting er oversittet.", "report": "Rapport",
           "met": "Overholdt", "started": "Startet", "completed": "Avsluttet",
           "sign_in": "Logg inn", "token": "API-nøkkel", "history": "Historikk",
           "deadlines": "Frister", "status": "Status", "contact": "Kontaktperson",
           "consents": "Samtykker", "diagram": "Diagram", "by_area": "Etter område",
           "by_party": "Etter ansvarlig", "by_pathway": "Etter forløp", "open": "Åpne",
           "sign_out": "Logg ut", "skip": "Hopp til innhold",
           "bad_token": "Nøkkelen er ukjent, tilbakekalt eller utløpt.",
           "e400": "Forespørselen kan ikke brukes", "e403": "Ikke tillatt",
           "e404": "Ikke funnet", "e409": "Endret i mellomtiden", "e500": "Noe gikk galt",
           "only": "Bare", "remove": "fjern", "show_all": "Vis alt som er oversittet", "pathways": "Forløp",
           "from": "Fra", "event": "Hendelse", "to": "Til", "who": "Hvem kan", "condition": "Når",
           "stays": "(blir)", "system": "systemet", "states": "Tilstander",
           "transitions": "Steg", "drawing": "Tegning",
           "by": "Grupper etter", "all_pathways": "Alle forløp", "all_areas": "Alle områder",
           "show": "Vis",
           "median": "Median, dager", "p90": "90 % innen (dager)", "role": "Rolle",
           "organisation": "Organisasjon", "period": "Periode",
           "no_figures": "Ingenting er startet i perioden."},
    "sv": {"overdue": "Försenat nu", "child": "Barn", "pathway": "Förlopp", "step": "Steg",
           "deadline": "Tidsgräns", "due": "Löper ut", "late": "Försenat med",
           "area": "Område", "party": "Ansvarig", "nothing": "Inget är försenat.",
           "report": "Rapport", "met": "I tid", "started": "Startade",
           "completed": "Avslutade", "sign_in": "Logga in", "token": "API-nyckel",
           "history": "Historik", "deadlines": "Tidsgränser", "status": "Status",
           "contact": "Kontaktperson", "consents": "Samtycken", "diagram": "Diagram",
           "by_area": "Per område", "by_party": "Per ansvarig", "by_pathway": "Per förlopp",
           "open": "Öppna", "sign_out": "Logga ut", "skip": "Hoppa till innehållet",
           "bad_token": "Nyckeln är okänd, återkallad eller har gått ut.",
           "e400": "Begäran kan inte användas", "e403": "Inte tillåtet",
           "e404": "Hittades inte", "e409": "Ändrat under tiden", "e500": "Något gick fel",
           "only": "Endast", "remove": "ta bort", "show_all": "Visa allt som är försenat",
           "pathways": "Förlopp",
           "from": "Från", "event": "Händelse", "to": "Till", "who": "Vem får", "condition": "När",
           "stays": "(stannar)", "system": "systemet", "states": "Tillstånd",
           "transitions": "Steg", "drawing": "Ritning",
           "by": "Gruppera efter", "all_pathways": "Alla förlopp", "all_areas": "Alla områden",
           "show": "Visa",
           "median": "Median, dagar", "p90": "90 % inom (dagar)", "role": "Roll",
           "organisation": "Organisation", "period": "Period",
           "no_figures": "Inget har startat under perioden."},
}

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)

Lang = Annotated[str | None, Query(pattern="^(da|nb|sv|en)$")]

# the primary language subtags a browser may ask for, and the labels that answer them (a
# Nynorsk reader reads Bokmål)
_SPOKEN = {"da": "da", "nb": "nb", "no": "nb", "nn": "nb", "sv": "sv", "en": "en"}
HOME = "/ui/overdue"


def language(request: Request, asked: str | None = None) -> str:
    """`?lang=` when given, else the first language of the browser's Accept-Language that the
    pages speak, else English: a team lead in Aarhus reads Danish without asking for it."""
    if asked in LABELS:
        return asked
    wanted: list[tuple[float, int, str]] = []
    for order, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, rest = part.strip().partition(";")
        q = 1.0
        if rest.strip().startswith("q="):
            try:
                q = float(rest.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().split("-")[0].lower()
        if q > 0 and primary in _SPOKEN:
            wanted.append((-q, order, _SPOKEN[primary]))
    return min(wanted)[2] if wanted else "en"


def page(name: str, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(t=LABELS[lang], lang=lang, **context)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """What a page that cannot be shown answers: the same status and one-line message as the
    API, as a page in the reader's language - a team lead following a link to another
    municipality's child reads why, not a JSON object."""
    lang = language(request, request.query_params.get("lang"))
    title = {403: "e403", 401: "e403", 404: "e404", 409: "e409"}.get(status, "e400")
    if status >= 500:
        title = "e500"
    return page("error.html", lang, status=status, title=LABELS[lang][title], message=message,
                signed_in=COOKIE in request.cookies)


def is_page(request: Request) -> bool:
    return request.url.path == "/ui" or request.url.path.startswith("/ui/")


def login_redirect(request: Request, lang: str) -> Response:
    """To the sign-in page, which comes back here once signed in."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = urllib.parse.urlencode({"lang": lang, "next": here})
    return RedirectResponse(f"/ui/login?{query}", status_code=303)


def back_to(asked: str | None) -> str:
    """Where signing in goes next: a page of this site, never another (`next` comes from
    the address bar, so an outside link could otherwise send a signed-in reader anywhere)."""
    if not asked or not asked.startswith("/ui/") or any(c in asked for c in "\\\r\n"):
        return HOME
    where = urllib.parse.urlsplit(asked)
    path = posixpath.normpath(urllib.parse.unquote(where.path))  # a browser resolves "%2e%2e"
    if where.scheme or where.netloc or not path.startswith("/ui/") or \
            path in ("/ui/login", "/ui/logout"):
        return HOME
    return asked


def add_pages(api: FastAPI, app: Any, caller: Any) -> None:
    def signed_in(request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            return str(caller(f"Bearer {token}"))
        except Exception:  # noqa: BLE001 - an unknown, revoked or expired token: sign in again
            return None

    @api.get("/", include_in_schema=False)
    @api.get("/ui", include_in_schema=False)
    @api.get("/ui/", include_in_schema=False)
    def home(request: Request, lang: Lang = None) -> Response:
        """A browser opening the server's address lands on what is overdue (or signs in)."""
        return RedirectResponse(f"{HOME}?lang={language(request, lang)}", status_code=303)

    _add_login(api, caller)
    _add_cases(api, app, signed_in)
    _add_figures(api, app, signed_in)


def _form(body: bytes) -> dict[str, str]:
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return {key: values[0].strip() for key, values in form.items() if values}


def _secure(request: Request) -> bool:
    return request.headers.get("x-forwarded-proto", request.url.scheme) == "https"


def _add_login(api: FastAPI, caller: Any) -> None:
    @api.get("/ui/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, lang: Lang = None,
                   after: Annotated[str | None, Query(alias="next", max_length=2000)] = None
                   ) -> HTMLResponse:
        where = back_to(after)
        keep = urllib.parse.urlencode({"next": where}) if where != HOME else ""
        return page("login.html", language(request, lang), next=where, keep=keep)

    @api.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = _form(await request.body())
        lang, token = language(request, form.get("lang")), form.get("token", "")
        where = back_to(form.get("next"))
        try:
            caller(f"Bearer {token}")
        except Exception:  # noqa: BLE001 - the same answer for every bad token
            return page("login.html", lang, status=401, failed=True, next=where)
        joined = "&" if "?" in where else "?"
        target = where if "lang=" in where else f"{where}{joined}lang={lang}"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                            secure=_secure(request), max_age=8 * 3600)
        return response

    @api.post("/ui/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        """Forget the token in this browser (a shared computer in a school office); the token
        itself stays valid until `pathways token revoke`."""
        lang = language(request, _form(await request.body()).get("lang"))
        response = RedirectResponse(f"/ui/login?lang={lang}", status_code=303)
        response.delete_cookie(COOKIE, httponly=True, samesite="strict",
                               secure=_secure(request))
        return response


def _add_cases(api: FastAPI, app: Any, signed_in: Any) -> None:
    @api.get("/ui/overdue", response_class=HTMLResponse, include_in_schema=False)
    def overdue(request: Request, lang: Lang = None,
                area: Annotated[str | None, Query(max_length=64)] = None,
                party: Annotated[str | None, Query(max_length=64)] = None,
                pathway: Annotated[str | None, Query(max_length=64)] = None) -> Response:
        """Grouped by area, party and pathway; a group's name narrows the list to it, as
        `pathways overdue --area/--party/--pathway` does (and checks the values alike)."""
        from pathways_notifications.wording import how_long

        from pathways.cases import filters
        from pathways.cases import overdue_cases

        lang = language(request, lang)
        actor = signed_in(request)
        if actor is None:
            return login_redirect(request, lang)
        chosen = {"area": area or None, "party": party or None, "pathway": pathway or None}
        rows = overdue_cases(app, filters(app, **chosen, prefix=""), scope=app.actors.scope(actor),
                             language=lang)
        named = Names(app, lang)
        for r in rows:
            r["party"] = r["responsible_party"] or "-"
            r["pathway_title"] = named.pathway(r["pathway"])
            r["party_name"] = named.group("organisation", r["pathway"], r["responsible_party"])
            r["role_label"] = named.group("role", r["pathway"], r["responsible"])
            r["due"] = named.time(r["pathway"], r["due_local"])
            r["late_by"] = how_long(dt.timedelta(seconds=r["overdue_seconds"]), lang)
        groups = {key: _count(rows, key) for key in ("area", "party", "pathway")}
        names = {"area": lambda value: value,
                 "party": lambda value: named.group("organisation", "", value),
                 "pathway": named.pathway}
        narrowed = {key: value for key, value in chosen.items() if value}
        return page("overdue.html", lang, rows=rows, groups=groups, signed_in=True,
                    narrowed=narrowed, narrow_all=f"{HOME}?lang={lang}",
                    keep=urllib.parse.urlencode(narrowed),  # another language, same list
                    narrow=lambda key, value: _narrow(lang, narrowed, key, value),
                    name_of=lambda key, value: names[key](value) if value != "-" else value)

    @api.get("/ui/subjects/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def subject(request: Request,
                ref: Annotated[str, PathParam(max_length=64, pattern=r"^[A-Za-z0-9_.:/#-]+$")],
                lang: Lang = None) -> Response:
        from pathways_engine.reading.subjects import subject as subject_view
        from pathways_notifications.wording import local_time

        from .worded import word

        lang = language(request, lang)
        actor = signed_in(request)
        if actor is None:
            return login_redirect(request, lang)
        scope = app.actors.scope(actor)
        data = subject_view(app, ref, language=lang,
                            areas=set(scope) if scope is not None else None)
        return page("subject.html", lang, data=data, signed_in=True,
                    word=lambda key: word(key, lang),
                    when=lambda at, zone: local_time(at, zone, lang) or "-",
                    whose=Names(app, lang).responsible)

    @api.get("/ui/instances/{instance}", response_class=HTMLResponse, include_in_schema=False)
    def instance(request: Request,
                 instance: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")],
                 lang: Lang = None) -> Response:
        from pathways_engine.definition.view import cached_view
        from pathways_engine.reading.views import show

        from .worded import Worded

        lang = language(request, lang)
        actor = signed_in(request)
        if actor is None:
            return login_redirect(request, lang)
        data = show(app, instance, language=lang,
                    authorize=lambda area: app.actors.check_area(actor, area, instance))
        worded = Worded(data, cached_view(data["definition_hash"], None),
                        _step_titles(app, data["pathway"], data["version"]), app.actors,
                        app.parties, lang, Names(app, lang).pathway)
        return page("instance.html", lang, data=data, signed_in=True,
                    status_text=worded.word(data["status"]), deadlines=worded.deadlines(),
                    history=worded.history(), related=worded.related(), w=worded.words)


def _add_figures(api: FastAPI, app: Any, signed_in: Any) -> None:
    @api.get("/ui/pathways/{pathway}", response_class=HTMLResponse, include_in_schema=False)
    def diagram(request: Request,
                pathway: Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
                lang: Lang = None) -> Response:
        from pathways_engine.definition.diagrams import mermaid

        lang = language(request, lang)
        if signed_in(request) is None:
            return login_redirect(request, lang)
        compiled = app.registry.compiled(pathway)
        return page("diagram.html", lang, spec=compiled.spec, text=mermaid(compiled),
                    signed_in=True, drawing=_drawing(compiled), steps=_steps(compiled, lang),
                    states=_states(compiled, lang), said=lambda text, name: said(text, lang,
                                                                                  name))

    @api.get("/ui/pathways", response_class=HTMLResponse, include_in_schema=False)
    def pathways(request: Request, lang: Lang = None) -> Response:
        """Every pathway this server runs, each linked to its drawing and steps."""
        lang = language(request, lang)
        if signed_in(request) is None:
            return login_redirect(request, lang)
        shown = sorted(((d.spec.id, d.spec.version, said(d.spec.title, lang, d.spec.id))
                        for d in app.registry.all()), key=lambda row: row[2].lower())
        return page("pathways.html", lang, shown=shown, signed_in=True)

    @api.get("/ui/report", response_class=HTMLResponse, include_in_schema=False)
    def report(request: Request, lang: Lang = None,
               start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
               end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
               pathway: Annotated[str | None, Query(max_length=64)] = None,
               by: Annotated[str, Query(pattern="^(step|role|organisation|area)$")] = "step",
               area: Annotated[str | None, Query(max_length=64)] = None) -> Response:
        """The steering group's figures for a period, a pathway, an area and a grouping, as
        `pathways report --from --to --pathway --area --by` computes them; the form's empty
        fields mean its defaults (the year up to today, every pathway, every area the reader
        works for)."""
        from pathways.readouts import report_period
        from pathways.readouts import report_rows

        lang = language(request, lang)
        actor = signed_in(request)
        if actor is None:
            return login_redirect(request, lang)
        first, last = report_period(app, _day("from", start), _day("to", end), prefix="")
        rows = report_rows(app, first, last, pathway or None, by, area=area or None,
                           reader=actor, prefix="")
        named = Names(app, lang)
        for r in rows:
            r["pathway_title"] = named.pathway(str(r["pathway"]))
            r["group"] = named.group(by, str(r["pathway"]), r.get(by))
            r["linked"] = r["pathway"] in named.specs  # one that left the definitions has no page
        choices = sorted(((spec.id, said(spec.title, lang, spec.id))
                          for spec in named.specs.values()), key=lambda row: row[1].lower())
        scope = app.actors.scope(actor)
        known = set(app.parties.areas) if app.parties is not None else set()
        return page("report.html", lang, rows=rows, signed_in=True, by=by, first=first,
                    last=last, pathway=pathway or "", choices=choices, area=area or "",
                    areas=sorted(known if scope is None else scope),
                    keep=urllib.parse.urlencode({key: value for key, value in (
                        ("from", start), ("to", end), ("pathway", pathway), ("area", area),
                        ("by", by if by != "step" else None)) if value}))


def _step_titles(app: Any, pathway: str, version: int) -> dict[str, Any]:
    """Each event's title, from the pathway's file (a snapshot's read view has none): the
    instance's version where the files still have it, else the newest."""
    from pathways_engine.errors import DefinitionError
    from pathways_engine.errors import UnknownPathway

    for wanted in (version, None):
        try:
            spec = app.registry.get(pathway, wanted).spec
        except UnknownPathway:
            continue
        except DefinitionError:  # a broken file: the steps as their moves say them
            return {}
        return {t.event: t.title for t in spec.transitions if t.title}
    return {}  # a pathway that left the files: its events as they are named


def _day(name: str, text: str | None) -> dt.date | None:
    """A date field of a GET form: empty is its default, anything else must be YYYY-MM-DD."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


def _steps(compiled: Any, lang: str) -> list[dict[str, str]]:
    """Each transition from each of its states, worded for people: the table that says in
    text what the drawing shows (and what a screen reader reads)."""
    spec, t = compiled.spec, LABELS[lang]
    rows = []
    for transition in spec.transitions:
        for source in transition.sources:
            target = transition.target_from(source)
            rows.append({
                "from": said(spec.states[source].title, lang, source),
                "event": said(transition.title, lang, transition.event.replace("_", " ")),
                "to": said(spec.states[target].title, lang, target) if target else t["stays"],
                "who": ", ".join(transition.roles) or t["system"],
                "condition": transition.guard or ""})
    return rows


def _states(compiled: Any, lang: str) -> list[tuple[str, list[str]]]:
    from pathways_engine.definition.diagrams import state_notes

    notes = state_notes(compiled)
    return [(said(state.title, lang, name), notes.get(name, []))
            for name, state in ((n, compiled.spec.states[n])
                                for n in compiled.spec.reading_order())]


def _drawing(compiled: Any) -> str | None:
    """The state diagram as inline SVG where Graphviz is installed, shown unescaped (Graphviz
    escapes every label it draws); None without it, and the page shows the steps as text."""
    import shutil

    if shutil.which("dot") is None:
        return None
    from pathways_engine.definition.diagrams import svg

    try:
        drawn = svg(compiled)
    except Exception:  # noqa: BLE001 - a drawing that fails leaves the text, which says it all
        return None
    start = drawn.find("<svg")
    return drawn[start:] if start >= 0 else None


def _narrow(lang: str, narrowed: dict[str, str], key: str, value: str | None) -> str:
    """The overdue page's address with one filter set (`value`) or taken off (None)."""
    wanted = {**narrowed, key: value} if value is not None else \
        {k: v for k, v in narrowed.items() if k != key}
    return f"{HOME}?{urllib.parse.urlencode({'lang': lang, **wanted})}"


def _count(rows: list[dict[str, Any]], key: str) -> list[tuple[str, int]]:
    counted: dict[str, int] = defaultdict(int)
    for r in rows:
        counted[str(r.get(key) or "-")] += 1
    return sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
