"""The callback receiver: `GET`/`POST /integrations/protractor/events` and `GET /healthz` (CONTRACT section 7).

Protractor's callback carries its credential in the query (`connectionId`, `apiKey`) and says only that an
object changed. The pair is compared, in constant time, with every configured location's pair (401 with no
hint when none matches, nothing stored); then `type`, `operation` and `id` are validated (400); a location
over its rate gets 429 with Retry-After; the notification is appended to the journal and fsync'd before the
2xx. Nothing here calls Protractor. Logs name the location, never a key.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote_plus

from aiolimiter import AsyncLimiter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from dealer_assets.protractor.journal import Journal

log = logging.getLogger("dealer_assets.protractor.receiver")
EVENTS_PATH = "/integrations/protractor/events"
TYPES = ("WorkOrder", "ServiceItem", "Contact")
OPERATIONS = ("Create", "Update", "Delete")
MAX_QUERY_BYTES = 2048
MAX_BODY_BYTES = 8192
STORED = b'{"status":"stored"}'


@dataclass(frozen=True)
class Credential:
    location_id: str
    connection_id: str
    api_key: str


def _norm(value: str) -> bytes:
    return value.replace("-", "").strip().lower().encode()


class _Auth:
    """Constant-time lookup: every location's pair is compared, whatever matched first."""

    def __init__(self, credentials: list[Credential]) -> None:
        seen: dict[bytes, str] = {}
        for cred in credentials:
            if _norm(cred.connection_id) in seen:
                raise ValueError(
                    f"protractor locations {seen[_norm(cred.connection_id)]} and {cred.location_id} share a connection id"
                )
            seen[_norm(cred.connection_id)] = cred.location_id
        self._pairs = [(c.location_id, _norm(c.connection_id), _norm(c.api_key)) for c in credentials]

    def location(self, connection_id: str, api_key: str) -> str | None:
        conn, key = _norm(connection_id), _norm(api_key)
        found = None
        for location_id, c, k in self._pairs:
            ok = hmac.compare_digest(conn, c) & hmac.compare_digest(key, k)
            if ok and found is None:
                found = location_id
        return found


def _param(params: dict[str, str], name: str) -> str:
    return params.get(name.lower(), "")


def _query(raw: bytes) -> dict[str, str]:
    """The query's parameters, names lower-cased; percent-decoding only where a value needs it (GUIDs do not)."""
    params: dict[str, str] = {}
    for part in raw.split(b"&"):
        name, _, value = part.partition(b"=")
        text = value.decode("latin-1")
        if b"%" in value or b"+" in value:
            text = unquote_plus(text)
        params.setdefault(name.decode("latin-1").lower(), text)
    return params


class _EventIds:
    """Unique event ids without a system call per request: a random 64-bit prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = int.from_bytes(os.urandom(8), "big") << 64
        self._next = itertools.count(1)

    def __call__(self) -> str:
        return str(uuid.UUID(int=self._prefix | next(self._next)))


def _notification(params: dict[str, str]) -> tuple[tuple[str, str, str] | None, list[str]]:
    """(type, operation, object id) of a valid notification, else None and what is wrong with it."""
    kind, operation, raw_id = _param(params, "type"), _param(params, "operation"), _param(params, "id")
    problems = []
    if kind not in TYPES:
        problems.append(f"type must be one of {', '.join(TYPES)}")
    if operation not in OPERATIONS:
        problems.append(f"operation must be one of {', '.join(OPERATIONS)}")
    try:
        object_id = str(uuid.UUID(raw_id))
    except ValueError:
        problems.append("id must be a GUID")
    return (None if problems else (kind, operation, object_id)), problems


class _Events:
    """`GET`/`POST /integrations/protractor/events`: bounds, credentials, validation, rate, then the journal."""

    def __init__(
        self,
        credentials: list[Credential],
        journal: Journal,
        rate_per_second: float,
        burst: int,
        max_body_bytes: int,
    ) -> None:
        self._auth = _Auth(credentials)
        self._journal = journal
        self._limiters = {c.location_id: AsyncLimiter(burst, burst / rate_per_second) for c in credentials}
        self._event_ids = _EventIds()
        self._max_body_bytes = max_body_bytes

    async def handle(self, request: Request) -> Response:
        if len(request.url.query.encode()) > MAX_QUERY_BYTES:
            return PlainTextResponse("request too large", status_code=414)
        if request.method == "POST" and await self._body_too_large(request):
            return PlainTextResponse("request too large", status_code=413)
        params = _query(request.scope.get("query_string", b""))
        location_id = self._auth.location(_param(params, "connectionId"), _param(params, "apiKey"))
        if location_id is None:
            host = request.client and request.client.host
            log.warning("protractor callback rejected: unknown credentials from %s", host)
            return PlainTextResponse("unauthorized", status_code=401)
        notification, problems = _notification(params)
        if notification is None:
            log.info("protractor %s: callback rejected: %s", location_id, "; ".join(problems))
            return JSONResponse({"error": "; ".join(problems)}, status_code=400)
        limiter = self._limiters[location_id]
        if not limiter.has_capacity():
            log.warning("protractor %s: callback rate exceeded", location_id)
            return PlainTextResponse("too many requests", status_code=429, headers={"Retry-After": "1"})
        await limiter.acquire()
        return await self._store(location_id, *notification)

    async def _body_too_large(self, request: Request) -> bool:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body_bytes):
            return True
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body_bytes:
                return True
        return False

    async def _store(self, location_id: str, kind: str, operation: str, object_id: str) -> Response:
        received_at = datetime.now(UTC)
        record = {
            "event_id": self._event_ids(),
            "location_id": location_id,
            "type": kind,
            "object_id": object_id,
            "operation": operation,
            "received_at": received_at.isoformat(timespec="microseconds"),
        }
        try:
            await self._journal.append(record, received_at)
        except OSError:
            log.exception("protractor %s: callback not stored", location_id)
            return PlainTextResponse("not stored", status_code=503, headers={"Retry-After": "5"})
        log.debug("protractor %s: stored %s %s %s", location_id, kind, operation, object_id)
        return Response(STORED, media_type="application/json")


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(
    credentials: list[Credential],
    journal_root: Path,
    *,
    rate_per_second: float = 500.0,
    burst: int = 5000,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The ASGI app; `burst` notifications per location may arrive at once, then `rate_per_second`."""
    journal = Journal(journal_root)
    events = _Events(credentials, journal, rate_per_second, burst, max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await journal.start()
        try:
            yield
        finally:
            await journal.stop()

    return Starlette(
        routes=[
            Route(EVENTS_PATH, events.handle, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
