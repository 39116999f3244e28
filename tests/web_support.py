"""A real `pathways serve` app on uvicorn, on 127.0.0.1, for the HTTP and browser tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from pathways_engine.store import tokens
from support import ACTORS
from support import DEFINITIONS

from pathways.app import App
from pathways.config import Settings
from pathways.web.server import create_app


@dataclass
class Server:
    url: str
    app: App

    def token(self, actor: str) -> dict[str, str]:
        with self.app.db.writing() as connection:
            _, secret = tokens.create(connection, actor, "test", self.app.clock.now())
        return {"Authorization": f"Bearer {secret}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture
def server(db_url: str) -> Iterator[Server]:
    from pathways_engine import Database

    Database(db_url).dispose()  # the schema, as `pathways db upgrade` leaves it
    app = App(Settings.resolve(db_url, (DEFINITIONS,), DEFINITIONS / "parties.yaml", ACTORS))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "uvicorn did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}", app)
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        app.close()
