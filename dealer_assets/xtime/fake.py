"""A fake Xtime over real HTTP (Starlette + uvicorn) for development, tests and the benchmark.

It serves the token endpoint and the four scheduling calls over in-memory dealerships, enforces its own rate
limit (429 with Retry-After), counts every call, and injects failures on demand through `/_control/failures`:
`429`, `500`, `success_false` (HTTP 200), `timeout` (answers after `delay` seconds, doing nothing), `lost` (books,
then answers only after `delay` seconds, so the client never sees it), `lost_error` (books, then answers 502), `garbled` (books, then answers 200 with a body that is not JSON),
`expire_tokens` (revokes every token,
so the call gets a 401).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from dealer_assets.core.errors import ConfigError
from dealer_assets.xtime.fake_state import (
    API_PATHS,
    Failure,
    FakeDealership,
    FakeState,
    local_text,
    parse_local,
    seeded_dealerships,
)
from dealer_assets.xtime.settings import SCOPE

__all__ = ["FakeDealership", "FakeState", "FakeXtimeServer", "build_app"]


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "code": code, "message": message}, status_code=status, headers=headers
    )


def build_app(state: FakeState) -> Starlette:
    async def token(request: Request) -> JSONResponse:
        state.calls["/token"] += 1
        failure = state.take_failure("/token")
        if failure is not None and failure.kind in ("429", "500"):
            return _error(int(failure.kind), "INJECTED", failure.message)
        expected = "Basic " + base64.b64encode(f"{state.client_id}:{state.client_secret}".encode()).decode()
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials" or set(SCOPE.split()) - set(
            str(form.get("scope")).split()
        ):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        value = secrets.token_urlsafe(24)
        state.tokens[value] = time.monotonic() + state.token_ttl
        return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": state.token_ttl})

    async def api(request: Request) -> JSONResponse:
        path = request.url.path
        now = time.monotonic()
        with state.lock:
            state.calls[path] += 1
            state.call_times.append(now)
            while state.recent and state.recent[0] <= now - 1.0:
                state.recent.popleft()
            limited = state.rate_limit is not None and len(state.recent) >= state.rate_limit
            if not limited:
                state.recent.append(now)
        if limited:
            state.calls["rate_limited"] += 1
            return _error(429, "RATE_LIMITED", "too many requests", {"Retry-After": "1"})
        if request.headers.get("x-api-key") != state.api_key:
            return _error(403, "FORBIDDEN", "unknown api key")
        failure = state.take_failure(path)
        if failure is not None and failure.kind == "expire_tokens":
            state.tokens.clear()
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if state.tokens.get(bearer, 0.0) <= time.monotonic():
            state.calls["unauthorized"] += 1
            return _error(401, "UNAUTHORIZED", "token missing or expired")
        if failure is not None and failure.kind in ("429", "500"):
            headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else None
            return _error(int(failure.kind), "INJECTED", failure.message, headers)
        if failure is not None and failure.kind == "success_false":
            return _error(200, failure.code, failure.message)
        if failure is not None and failure.kind == "timeout":
            await _pause(state, failure.delay)
            return _error(504, "TIMEOUT", "gateway timeout")
        dealer = state.dealerships.get(request.query_params.get("dealerCode", ""))
        if dealer is None:
            return _error(200, "DEALER_NOT_FOUND", "unknown dealerCode")
        handler = {
            "/service/services": _services,
            "/service/appointments-availabilities": _availabilities,
            "/service/appointments-bookings": _book,
            "/service/appointments": _lookup,
        }[path]
        answer = await handler(state, dealer, request)
        if failure is not None and failure.kind == "lost":
            await _pause(state, failure.delay)
        if failure is not None and failure.kind == "lost_error":
            return _error(502, "BAD_GATEWAY", "upstream answer lost")
        if failure is not None and failure.kind == "garbled":
            return PlainTextResponse("<html>proxy error</html>", status_code=200)
        return answer

    async def control_failures(request: Request) -> JSONResponse:
        body = await request.json()
        with state.lock:
            state.failures.append(Failure(**body))
        return JSONResponse({"ok": True})

    async def control_expire(request: Request) -> JSONResponse:
        state.tokens.clear()
        return JSONResponse({"ok": True})

    async def control_stats(request: Request) -> JSONResponse:
        with state.lock:
            times = list(state.call_times)
        window = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
        return JSONResponse(
            {
                "calls": dict(state.calls),
                "max_calls_in_any_second": window,
                "api_calls": len(times),
                "appointments": len(state.appointments),
            }
        )

    async def control_reset(request: Request) -> JSONResponse:
        with state.lock:
            state.calls.clear()
            state.call_times.clear()
            state.failures.clear()
        return JSONResponse({"ok": True})

    async def control_appointments(request: Request) -> JSONResponse:
        return JSONResponse({"appointments": state.appointments})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route("/token", token, methods=["POST"]),
        Route("/service/appointments-bookings", api, methods=["POST"]),
        *[Route(p, api, methods=["GET"]) for p in API_PATHS if p != "/service/appointments-bookings"],
        Route("/_control/failures", control_failures, methods=["POST"]),
        Route("/_control/expire-tokens", control_expire, methods=["POST"]),
        Route("/_control/stats", control_stats, methods=["GET"]),
        Route("/_control/reset", control_reset, methods=["POST"]),
        Route("/_control/appointments", control_appointments, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def _pause(state: FakeState, seconds: float) -> None:
    """A delay that ends early when the server stops, so shutdown does not wait on injected timeouts."""
    deadline = time.monotonic() + seconds
    while not state.closing and time.monotonic() < deadline:
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


async def _services(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    return JSONResponse({"success": True, "services": dealer.catalog})


def _open_slots(state: FakeState, dealer: FakeDealership, first: date, last: date) -> list[datetime]:
    # Compared in UTC: an ambiguous local time never equals a time of another zone (PEP 495).
    taken = {
        parse_local(a["appointmentDateTimeLocal"]).astimezone(UTC)
        for a in state.appointments
        if a["dealerCode"] == dealer.dealer_code
    }
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [s for d in days for s in dealer.slots(d) if s.astimezone(UTC) not in taken]


async def _availabilities(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    q = request.query_params
    if q.get("opcode") not in {s["opcode"] for s in dealer.catalog}:
        return _error(200, "INVALID_OPCODE", "opcode is not in the dealer's catalog")
    try:
        first, last = date.fromisoformat(q["start"]), date.fromisoformat(q["end"])
    except (KeyError, ValueError):
        return _error(400, "INVALID_DATE", "start and end must be YYYY-MM-DD")
    if not 0 <= (last - first).days <= 31:
        return _error(200, "INVALID_DATE_RANGE", "end must be within 31 days after start")
    slots = _open_slots(state, dealer, first, last)
    return JSONResponse(
        {
            "success": True,
            "availableAppointments": [
                {"appointmentDateTimeLocal": local_text(s), "durationMinutes": dealer.slot_minutes}
                for s in slots
            ],
        }
    )


async def _book(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    body = await request.json()
    missing = [
        k
        for k in ("appointmentDateTimeLocal", "firstName", "lastName", "services", "label")
        if not body.get(k)
    ]
    if missing:
        return _error(400, "MISSING_FIELD", f"missing {', '.join(missing)}")
    catalog = {s["opcode"] for s in dealer.catalog}
    if any(s.get("opcode") not in catalog for s in body["services"]):
        return _error(200, "INVALID_OPCODE", "opcode is not in the dealer's catalog")
    slot = parse_local(body["appointmentDateTimeLocal"])
    if slot is None:
        return _error(400, "INVALID_DATE", "appointmentDateTimeLocal must be local time with offset")
    with state.lock:
        local_day = slot.astimezone(ZoneInfo(dealer.time_zone)).date()
        if slot.astimezone(UTC) not in {
            s.astimezone(UTC) for s in _open_slots(state, dealer, local_day, local_day)
        }:
            return _error(200, "SLOT_UNAVAILABLE", "that time is not available")
        appointment_id = f"XT{next(state.ids):07d}"
        state.appointments.append(
            {
                "appointmentId": appointment_id,
                "dealerCode": dealer.dealer_code,
                "vin": body.get("vin"),
                "appointmentDateTimeLocal": body["appointmentDateTimeLocal"],
                "services": body["services"],
                "label": body["label"],
                "reportingLabel": body.get("reportingLabel"),
                "firstName": body["firstName"],
                "lastName": body["lastName"],
            }
        )
    return JSONResponse({"success": True, "appointmentId": appointment_id})


async def _lookup(state: FakeState, dealer: FakeDealership, request: Request) -> JSONResponse:
    vin = request.query_params.get("vin")
    if not vin:
        return _error(400, "MISSING_FIELD", "vin is required")
    found = [
        {k: a[k] for k in ("appointmentId", "vin", "appointmentDateTimeLocal", "services", "label")}
        for a in state.appointments
        if a["dealerCode"] == dealer.dealer_code and a["vin"] == vin
    ]
    return JSONResponse({"success": True, "appointments": found})


class FakeXtimeServer:
    """The fake on a loopback port in a background thread (port 0: any free port)."""

    def __init__(self, state: FakeState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.server = uvicorn.Server(
            uvicorn.Config(
                build_app(state),
                host=host,
                port=port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeXtimeServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fake Xtime did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.closing = True
        self.server.should_exit = True
        self.thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"


def serve(port: int, settings, environ: dict[str, str], host: str = "127.0.0.1") -> None:
    """Runs the fake in the foreground with the credentials the settings' environment variables hold."""
    names = (settings.client_id_env, settings.client_secret_env, settings.api_key_env)
    missing = [n for n in names if not environ.get(n)]
    if missing:
        raise ConfigError(
            f"environment: {', '.join(missing)}: not set (the fake accepts exactly these credentials)"
        )
    zones = {d.dealer_code: d.time_zone for d in settings.dealerships.values()}
    state = FakeState(
        seeded_dealerships(zones), *(environ[n] for n in names), rate_limit=settings.requests_per_second
    )
    uvicorn.run(build_app(state), host=host, port=port, log_level="info")
