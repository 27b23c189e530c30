"""The fake Protractor's HTTP side: REST endpoints checking the three headers, callbacks to the receiver,
faults on demand (`POST /_control/faults`), and a request log (`GET /_control/stats`) from which tests read
the largest number of requests seen in any 1 s and 60 s window (and any `?window=` seconds) and at once."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dealer_assets.protractor.client import authentication
from dealer_assets.protractor.fake.shop import STAGES, Change, Shop

Handler = Callable[[Request, "Account"], Awaitable[Response]]


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
    """Pending failures, consumed one request (or callback) at a time; `queue` items are `("429", retry_after)`,
    `("500",)` or `("500", retry_after)`, `("timeout", seconds)` or `("slow", seconds)`."""

    queue: deque = field(default_factory=deque)
    drop_callbacks: int = 0
    duplicate_callbacks: int = 0


def _busiest_window(times: list[float], seconds: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - seconds:
            j += 1
        best = max(best, i - j + 1)
    return best


def _seconds(value: str | None) -> float | None:
    """A `?window=` value: None when absent, 0.0 when it is not a positive number."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    return seconds if seconds > 0 else 0.0


@dataclass
class Stats:
    starts: dict[str, list[float]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    unauthorized: int = 0
    callbacks_sent: int = 0

    def summary(self, window: float | None = None) -> dict:
        per_location = {
            loc: {
                "requests": len(t),
                "max_per_second": _busiest_window(sorted(t), 1.0),
                "max_per_minute": _busiest_window(sorted(t), 60.0),
                "max_in_flight": self.max_in_flight.get(loc, 0),
            }
            | ({"max_per_window": _busiest_window(sorted(t), window)} if window else {})
            for loc, t in self.starts.items()
        }
        return per_location | {
            "_statuses": dict(self.statuses),
            "_unauthorized": self.unauthorized,
            "_callbacks_sent": self.callbacks_sent,
        }


class _FakeApi:
    """The endpoints over the accounts' shops, and the callbacks their changes send to `receiver_url`."""

    def __init__(self, accounts: list[Account], receiver_url: str | None, churn_seconds: float) -> None:
        self.accounts = accounts
        self.by_conn = {a.connection_id.lower(): a for a in accounts}
        self.receiver_url = receiver_url
        self.churn_seconds = churn_seconds
        self.faults, self.stats = Faults(), Stats()
        self.http: httpx.AsyncClient | None = None
        self.tasks: set[asyncio.Task] = set()

    def account_of(self, request: Request) -> Account | None:
        conn = request.headers.get("connectionId", "")
        account = self.by_conn.get(conn.lower())
        if account is None:
            return None
        key_ok = hmac.compare_digest(request.headers.get("apiKey", ""), account.api_key)
        signature = authentication(conn, account.api_key)
        sig_ok = hmac.compare_digest(request.headers.get("authentication", ""), signature)
        return account if key_ok and sig_ok else None

    async def notify(self, account: Account, changes: list[Change]) -> None:
        """The callbacks Protractor sends for these changes, less those dropped, plus those duplicated."""
        if not self.receiver_url:
            return
        for operation, object_id, *kind in changes:
            params = {
                "connectionId": account.connection_id,
                "apiKey": account.api_key,
                "type": kind[0] if kind else "WorkOrder",
                "id": object_id,
                "operation": operation,
            }
            for _ in range(self._copies()):
                try:
                    await self.http.get(self.receiver_url, params=params)
                    self.stats.callbacks_sent += 1
                except httpx.HTTPError:
                    pass

    def _copies(self) -> int:
        if self.faults.drop_callbacks:
            self.faults.drop_callbacks -= 1
            return 0
        if self.faults.duplicate_callbacks:
            self.faults.duplicate_callbacks -= 1
            return 2
        return 1

    def changed(self, account: Account, changes: list[Change]) -> None:
        task = asyncio.get_running_loop().create_task(self.notify(account, changes))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def guarded(self, request: Request, handler: Handler) -> Response:
        """Headers checked, the request counted, and the next queued fault served instead of (or before) it."""
        account = self.account_of(request)
        if account is None:
            self.stats.unauthorized += 1
            message = {"Message": "Authorization has been denied for this request."}
            return JSONResponse(message, status_code=401)
        loc, stats = account.location_id, self.stats
        stats.starts.setdefault(loc, []).append(time.monotonic())
        stats.in_flight[loc] = stats.in_flight.get(loc, 0) + 1
        stats.max_in_flight[loc] = max(stats.max_in_flight.get(loc, 0), stats.in_flight[loc])
        try:
            response = await self._answer(request, account, handler)
        finally:
            stats.in_flight[loc] -= 1
        stats.statuses[str(response.status_code)] = stats.statuses.get(str(response.status_code), 0) + 1
        return response

    async def _answer(self, request: Request, account: Account, handler: Handler) -> Response:
        fault = self.faults.queue.popleft() if self.faults.queue else None
        if fault and fault[0] == "429":
            headers = {"Retry-After": str(fault[1])}
            return JSONResponse({"Message": "Too many requests"}, status_code=429, headers=headers)
        if fault and fault[0] == "500":
            headers = {"Retry-After": str(fault[1])} if len(fault) > 1 else None
            return JSONResponse({"Message": "An error has occurred."}, status_code=500, headers=headers)
        if fault and fault[0] in ("timeout", "slow"):
            await asyncio.sleep(fault[1])
        return await handler(request, account)

    async def get_one(self, request: Request) -> Response:
        return await self.guarded(request, self._get_one)

    async def _get_one(self, request: Request, account: Account) -> Response:
        order = account.shop.get(request.path_params["wo_id"])
        if order is None:
            return JSONResponse({"Message": "No work order found."}, status_code=404)
        return JSONResponse(order)

    async def post_one(self, request: Request) -> Response:
        return await self.guarded(request, self._post_one)

    async def _post_one(self, request: Request, account: Account) -> Response:
        try:
            body = await request.json()
            change = account.shop.upsert(request.path_params["wo_id"], body, account.now_local())
        except ValueError as exc:
            return JSONResponse({"Message": str(exc)}, status_code=400)
        self.changed(account, [change])
        return JSONResponse(account.shop.get(change[1]))

    async def list_changed(self, request: Request) -> Response:
        return await self.guarded(request, self._list_changed)

    async def _list_changed(self, request: Request, account: Account) -> Response:
        q = request.query_params
        try:
            start, end = q["startDate"], q["endDate"]
            take, skip = int(q.get("take", 100)), int(q.get("skip", 0))
        except (KeyError, ValueError):
            return JSONResponse({"Message": "startDate and endDate are required"}, status_code=400)
        rows = account.shop.changed_between(start[:10], end[:10])
        return JSONResponse({"ItemCollection": rows[skip : skip + take]})

    async def control_faults(self, request: Request) -> Response:
        body = await request.json()
        for item in body.get("faults", []):
            self.faults.queue.append(tuple(item))
        self.faults.drop_callbacks += int(body.get("drop_callbacks", 0))
        self.faults.duplicate_callbacks += int(body.get("duplicate_callbacks", 0))
        return JSONResponse({"queued": len(self.faults.queue)})

    async def control_stats(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.stats.__init__()
            return JSONResponse({})
        window = _seconds(request.query_params.get("window"))
        if window == 0.0:
            return JSONResponse({"Message": "window: a positive number of seconds"}, status_code=400)
        return JSONResponse(self.stats.summary(window))

    async def control_change(self, request: Request) -> Response:
        """Change a work order as a user of the shop would: `{"location": L, "action": "stage", "id": ..,
        "stage": ..}`, `"action": "line"` with `"fields"`, or `"action": "delete"`."""
        body = await request.json()
        account = next(a for a in self.accounts if a.location_id == body["location"])
        shop, now, action = account.shop, account.now_local(), body["action"]
        if action == "stage":
            change = shop.set_stage(body["id"], body["stage"], now)
        elif action == "line":
            change = shop.update_line(body["id"], now, **body.get("fields", {}))
        elif action == "delete":
            change = shop.delete(body["id"])
        else:
            return JSONResponse({"Message": f"unknown action {action}"}, status_code=400)
        self.changed(account, [change])
        return JSONResponse({"operation": change[0], "id": change[1]})

    async def churn(self) -> None:
        """A shop user moving a random work order to another stage every `churn_seconds`."""
        rng = random.Random(7)
        while True:
            await asyncio.sleep(self.churn_seconds)
            account = rng.choice(self.accounts)
            if account.shop.orders:
                wo_id = rng.choice(sorted(account.shop.orders))
                self.changed(
                    account, [account.shop.set_stage(wo_id, rng.choice(STAGES), account.now_local())]
                )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.http = httpx.AsyncClient(timeout=10.0)
        app.state.loop = asyncio.get_running_loop()
        churner = asyncio.create_task(self.churn()) if self.churn_seconds > 0 else None
        try:
            yield
        finally:
            if churner:
                churner.cancel()
            await self.http.aclose()


def create_fake_app(
    accounts: list[Account], receiver_url: str | None, churn_seconds: float = 0.0
) -> tuple[Starlette, Faults, Stats]:
    """`churn_seconds` > 0: a shop user moves a work order to another stage that often (for `make dev`)."""
    api = _FakeApi(accounts, receiver_url, churn_seconds)
    app = Starlette(
        routes=[
            Route("/WorkOrder/", api.list_changed, methods=["GET"]),
            Route("/WorkOrder/{wo_id}", api.get_one, methods=["GET"]),
            Route("/WorkOrder/{wo_id}", api.post_one, methods=["POST"]),
            Route("/_control/faults", api.control_faults, methods=["POST"]),
            Route("/_control/stats", api.control_stats, methods=["GET", "DELETE"]),
            Route("/_control/change", api.control_change, methods=["POST"]),
        ],
        lifespan=api.lifespan,
    )
    app.state.notify = api.notify
    return app, api.faults, api.stats
