"""The HTTP API against the library it wraps, in the same run, on the same SQLite settings.

- advance throughput: the same step (triage_to_ppr) through `POST /api/instances/{id}/events`
  on a real uvicorn server on 127.0.0.1, one request after another on one keep-alive
  connection (`_Client`, a few lines over a socket: the figure is the server's, not a
  client library's; each figure also says what the client's own CPU was), against
  `App.engine.advance` in this process (goal: at least 0.5x the library); once as served
  by default and once with `--pin-cpu` (the server's threads on one core, the client not).
  Measured in ROUNDS interleaved rounds (library, server, pinned server, hop, then again)
  and reported as medians: on a shared machine a single block of each moved the ratio by
  more than the change being measured;
- `show` latency under 20 concurrent clients: the 99th percentile of `GET /api/instances/{id}`,
  against the same read through the library, one at a time, in this process. Each server
  answers a round of reads first, not counted (`_warm`): a fresh server process compiles
  its statements on its first requests (and, until `serve` prepared its pathways before
  serving, reading/warm.py, the pathways too: 58-80 ms a request then, 18-40 now), and until
  2026-12-03 those first requests of `--workers 2`'s two new processes were its p99 (about
  500 ms, against 76-140 ms once warm);
- what leaving the event loop costs: the same library advance called from a uvloop event
  loop through the server's own `one_hop` (to a worker thread and back, the answer encoded),
  against the library called directly - the part of the gap that is neither HTTP nor the step.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .common import DEFINITIONS
from .common import ROOT
from .common import Figure
from .common import make_engine
from .common import sqlite_url
from .common import start_children

WARM = 20
ROUNDS = 5


def _serve(url: str, workers: int = 1, *extra: str) -> tuple[str, subprocess.Popen[bytes]]:
    """`pathways serve` in its own process, as a deployment runs it (the client here must not
    share the server's interpreter lock)."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PATHWAYS_ACTORS": str(DEFINITIONS / "actors.yaml")}
    process = subprocess.Popen([sys.executable, "-m", "pathways", "--db", url, "serve",
                                "--port", str(port), "--workers", str(workers), *extra],
                               env=env,
                               cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return base, process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("pathways serve did not start")


def run(scale: str) -> list[Figure]:
    from pathways_engine.reading.views import show
    from pathways_engine.store import tokens

    steps = 100 if scale == "quick" else 1000  # a block; ROUNDS blocks of each, interleaved
    reads = 400 if scale == "quick" else 4000
    with sqlite_url() as url:
        seeding = make_engine(url)
        ids = start_children(seeding, 4 * ROUNDS * steps + 4 * WARM)
        with seeding.db.writing() as connection:
            _, secret = tokens.create(connection, "ppr.anne", "bench", seeding.clock.now())
        seeding.db.dispose()
        # the baseline is the library exactly as the server holds it: App.engine, same files
        from pathways.app import App
        from pathways.config import Settings

        app = App(Settings.resolve(url, (DEFINITIONS,), DEFINITIONS / "parties.yaml",
                                   DEFINITIONS / "actors.yaml"))
        engine = app.engine
        warm, ids = ids[:4 * WARM], ids[4 * WARM:]
        for instance in warm[:WARM]:  # caches, compiled definitions, prepared statements
            engine.advance(instance, "triage_to_ppr", actor="ppr.anne", role="ppr")
        servers = {"default": _serve(url)}
        if hasattr(os, "sched_getaffinity"):  # Linux only
            servers["pinned"] = _serve(url, 1, "--pin-cpu", str(max(os.sched_getaffinity(0))))
        for k, (base, _) in enumerate(servers.values(), start=1):
            _advance_seconds(base, secret, warm[k * WARM:(k + 1) * WARM])
        blocks = iter(ids[k:k + steps] for k in range(0, len(ids), steps))
        rates: dict[str, list[float]] = {"library": [], "hop": [], **{n: [] for n in servers}}
        client_ms: dict[str, list[float]] = {n: [] for n in servers}  # the client's CPU a POST
        for _ in range(ROUNDS):  # round by round: a slow minute slows every kind alike
            rates["library"].append(steps / _library_seconds(engine, next(blocks)))
            for name, (base, _) in servers.items():
                seconds, cpu = _advance_seconds(base, secret, next(blocks))
                rates[name].append(steps / seconds)
                client_ms[name].append(cpu / steps * 1000)
            rates["hop"].append(steps / _through_a_thread(engine, next(blocks)))
        base, process = servers.pop("default")
        auth = {"Authorization": f"Bearer {secret}"}

        def timed_library(instance: str) -> float:
            began = time.perf_counter()
            show(engine, instance)
            return time.perf_counter() - began

        for i in range(WARM):  # the read's statements compiled, as the servers' are below
            show(engine, ids[i])
        alone = sorted(timed_library(ids[i % len(ids)]) for i in range(reads // 4))
        _warm(base, auth, ids, reads // 4)
        latencies = _show_latencies(base, auth, ids, reads)
        for _, running in [*servers.values(), (base, process)]:
            running.terminate()
            running.wait(timeout=60)
        base, process = _serve(url, workers=2)
        _warm(base, auth, ids, reads)  # both processes: 20 connections reach each
        two = _show_latencies(base, auth, ids, reads)
        process.terminate()
        process.wait(timeout=60)
        app.close()
    library_rate = statistics.median(rates["library"])
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000

    def against_library(name: str, label: str, goal: bool) -> Figure:
        rate = statistics.median(rates[name])
        ratios = sorted(r / b for r, b in zip(rates[name], rates["library"], strict=True))
        return Figure("http", label, rate, "steps/s", "App.engine.advance in process, same "
                      "database", library_rate, ">= 0.5 x baseline" if goal else "",
                      rate >= 0.5 * library_rate if goal else None,
                      f"medians of {ROUNDS} interleaved rounds; round by round "
                      f"{ratios[0]:.2f}-{ratios[-1]:.2f}x" + (
                          f"; the client's own CPU {statistics.median(client_ms[name]):.2f} ms "
                          "a request" if name in client_ms else ""))

    return [
        against_library("default", "API advance, one client (POST .../events)", True),
        Figure("http", "API show p99 under 20 concurrent clients", p99, "ms",
               "library show, one at a time (p99)", alone[int(len(alone) * 0.99) - 1] * 1000,
               "", None, f"median {statistics.median(latencies) * 1000:.1f} ms"),
        Figure("http", "API show p99 under 20 concurrent clients, --workers 2",
               two[int(len(two) * 0.99) - 1] * 1000, "ms", "library show, one at a time (p99)",
               alone[int(len(alone) * 0.99) - 1] * 1000, "", None,
               f"median {statistics.median(two) * 1000:.1f} ms"),
        *([against_library("pinned", "API advance, one client, serve --pin-cpu", True)]
          if "pinned" in rates else []),
        against_library("hop", "library advance through the server's hop (one_hop, uvloop)",
                        False),
    ]


def _library_seconds(engine: Any, ids: list[str]) -> float:
    began = time.perf_counter()
    for instance in ids:
        engine.advance(instance, "triage_to_ppr", actor="ppr.anne", role="ppr")
    return time.perf_counter() - began


def _through_a_thread(engine: Any, ids: list[str]) -> float:
    """Seconds for the library's advance of each of `ids`, each sent from a uvloop event loop
    to a worker thread and its answer encoded, by the server's own `one_hop`."""
    import uvloop

    from pathways.web.server import one_hop

    @one_hop()
    def one(instance: str) -> dict[str, Any]:
        return engine.advance(instance, "triage_to_ppr", actor="ppr.anne",  # type: ignore[no-any-return]
                              role="ppr").as_dict()

    async def all_of() -> float:
        began = time.perf_counter()
        for instance in ids:
            await one(instance)
        return time.perf_counter() - began

    return uvloop.run(all_of())


class _Client:
    """One keep-alive HTTP/1.1 connection that sends each request's bytes in one write and
    reads back the status line, the headers up to Content-Length and the body, no more.

    What a client spends on a request is time the server waits in a one-client run, so it
    would count against the server. httpx costs about 2 ms of CPU a request on this machine;
    the standard library's http.client, used until 2026-12-03, 0.56 ms, against 0.18 ms for
    this (the same one-client run, 100 requests a round, six rounds). The server and its
    answers are the same: uvicorn answers every request with a Content-Length."""

    def __init__(self, base: str) -> None:
        from urllib.parse import urlsplit

        where = urlsplit(base)
        self.host = f"{where.hostname}:{where.port}"
        self.socket = socket.create_connection((where.hostname or "127.0.0.1", where.port or 80),
                                               timeout=60)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.socket.makefile("rb")

    def request(self, method: str, path: str, headers: dict[str, str],
                body: bytes = b"") -> tuple[int, bytes]:
        """(status, body) of one request."""
        head = "".join([f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n",
                        *(f"{name}: {value}\r\n" for name, value in headers.items()),
                        f"Content-Length: {len(body)}\r\n" if body else "", "\r\n"])
        self.socket.sendall(head.encode("latin-1") + body)
        status = int(self.reader.readline().split(b" ", 2)[1])
        length = None
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{method} {path} answered {status} without a Content-Length")
        return status, self.reader.read(length)

    def close(self) -> None:
        self.reader.close()
        self.socket.close()


def _advance_seconds(base: str, secret: str, ids: list[str]) -> tuple[float, float]:
    """(seconds, the client's own CPU seconds) for one client (`_Client`), one POST after
    another."""
    import json

    client = _Client(base)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    body = json.dumps({"event": "triage_to_ppr", "role": "ppr"}).encode()
    began, cpu = time.perf_counter(), time.process_time()
    for instance in ids:
        status, _ = client.request("POST", f"/api/instances/{instance}/events", headers, body)
        if status != 200:
            raise RuntimeError(f"POST answered {status}")
    took = time.perf_counter() - began, time.process_time() - cpu
    client.close()
    return took


def _warm(base: str, auth: dict[str, str], ids: list[str], reads: int) -> None:
    """A round of `_show_latencies`, not counted: a server process's first requests compile
    the statements they run, which a server that has run for a minute has long done."""
    _show_latencies(base, auth, ids, reads)


def _show_latencies(base: str, auth: dict[str, str], ids: list[str], reads: int) -> list[float]:
    """`GET /api/instances/{id}` from 20 clients at once, each request's latency, sorted.
    Each client thread has its own connection (`_Client`): httpx clients, 20 at once, took
    the cores from the server they measured."""
    import threading

    local = threading.local()
    opened: list[_Client] = []

    def timed(i: int) -> float:
        if not hasattr(local, "client"):
            local.client = _Client(base)
            opened.append(local.client)
        began = time.perf_counter()
        status, _ = local.client.request("GET", f"/api/instances/{ids[i % len(ids)]}", auth)
        if status != 200:
            raise RuntimeError(f"GET answered {status}")
        return time.perf_counter() - began

    with ThreadPoolExecutor(20) as pool:
        found = sorted(pool.map(timed, range(reads)))
    for client in opened:
        client.close()
    return found
