"""The fake Xtime's HTTP app (Starlette + uvicorn): the token endpoint, the scheduling calls behind its own
rate limit (429 with Retry-After), call counters, and failures injected through `/_control/failures`: `429`,
`500`, `success_false` (HTTP 200), `timeout` (answers after `delay` seconds, doing nothing), `lost` (books,
then answers only after `delay` seconds, so the client never sees it), `lost_error` (books, then answers 502),
`garbled` (books, then answers 200 with a body that is not JSON), `expire_tokens` (revokes every token, so
the call gets a 401).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from dealer_assets.core.errors import ConfigError
from dealer_assets.xtime.fake.scheduling import SCHEDULING_CALLS, error
from dealer_assets.xtime.fake.state import API_PATHS, BOOKING_PATH, Failure, FakeState, seeded_dealerships
from dealer_assets.xtime.settings import SCOPE


def create_fake_app(state: FakeState) -> Starlette:
    """The fake's HTTP app over `state`: token, scheduling calls, and the `/_control/...` endpoints."""
    api = _api_endpoint(state)
    routes = [
        Route("/token", _token_endpoint(state), methods=["POST"]),
        *[Route(p, api, methods=["POST" if p == BOOKING_PATH else "GET"]) for p in API_PATHS],
        *_control_routes(state),
    ]
    return Starlette(routes=routes)


def _token_endpoint(state: FakeState):
    async def token(request: Request) -> JSONResponse:
        state.calls["/token"] += 1
        failure = state.take_failure("/token")
        if failure is not None and failure.kind in ("429", "500"):
            return error(int(failure.kind), "INJECTED", failure.message)
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

    return token


def _rate_limited(state: FakeState, path: str) -> bool:
    """Counts the call, and whether it is one too many in the last second."""
    now = time.monotonic()
    with state.lock:
        state.calls[path] += 1
        state.call_times.append(now)
        while state.recent and state.recent[0] <= now - 1.0:
            state.recent.popleft()
        limited = state.rate_limit is not None and len(state.recent) >= state.rate_limit
        if not limited:
            state.recent.append(now)
    return limited


def _refused(state: FakeState, request: Request, failure: Failure | None) -> JSONResponse | None:
    """The answer to a call without a valid token, or made to fail before it does anything."""
    if failure is not None and failure.kind == "expire_tokens":
        state.tokens.clear()
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    if state.tokens.get(bearer, 0.0) <= time.monotonic():
        state.calls["unauthorized"] += 1
        return error(401, "UNAUTHORIZED", "token missing or expired")
    if failure is not None and failure.kind in ("429", "500"):
        headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else None
        return error(int(failure.kind), "INJECTED", failure.message, headers)
    if failure is not None and failure.kind == "success_false":
        return error(200, failure.code, failure.message)
    return None


def _api_endpoint(state: FakeState):
    async def api(request: Request) -> Response:
        path = request.url.path
        if _rate_limited(state, path):
            state.calls["rate_limited"] += 1
            return error(429, "RATE_LIMITED", "too many requests", {"Retry-After": "1"})
        if request.headers.get("x-api-key") != state.api_key:
            return error(403, "FORBIDDEN", "unknown api key")
        failure = state.take_failure(path)
        refused = _refused(state, request, failure)
        if refused is not None:
            return refused
        if failure is not None and failure.kind == "timeout":
            await _pause(state, failure.delay)
            return error(504, "TIMEOUT", "gateway timeout")
        dealer = state.dealerships.get(request.query_params.get("dealerCode", ""))
        if dealer is None:
            return error(200, "DEALER_NOT_FOUND", "unknown dealerCode")
        answer = await SCHEDULING_CALLS[path](state, dealer, request)
        if failure is not None and failure.kind == "lost":
            await _pause(state, failure.delay)
        if failure is not None and failure.kind == "lost_error":
            return error(502, "BAD_GATEWAY", "upstream answer lost")
        if failure is not None and failure.kind == "garbled":
            return PlainTextResponse("<html>proxy error</html>", status_code=200)
        return answer

    return api


def _control_routes(state: FakeState) -> list[Route]:
    async def failures(request: Request) -> JSONResponse:
        body = await request.json()
        with state.lock:
            state.failures.append(Failure(**body))
        return JSONResponse({"ok": True})

    async def expire(request: Request) -> JSONResponse:
        state.tokens.clear()
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
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

    async def reset(request: Request) -> JSONResponse:
        with state.lock:
            state.calls.clear()
            state.call_times.clear()
            state.failures.clear()
        return JSONResponse({"ok": True})

    async def appointments(request: Request) -> JSONResponse:
        return JSONResponse({"appointments": state.appointments})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return [
        Route("/_control/failures", failures, methods=["POST"]),
        Route("/_control/expire-tokens", expire, methods=["POST"]),
        Route("/_control/stats", stats, methods=["GET"]),
        Route("/_control/reset", reset, methods=["POST"]),
        Route("/_control/appointments", appointments, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]


async def _pause(state: FakeState, seconds: float) -> None:
    """A delay that ends early when the server stops, so shutdown does not wait on injected timeouts."""
    deadline = time.monotonic() + seconds
    while not state.closing and time.monotonic() < deadline:
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


class FakeXtimeServer:
    """The fake on a loopback port in a background thread (port 0: any free port)."""

    def __init__(self, state: FakeState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_fake_app(state),
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
    uvicorn.run(create_fake_app(state), host=host, port=port, log_level="warning", access_log=False)
