"""The ASGI app: JSON API (OpenAPI at /docs and /openapi.json), coordinators' pages, health and
metrics - one App (settings, database, actors, parties) shared by every request.

Authentication: `Authorization: Bearer TOKEN`, a token `pathways token create --actor A` made
(stored hashed). The token says who acts; each write names the role it acts in, checked against
the actors file exactly as the CLI checks `--as A --role R`, and the actor's areas scope what it
may read or change. Personal data appears only for a reader whose role's sector has consent or a
legal basis, as in messages. Run it behind a TLS-terminating reverse proxy: the server speaks
plain HTTP on the address it is given (127.0.0.1 by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import functools
import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated
from typing import Any
from typing import Protocol

from fastapi import APIRouter
from fastapi import Depends
from fastapi import FastAPI
from fastapi import Header
from fastapi import Path
from fastapi import Query
from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.responses import Response
from pathways_engine.errors import NotAuthorized
from pathways_engine.errors import PathwaysError
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pathways.app import App

from .errors import status_of
from .lean_route import LeanRoute

log = logging.getLogger("pathways.http")
MAX_BODY = 64 * 1024  # a step's request is a few hundred bytes; refuse what is not a request
INSTANCE_ID = r"^[0-9a-f]{16}$"
IDENT = r"^[a-z][a-z0-9_]{0,63}$"
# an area of the parties file (engine/areas.py checks the form) and a party's id
AreaQuery = Annotated[str | None, Query(max_length=64)]
PartyQuery = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
TOUCH_EVERY = dt.timedelta(minutes=5)  # last_used_at is written at most this often per token

InstanceId = Annotated[str, Path(pattern=INSTANCE_ID, description="A pathway instance's id.")]
RoleQuery = Annotated[str | None, Query(pattern=IDENT, description=(
    "The role the caller reads in; with it, personal data shows where a basis exists."))]
IdempotencyKey = Annotated[str | None, Header(max_length=128, description=(
    "Makes a retried POST answer as the first did instead of acting twice."))]


class _Unauthorized(Exception):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(_Strict):
    pathway: str = Field(pattern=IDENT)
    subject: str = Field(min_length=1, max_length=64)
    role: str = Field(pattern=IDENT, description="The role the caller starts it in.")
    birth_date: dt.date | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    area: str | None = Field(default=None, max_length=64)
    version: int | None = Field(default=None, ge=1)
    at: dt.datetime | None = None
    allow_duplicate: bool = False


class EventBody(_Strict):
    event: str = Field(pattern=IDENT)
    role: str = Field(pattern=IDENT)
    values: dict[str, Any] = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=2000)
    at: dt.datetime | None = None
    expected_revision: int | None = Field(default=None, ge=1, description=(
        "Refuse (409) if the instance changed since the caller read this revision."))


class AssignBody(_Strict):
    role: str = Field(pattern=IDENT)
    party: str = Field(min_length=1, max_length=128)
    acting_role: str | None = Field(default=None, pattern=IDENT)
    for_child: bool = False


class ConsentBody(_Strict):
    sector: str = Field(pattern=IDENT)
    basis: str = Field(pattern="^(consent|statutory)$")
    reference: str = Field(min_length=1, max_length=500)
    role: str | None = Field(default=None, pattern=IDENT)
    withdraw: bool = False


class CorrectBody(_Strict):
    values: dict[str, Any]
    reason: str = Field(min_length=1, max_length=500)
    role: str = Field(pattern=IDENT)


UNAUTHORIZED = "the token is unknown, revoked or expired"


def actor_for(app: App, authorization: str | None) -> str:
    """The actor a bearer token stands for (401 without a live token), checked in a read
    transaction of its own."""
    from pathways_engine.store import tokens

    token = _token(authorization)
    now = app.clock.now()
    with app.db.reading() as connection:
        found = tokens.live(connection, token, now)
    if found is None:
        raise _Unauthorized(UNAUTHORIZED)
    if _stale(found.last_used_at, now):
        with app.db.writing() as connection:
            tokens.touch(connection, found.id, now)
    app.actors.known(found.actor)
    _TOKEN_ACTORS[app.settings.database_url, tokens.digest(token)] = str(found.actor)
    return str(found.actor)


# (database, digest) -> actor of every token seen live: a token's actor never changes, so a
# step checks the token in its own transaction (step_actor), not in a read transaction before
# it: one transaction a step instead of two (bench/http.py), and no gap between the check and
# the act
_TOKEN_ACTORS: dict[tuple[str, str], str] = {}


def step_actor(app: App, authorization: str | None) -> tuple[str, Callable[[Any], None]]:
    """(actor, check) for a step: `check` runs in the step's transaction and refuses it unless
    the token is still live there - revoked a moment before, it acts on nothing. A token not
    seen before is first looked up as `actor_for` does."""
    from pathways_engine.store import tokens

    token = _token(authorization)
    key = app.settings.database_url, tokens.digest(token)
    actor = _TOKEN_ACTORS.get(key) or actor_for(app, authorization)

    def check(connection: Any) -> None:
        now = app.clock.now()
        found = tokens.live(connection, token, now)
        if found is None:
            _TOKEN_ACTORS.pop(key, None)
            raise _Unauthorized(UNAUTHORIZED)
        if _stale(found.last_used_at, now):
            tokens.touch(connection, found.id, now)  # commits with the step, or not at all

    app.actors.known(actor)
    return actor, check


def _stale(last_used_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether `last_used_at` is due a write (at most every TOUCH_EVERY per token)."""
    return last_used_at is None or now - last_used_at > TOUCH_EVERY


