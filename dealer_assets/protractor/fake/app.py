"""The fake Protractor's HTTP side: REST endpoints checking the three headers, callbacks to the receiver,
faults on demand (`POST /_control/faults`), and a request log (`GET /_control/stats`) from which tests read
the largest number of requests seen in any 1 s and 60 s window and at once."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dealer_assets.protractor.client import authentication
from dealer_assets.protractor.fake.shop import STAGES, Shop


@dataclass
class Account:
    location_id: str
    connection_id: str
    api_key: str
    time_zone: str
    shop: Shop = field(default_factory=Shop)

    def now_local(self) -> datetime:
        return datetime.now(UTC).astimezone(ZoneInfo(self.time_zone)).replace(tzinfo=None)


@dataclass
class Faults:
    """Pending failures, consumed one request (or callback) at a time."""

    queue: deque = field(
        default_factory=deque
    )  # items: ("429", retry_after) | ("500",) | ("timeout", s) | ("slow", s)
    drop_callbacks: int = 0
    duplicate_callbacks: int = 0


@dataclass
class Stats:
    starts: dict[str, list[float]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    unauthorized: int = 0
    callbacks_sent: int = 0

    def summary(self) -> dict:
        def window(times: list[float], seconds: float) -> int:
            best, j = 0, 0
            for i, t in enumerate(times):
                while times[j] <= t - seconds:
                    j += 1
                best = max(best, i - j + 1)
            return best

        return {
            loc: {
                "requests": len(t),
                "max_per_second": window(sorted(t), 1.0),
                "max_per_minute": window(sorted(t), 60.0),
                "max_in_flight": self.max_in_flight.get(loc, 0),
            }  # fmt: skip
            for loc, t in self.starts.items()
        } | {
            "_statuses": dict(self.statuses),
            "_unauthorized": self.unauthorized,
            "_callbacks_sent": self.callbacks_sent,
        }


def create_fake_app(
    accounts: list[Account], receiver_url: str | None, churn_seconds: float = 0.0
) -> tuple[Starlette, Faults, Stats]:
    """`churn_seconds` > 0: a shop user moves a work order to another stage that often (for `make dev`)."""
    by_conn = {a.connection_id.lower(): a for a in accounts}
    faults, stats = Faults(), Stats()
    state: dict = {"http": None, "tasks": set()}

    def account_of(request: Request) -> Account | None:
        conn = request.headers.get("connectionId", "")
        account = by_conn.get(conn.lower())
        if account is None:
            return None
        key_ok = hmac.compare_digest(request.headers.get("apiKey", ""), account.api_key)
        sig_ok = hmac.compare_digest(
            request.headers.get("authentication", ""), authentication(conn, account.api_key)
        )
        return account if key_ok and sig_ok else None

    async def notify(account: Account, changes: list[tuple[str, str]]) -> None:
        if not receiver_url:
            return
        for operation, wo_id in changes:
            if faults.drop_callbacks:
                faults.drop_callbacks -= 1
                continue
            copies = 1
            if faults.duplicate_callbacks:
                faults.duplicate_callbacks -= 1
                copies = 2
            params = {"connectionId": account.connection_id, "apiKey": account.api_key, "type": "WorkOrder",
                      "id": wo_id, "operation": operation}  # fmt: skip
            for _ in range(copies):
                try:
                    await state["http"].get(receiver_url, params=params)
                    stats.callbacks_sent += 1
                except httpx.HTTPError:
                    pass

    def changed(account: Account, changes: list[tuple[str, str]]) -> None:
        task = asyncio.get_running_loop().create_task(notify(account, changes))
        state["tasks"].add(task)
        task.add_done_callback(state["tasks"].discard)

    async def guarded(request: Request, handler) -> Response:
        account = account_of(request)
        if account is None:
            stats.unauthorized += 1
            return JSONResponse(
                {"Message": "Authorization has been denied for this request."}, status_code=401
            )
        loc = account.location_id
        stats.starts.setdefault(loc, []).append(time.monotonic())
        stats.in_flight[loc] = stats.in_flight.get(loc, 0) + 1
        stats.max_in_flight[loc] = max(stats.max_in_flight.get(loc, 0), stats.in_flight[loc])
        try:
            fault = faults.queue.popleft() if faults.queue else None
            if fault and fault[0] == "429":
                response: Response = JSONResponse({"Message": "Too many requests"}, status_code=429,
                                                  headers={"Retry-After": str(fault[1])})  # fmt: skip
            elif fault and fault[0] == "500":
                response = JSONResponse({"Message": "An error has occurred."}, status_code=500)
            else:
                if fault and fault[0] in ("timeout", "slow"):
                    await asyncio.sleep(fault[1])
                response = await handler(request, account)
        finally:
            stats.in_flight[loc] -= 1
        stats.statuses[str(response.status_code)] = stats.statuses.get(str(response.status_code), 0) + 1
        return response

    async def get_one(request: Request) -> Response:
        async def handle(req: Request, account: Account) -> Response:
            order = account.shop.get(req.path_params["wo_id"])
            if order is None:
                return JSONResponse({"Message": "No work order found."}, status_code=404)
            return JSONResponse(order)

        return await guarded(request, handle)

    async def post_one(request: Request) -> Response:
        async def handle(req: Request, account: Account) -> Response:
            try:
                body = await req.json()
                change = account.shop.upsert(req.path_params["wo_id"], body, account.now_local())
            except ValueError as exc:
                return JSONResponse({"Message": str(exc)}, status_code=400)
            changed(account, [change])
            return JSONResponse(account.shop.get(change[1]))

        return await guarded(request, handle)

    async def list_changed(request: Request) -> Response:
        async def handle(req: Request, account: Account) -> Response:
            q = req.query_params
            try:
                start, end = q["startDate"], q["endDate"]
                take, skip = int(q.get("take", 100)), int(q.get("skip", 0))
            except (KeyError, ValueError):
                return JSONResponse({"Message": "startDate and endDate are required"}, status_code=400)
            rows = account.shop.changed_between(start[:10], end[:10])
            return JSONResponse({"ItemCollection": rows[skip : skip + take]})

        return await guarded(request, handle)

    async def control_faults(request: Request) -> Response:
        body = await request.json()
        for item in body.get("faults", []):
            faults.queue.append(tuple(item))
        faults.drop_callbacks += int(body.get("drop_callbacks", 0))
        faults.duplicate_callbacks += int(body.get("duplicate_callbacks", 0))
        return JSONResponse({"queued": len(faults.queue)})

    async def control_stats(request: Request) -> Response:
        if request.method == "DELETE":
            stats.__init__()
            return JSONResponse({})
        return JSONResponse(stats.summary())

    async def control_change(request: Request) -> Response:
        """Change a work order as a user of the shop would: `{"location": L, "action": "stage", "id": .., "stage": ..}`."""
        body = await request.json()
        account = next(a for a in accounts if a.location_id == body["location"])
        shop, now = account.shop, account.now_local()
        action = body["action"]
        if action == "stage":
            change = shop.set_stage(body["id"], body["stage"], now)
        elif action == "line":
            change = shop.update_line(body["id"], now, **body.get("fields", {}))
        elif action == "delete":
            change = shop.delete(body["id"])
        else:
            return JSONResponse({"Message": f"unknown action {action}"}, status_code=400)
        changed(account, [change])
        return JSONResponse({"operation": change[0], "id": change[1]})

    async def churn() -> None:
        rng = random.Random(7)
        while True:
            await asyncio.sleep(churn_seconds)
            account = rng.choice(accounts)
            if account.shop.orders:
                wo_id = rng.choice(sorted(account.shop.orders))
                changed(account, [account.shop.set_stage(wo_id, rng.choice(STAGES), account.now_local())])

    async def lifespan(_: Starlette):
        state["http"] = httpx.AsyncClient(timeout=10.0)
        app.state.loop = asyncio.get_running_loop()
        churner = asyncio.create_task(churn()) if churn_seconds > 0 else None
        try:
            yield
        finally:
            if churner:
                churner.cancel()
            await state["http"].aclose()

    app = Starlette(
        routes=[
            Route("/WorkOrder/", list_changed, methods=["GET"]),
            Route("/WorkOrder/{wo_id}", get_one, methods=["GET"]),
            Route("/WorkOrder/{wo_id}", post_one, methods=["POST"]),
            Route("/_control/faults", control_faults, methods=["POST"]),
            Route("/_control/stats", control_stats, methods=["GET", "DELETE"]),
            Route("/_control/change", control_change, methods=["POST"]),
        ],
        lifespan=contextlib.asynccontextmanager(lifespan),
    )
    app.state.notify = notify
    return app, faults, stats


class FakeProtractor:
    """The fake served by uvicorn in a background thread on loopback (tests, `make dev`, the benchmark)."""

    def __init__(
        self, accounts: list[Account], receiver_url: str | None = None, host: str = "127.0.0.1", port: int = 0
    ):
        self.accounts = {a.location_id: a for a in accounts}
        self.app, self.faults, self.stats = create_fake_app(accounts, receiver_url)
        self.server = ServerThread(self.app, host, port)

    @property
    def base_url(self) -> str:
        return self.server.url

    def notify(self, location_id: str, changes: list[tuple[str, str]]) -> None:
        """Send the callbacks for changes made directly on a shop (from the test's thread)."""
        coro = self.app.state.notify(self.accounts[location_id], changes)
        asyncio.run_coroutine_threadsafe(coro, self.app.state.loop).result(timeout=60)

    def __enter__(self) -> FakeProtractor:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


class ServerThread:
    """uvicorn in a daemon thread; `port=0` takes a free port, read back from the bound socket."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, **config: object) -> None:
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
