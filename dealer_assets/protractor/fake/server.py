"""Serving an ASGI app in this process: the fake Protractor and our receiver on loopback, for tests, `make dev`
and the benchmark."""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from dealer_assets.protractor.fake.app import Account, Change, create_fake_app


class ServerThread:
    """uvicorn in a daemon thread; `port=0` takes a free port, read back from the bound socket."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, **config: object) -> None:
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", **config)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class FakeProtractor:
    """The fake served by uvicorn in a background thread on loopback."""

    def __init__(
        self, accounts: list[Account], receiver_url: str | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.accounts = {a.location_id: a for a in accounts}
        self.app, self.faults, self.stats = create_fake_app(accounts, receiver_url)
        self.server = ServerThread(self.app, host, port)

    @property
    def base_url(self) -> str:
        return self.server.url

    def notify(self, location_id: str, changes: list[Change]) -> None:
        """Send the callbacks for changes made directly on a shop (from the test's thread)."""
        coro = self.app.state.notify(self.accounts[location_id], changes)
        asyncio.run_coroutine_threadsafe(coro, self.app.state.loop).result(timeout=60)

    def __enter__(self) -> FakeProtractor:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