def _token(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise _Unauthorized("give `Authorization: Bearer TOKEN` (pathways token create)")
    return authorization.removeprefix("Bearer ").strip()


async def bearer(authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The Authorization header, read on the event loop; the endpoint checks it in the same
    worker thread as its step (one thread hop a request, not two: bench/http.py)."""
    return authorization


Caller = Annotated[str | None, Depends(bearer)]


def reader_of(app: App, actor: str, role: str | None, instance: str) -> dict[str, Any]:
    """A read's viewer (personal data needs a role) and its area check."""
    from pathways_engine.reading.views import Viewer

    viewer = None
    if role is not None:
        app.actors.authorize(actor, role)
        viewer = Viewer(actor, role)
    return {"viewer": viewer,
            "authorize": lambda area: app.actors.check_area(actor, area, instance)}


def areas_of(app: App, actor: str) -> set[str] | None:
    scope = app.actors.scope(actor)
    return set(scope) if scope is not None else None


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


# the threads a request's work runs in, handed it by the event loop directly: anyio's
# `to_thread` (FastAPI's way) looks the async library up, enters a cancel scope and takes a
# capacity limiter token on every call, about a tenth of the event loop's share of a step
# request (py-spy). Few: Python runs one thread's code at a time, so more threads share the
# interpreter lock instead of working in parallel. Under 20 concurrent `show` clients 40
# threads (anyio's default) measured the worst p99 and throughput on SQLite and PostgreSQL;
# 1-4 the best (docs/http.md). `serve --threads` sets it per server.
DEFAULT_THREADS = 4
THREADS_ENV = "PATHWAYS_HTTP_THREADS"  # how `serve --threads` reaches its worker processes
_WORKERS = ThreadPoolExecutor(max_workers=DEFAULT_THREADS, thread_name_prefix="pathways-http")


def one_hop(status: int = 200, pool: ThreadPoolExecutor | None = None
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run a sync endpoint in a worker thread of `pool` once and answer its JSON directly.

    FastAPI runs a sync endpoint in the thread pool and then its response serialisation there
    too: two thread hops a request, measured as most of what a request costs beyond the step
    it makes (bench/http.py). The body is the same JSON (dates as ISO 8601)."""
    workers = pool or _WORKERS

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        async def endpoint(*args: Any, **kwargs: Any) -> Any:
            work = functools.partial(handler, *args, **kwargs)
            result = await asyncio.get_running_loop().run_in_executor(
                workers, contextvars.copy_context().run, work)
            if isinstance(result, Response):
                return result
            body = json.dumps(result, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":"), default=_encode)
            return Response(body, status_code=status, media_type="application/json")
        return endpoint
    return wrap


class Hop(Protocol):
    """`one_hop` bound to one app's threads."""

    def __call__(self, status: int = 200) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        ...


# a new request id: this process's random prefix and a count, unique without asking the
# system for random bytes on every request as secrets.token_hex did (bench/http.py)
_PROCESS, _REQUESTS = secrets.token_hex(4), itertools.count(1)


class _Guard:
    """Request id, size limit and one structured log line per request - as plain ASGI:
    Starlette's BaseHTTPMiddleware costs more than the step it wraps (bench/http.py)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] \
            or f"{_PROCESS}{next(_REQUESTS):08x}"
        length = headers.get(b"content-length", b"").decode("latin-1")
        started = time.perf_counter()
        status = [0]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        if length and (not length.isdigit() or int(length) > MAX_BODY):
            await _error(413, f"the request body is over {MAX_BODY} bytes")(scope, receive,
                                                                            sending)
        else:
            await self.inner(scope, receive, sending)
        if log.isEnabledFor(logging.INFO):
            log.info(json.dumps({"request_id": request_id, "method": scope["method"],
                                 "path": scope["path"], "status": status[0],
                                 "ms": round((time.perf_counter() - started) * 1000, 1)}))


def create_app(app: App, threads: int = DEFAULT_THREADS) -> FastAPI:
    """The server for one deployment's App; the App must stay open while it serves. At most
    `threads` requests' work runs at once (the API's and the pages' alike), the others wait
    their turn on the event loop."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pathways-http")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # the pages' sync endpoints run in anyio's threads (FastAPI's way): the same bound
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        from pathways_engine.reading.warm import prepare

        prepare(app.engine)  # before the first request, not during it (reading/warm.py)
        try:
            yield
        finally:
            pool.shutdown(wait=False)

    api = FastAPI(title="pathways", version="1", lifespan=lifespan,
                  description="Cross-sector pathways: the same operations and JSON keys as the "
                              "`pathways` CLI (README, `--json` keys).")
    app.may("write")

    def hop(status: int = 200) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return one_hop(status, pool)

    api.add_middleware(_Guard)

    from . import pages  # the pages answer their errors as pages, the API as JSON

    @api.exception_handler(PathwaysError)
    async def pathways_error(request: Request, exc: PathwaysError) -> Response:
        if pages.is_page(request):
            return pages.error_page(request, status_of(exc), str(exc))
        return _error(status_of(exc), str(exc), type(exc).__name__)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid')}"
        if pages.is_page(request):
            return pages.error_page(request, 422, message)
        return _error(422, message, "RequestValidationError")

    @api.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        """An address or method nothing answers: a page under /ui, FastAPI's JSON elsewhere."""
        if pages.is_page(request):
            return pages.error_page(request, exc.status_code, "")
        return await http_exception_handler(request, exc)

    @api.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, exc: _Unauthorized) -> Response:
        response = _error(401, str(exc), "NotAuthenticated")
        response.headers["www-authenticate"] = "Bearer"
        return response

    api.state.pathways = app
    api.state.threads = threads
    _operations(api, app)
    _writes(api, app, hop)
    _reads(api, app, hop)
    pages.add_pages(api, app, lambda header: actor_for(app, header))
    return api


def _operations(api: FastAPI, app: App) -> None:
    @api.get("/healthz", tags=["operations"])
    def healthz() -> Response:
        """Database reachable and its schema current (503 otherwise)."""
        from pathways_engine.store.database import SCHEMA_HEAD
        from pathways_engine.store.database import stored_revision

        try:
            found = stored_revision(app.db.engine)
        except Exception as exc:  # noqa: BLE001 - a health check answers, it does not crash
            return _error(503, f"database unreachable: {exc}", "DatabaseError")
        ok = found == SCHEMA_HEAD
        return JSONResponse({"database": "reachable", "schema": found, "schema_current": ok},
                            status_code=200 if ok else 503)

    @api.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        """Prometheus: timer lag, due wake-ups, outbox backlog and failures, steps."""
        from .metrics import exposition

        body, content_type = exposition(app)
        return Response(body, media_type=content_type)



def _writes(api: FastAPI, app: App, hop: Hop) -> None:
    # ------------------------------------------------------------------ definitions

    @api.get("/api/definitions", tags=["definitions"])
    @hop()
    def definitions(actor: Caller) -> list[dict[str, Any]]:
        actor = actor_for(app, actor)
        return [{"id": d.spec.id, "version": d.spec.version, "title": d.spec.title,
                 "country": d.spec.country, "languages": d.spec.languages,
                 "states": d.spec.reading_order(), "start_roles": d.spec.start.roles}
                for d in app.registry.all()]

    @api.get("/api/definitions/{pathway}/fhir", tags=["definitions"])
    @hop()
    def plan(pathway: Annotated[str, Path(pattern=IDENT)], actor: Caller,
             version: Annotated[int | None, Query(ge=1, le=2147483647)] = None
             ) -> dict[str, Any]:
        """The definition as a FHIR R4 PlanDefinition (`export --definition`)."""
        actor_for(app, actor)
        from pathways.fhir import plan_definition

        return plan_definition(app.registry.get(pathway, version).spec)

    # ------------------------------------------------------------------ writes

    steps = APIRouter(route_class=LeanRoute)  # parsed without dependency solving (lean_route)

    @steps.post("/api/instances", status_code=201, tags=["instances"])
    @hop(201)
    def start(body: StartBody, actor: Caller,
              idempotency_key: IdempotencyKey = None) -> dict[str, str]:
        actor, live = step_actor(app, actor)
        app.actors.authorize(actor, body.role)
        area = app.actors.area_for_start(actor, body.area)
        app.check_area(area)
        instance_id = app.engine.start(
            body.pathway, subject_ref=body.subject, birth_date=body.birth_date, actor=actor,
            role=body.role, values=body.values, at=body.at, version=body.version, area=area,
            idempotency_key=idempotency_key, allow_duplicate=body.allow_duplicate, within=live)
        return {"id": instance_id}

    @steps.post("/api/instances/{instance}/events", tags=["instances"])
    @hop()
    def advance(instance: InstanceId, body: EventBody, actor: Caller,
                idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        actor, live = step_actor(app, actor)
        app.actors.authorize(actor, body.role)
        step = app.engine.advance(
            instance, body.event, actor=actor, role=body.role, values=body.values,
            note=body.note, at=body.at, expected_version=body.expected_revision,
            idempotency_key=idempotency_key, within=live,
            authorize=lambda row: app.actors.check_area(actor, row.area, row.id))
        return step.as_dict()

    api.include_router(steps)

    @api.post("/api/instances/{instance}/assign", tags=["instances"])
    @hop()
    def assign(instance: InstanceId, body: AssignBody, actor: Caller,
               idempotency_key: IdempotencyKey = None) -> dict[str, str]:
        actor = actor_for(app, actor)
        from pathways.assignments import assign_party

        assign_party(app, instance, body.role, body.party, actor, body.acting_role,
                     body.for_child, idempotency_key)
        return {"id": instance, "role": body.role, "party": body.party}

    @api.post("/api/instances/{instance}/consent", tags=["instances"])
    @hop()
    def consent(instance: InstanceId, body: ConsentBody, actor: Caller,
                idempotency_key: IdempotencyKey = None) -> dict[str, str]:
        actor = actor_for(app, actor)
        from pathways.assignments import record_consent

        record_consent(app, instance, body.sector, body.basis, body.reference, actor,
                       body.withdraw, body.role, idempotency_key)
        return {"id": instance, "sector": body.sector,
                "recorded": "withdrawn" if body.withdraw else body.basis}

    @api.post("/api/instances/{instance}/correct", tags=["instances"])
    @hop()
    def correct(instance: InstanceId, body: CorrectBody, actor: Caller,
                idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        from pathways.correcting import correct_instance

        return correct_instance(app, instance, body.values, reason=body.reason,
                                actor=actor_for(app, actor), role=body.role,
                                idempotency_key=idempotency_key)



def _reads(api: FastAPI, app: App, hop: Hop) -> None:
    # ------------------------------------------------------------------ reads

    @api.get("/api/instances/{instance}", tags=["instances"])
    @hop()
    def show(instance: InstanceId, actor: Caller, role: RoleQuery = None,
             lang: Annotated[str | None, Query(pattern="^(da|nb|sv|en)$")] = None
             ) -> dict[str, Any]:
        actor = actor_for(app, actor)
        from pathways_engine.reading.views import show as show_instance

        return show_instance(app, instance, language=lang, **reader_of(app, actor, role, instance))

    @api.get("/api/instances/{instance}/history", tags=["instances"])
    @hop()
    def history(instance: InstanceId, actor: Caller,
                role: RoleQuery = None) -> list[dict[str, Any]]:
        actor = actor_for(app, actor)
        from pathways_engine.reading.views import history as history_of

        return history_of(app, instance, **reader_of(app, actor, role, instance))

    @api.get("/api/instances/{instance}/fhir", tags=["instances"])
    @hop()
    def export(instance: InstanceId, actor: Caller) -> dict[str, Any]:
        actor = actor_for(app, actor)
        from pathways.fhir import instance_bundle

        return instance_bundle(app, instance, authorize=lambda area: app.actors.check_area(
            actor, area, instance))

    @api.get("/api/instances", tags=["instances"])
    @hop()
    def listed(actor: Caller,
               pathway: Annotated[str | None, Query(pattern=IDENT)] = None,
               state: Annotated[str | None, Query(pattern=IDENT)] = None,
               subject: Annotated[str | None, Query(max_length=64)] = None,
               limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict[str, Any]]:
        actor = actor_for(app, actor)
        from pathways_engine.reading.views import list_instances

        from pathways.cases import filters

        filters(app, pathway=pathway, state=state, prefix="")
        return list_instances(app, pathway=pathway, state=state, subject=subject,
                              areas=areas_of(app, actor), limit=limit)

    @api.get("/api/overdue", tags=["instances"])
    @hop()
    def overdue(actor: Caller,
                pathway: Annotated[str | None, Query(pattern=IDENT)] = None,
                role: Annotated[str | None, Query(pattern=IDENT)] = None,
                area: AreaQuery = None, party: PartyQuery = None
                ) -> list[dict[str, Any]]:
        actor = actor_for(app, actor)
        from pathways.cases import filters
        from pathways.cases import overdue_cases

        chosen = filters(app, pathway=pathway, role=role, area=area, party=party, prefix="")
        return overdue_cases(app, chosen, scope=areas_of(app, actor))

    @api.get("/api/subjects/{ref}", tags=["subjects"])
    @hop()
    def subject(ref: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:/#-]+$")],
                actor: Caller, role: RoleQuery = None) -> dict[str, Any]:
        actor = actor_for(app, actor)
        from pathways_engine.reading.subjects import subject as subject_view
        from pathways_engine.reading.views import Viewer

        viewer = None
        if role is not None:
            app.actors.authorize(actor, role)
            viewer = Viewer(actor, role)
        return subject_view(app, ref, viewer=viewer, areas=areas_of(app, actor))

    @api.get("/api/report", tags=["reports"])
    @hop()
    def report(actor: Caller,
               start: Annotated[dt.date | None, Query(alias="from")] = None,
               end: Annotated[dt.date | None, Query(alias="to")] = None,
               by: Annotated[str, Query(pattern="^(step|role|organisation|area)$")] = "step",
               pathway: Annotated[str | None, Query(pattern=IDENT)] = None,
               area: AreaQuery = None) -> list[dict[str, Any]]:
        actor = actor_for(app, actor)
        from pathways.readouts import report_rows

        return report_rows(app, start, end, pathway, by, area=area, reader=actor, prefix="")

    @api.get("/api/outbox", tags=["operations"])
    @hop()
    def outbox(actor: Caller,
               status: Annotated[str | None, Query(
                   pattern="^(pending|sent|failed|cancelled)$")] = None,
               limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict[str, Any]]:
        actor = actor_for(app, actor)
        from pathways.readouts import outbox_rows

        if app.actors.scope(actor) is not None:
            raise NotAuthorized(f"actor {actor!r} works for some areas only; the outbox holds "
                                "every area's messages")
        return outbox_rows(app, status, limit)



def _error(status: int, message: str, kind: str = "PathwaysError") -> JSONResponse:
    return JSONResponse({"error": message, "kind": kind, "status": status}, status_code=status)


def from_environment() -> FastAPI:
    """The app of one worker process of `pathways serve --workers N` (uvicorn's factory): the
    settings `serve` put in the environment."""
    import os

    from pathways.config import Settings

    threads = os.environ.get(THREADS_ENV, "")
    return create_app(App(Settings.resolve(None, ())),
                      int(threads) if threads.isdigit() else DEFAULT_THREADS)


__all__ = ["create_app", "from_environment"]
