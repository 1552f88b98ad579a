"""The emulator itself: state, faults and counters behind a Starlette app.

A request meets, in order: the counters, latency, a dropped connection, the rate limit,
503 and 429 faults, signature checking (401), request checks (400: bad JSON, unparsable or
invalid GraphQL, more root fields than `alias_cap`), then execution, after which
`p_apply_then_drop` may still drop the connection. GraphQL errors of single fields go out
as HTTP 200 with `data.<alias> = null` and an `errors` entry whose `path` is the alias.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import secrets
import time
from collections.abc import Iterable
from typing import Any

from graphql import DocumentNode, GraphQLError, parse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batch_share.emulator import signatures
from batch_share.emulator.counters import Counters, RequestRecord
from batch_share.emulator.faults import Faults, RateLimiter, retry_after_header
from batch_share.emulator.fleet import ACCOUNT_EMAIL, Fleet
from batch_share.emulator.schema import (
    DocumentCache,
    RequestContext,
    document_errors,
    execute_document,
    root_field_count,
)
from batch_share.emulator.state import SeedGrant, ShareState

GRAPHQL_PATH = "/graphql/v1"
_RECORD = "batch_share.emulator.record"  # scope key: the middleware's record, for the endpoint


class _DropConnection(Exception):  # noqa: N818 - a signal to the middleware, not an error
    """Raised inside the app to make the middleware close the connection unanswered."""


class _BadRequest(Exception):  # noqa: N818
    pass


def _new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _decode_secret(secret: str) -> bytes:
    try:
        return base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the secret access key must be base64 text") from None


class Emulator:
    """A remote.it-like account: a seeded fleet, its shares, one access key, faults and
    counters. Serve `app` with `serve_in_thread` (tests) or `serve` (the CLI)."""

    def __init__(
        self,
        *,
        devices: int = 1000,
        services_per_device: int = 3,
        key_id: str | None = None,
        secret: str | None = None,
        account_email: str = ACCOUNT_EMAIL,
        seed: int = 0,
    ) -> None:
        self.key_id = key_id or "K" + secrets.token_hex(10).upper()
        self.secret = secret or _new_secret()
        self._secret_bytes = _decode_secret(self.secret)
        self.seed = seed
        self.fleet = Fleet.build(
            devices=devices, services_per_device=services_per_device, owner=account_email.casefold()
        )
        self.shares = ShareState(self.fleet, account_email)
        self.faults = Faults()
        self.counters = Counters()
        self._random = random.Random(seed)
        self._limiter: RateLimiter | None = None
        # Kept across reset(): it holds nothing a client can observe, only saved work.
        self.documents = DocumentCache()
        self.app = _build_app(self)

    def __repr__(self) -> str:
        return f"Emulator(devices={len(self.fleet.devices)}, key_id={self.key_id!r})"

    @property
    def account_email(self) -> str:
        return self.shares.account

    def seed_access(self, grants: Iterable[SeedGrant]) -> None:
        """Access that exists before the run, kept across `reset()` (sync and export need
        an account that already has shares)."""
        self.shares.seed(list(grants))

    def grant(
        self, device_id: str, email: str, *, scripting: bool = False, service_id: str | None = None
    ) -> None:
        """Share something now, as someone would by hand in the portal."""
        self.shares.grant(SeedGrant(device_id, email, scripting, service_id))

    def service_grants(self, service_id: str) -> set[str]:
        """Email keys with a share of this service alone (not through the whole device)."""
        return self.service_access(service_id) - set(
            self.access(self.fleet.services[service_id.upper()].device_id)
        )

    def access(self, device_id: str) -> dict[str, bool]:
        """Whole-device shares of a device: email key (case-folded) -> scripting."""
        return {email: g.scripting for email, g in self.shares.device_grants(device_id).items()}

    def service_access(self, service_id: str) -> set[str]:
        """Email keys that can reach a service: its own shares plus its device's."""
        return set(self.shares.effective_service_grants(service_id))

    def reset(self, *, drain_timeout: float = 10.0) -> None:
        """Seed shares, no faults, zero counters, the RNG re-seeded: as new, same key.

        First waits (up to `drain_timeout` s) for requests still in flight, such as one a
        test gave up on while it slept in injected latency, so that they cannot touch the
        fresh state or counters. Call it from outside the server's thread.
        """
        deadline = time.monotonic() + drain_timeout
        while self.counters.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        self.shares.reset()
        self.faults.reset()
        self.counters.reset()
        self._random.seed(self.seed)
        self._limiter = None

    def hit(self, probability: float) -> bool:
        """Whether a fault with this per-request probability strikes now."""
        return probability > 0 and self._random.random() < probability

    def rate_limit_wait(self) -> float:
        """0 if the rate limit lets this request through, else seconds until it would."""
        rate = self.faults.rate_limit
        if rate is None:
            return 0.0
        if self._limiter is None or self._limiter.rate != rate:
            self._limiter = RateLimiter(rate)
        return self._limiter.acquire()

    def signature_refusal(self, scope: Scope, body: bytes, headers: dict[str, str]) -> str | None:
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        return signatures.refusal(
            method=scope["method"],
            target=(target + (b"?" + query if query else b"")).decode("latin-1"),
            headers=headers,
            body=body,
            secrets={self.key_id: self._secret_bytes},
            now=time.time(),
        )


def _message(text: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status, headers=headers)


def _request_error(text: str) -> JSONResponse:
    """A whole-document refusal: GraphQL-shaped, no data, no path, HTTP 400."""
    return JSONResponse({"errors": [{"message": text}]}, status_code=400)


def _payload(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _BadRequest("the body must be JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        raise _BadRequest("the body must be a JSON object with a 'query' string")
    variables, operation_name = payload.get("variables"), payload.get("operationName")
    if variables is not None and not isinstance(variables, dict):
        raise _BadRequest("'variables' must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _BadRequest("'operationName' must be a string")
    return payload["query"], variables, operation_name


async def _drop_connection(receive: Receive) -> None:
    """ASGI cannot close a connection without answering. uvicorn's `receive` is a bound
    method of its request cycle, which holds the transport: abort that, then yield once so
    uvicorn sees the disconnect before the app returns and does not answer 500 instead."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.WriteTransport):
        raise TypeError("dropping connections needs uvicorn's h11 or httptools protocol")
    transport.abort()
    await asyncio.sleep(0)


class _FaultsAndCounters:
    """Outermost layer: counts every request and injects the faults that strike before the
    request is even looked at."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counters = self.emulator.counters
        record = counters.begin()
        scope[_RECORD] = record
        finished = False

        def finish() -> None:
            # Count the request as done *before* its last byte leaves: a client that has its
            # answer must never see it still in flight, or a sequential client would appear
            # to run two requests at once.
            nonlocal finished
            if not finished:
                finished = True
                counters.end()

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                counters.answered(record, message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finish()
            await send(message)

        try:
            await self._faults_then_app(scope, receive, counting_send)
        except _DropConnection:
            counters.dropped_connection(record)
            finish()
            await _drop_connection(receive)
        finally:
            finish()

    async def _faults_then_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        emulator, faults = self.emulator, self.emulator.faults
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        if emulator.hit(faults.p_drop):
            raise _DropConnection
        refusal = self._early_refusal()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _early_refusal(self) -> Response | None:
        emulator, faults = self.emulator, self.emulator.faults
        wait = emulator.rate_limit_wait()
        if wait > 0:
            retry_after = retry_after_header(wait, whole_seconds=True)
            return _message("rate limit exceeded", 429, {"Retry-After": retry_after})
        if emulator.hit(faults.p503):
            return _message("service temporarily unavailable", 503)
        if emulator.hit(faults.p429):
            retry_after = retry_after_header(faults.retry_after, whole_seconds=False)
            return _message("too many requests", 429, {"Retry-After": retry_after})
        return None


def _checked_document(
    emulator: Emulator, query: str, operation_name: str | None
) -> DocumentNode | Response:
    """The document to execute, or the HTTP 400 that refuses it: parse, alias cap, validate.

    A cached document passed parsing and validation before, so only the alias cap (a fault
    that may have been switched on since) is checked again. The cap keeps its place between
    the two, so a fresh document with too many fields is refused for that, valid or not.
    """
    document = emulator.documents.get(query)
    cached = document is not None
    if document is None:
        try:
            document = parse(query)
        except GraphQLError as error:
            return JSONResponse({"errors": [error.formatted]}, status_code=400)
    cap, fields = emulator.faults.alias_cap, root_field_count(document, operation_name)
    if cap is not None and fields > cap:
        return _request_error(f"query too complex: {fields} fields in one document, at most {cap}")
    if not cached:
        errors = document_errors(document)
        if errors:
            return JSONResponse({"errors": [e.formatted for e in errors]}, status_code=400)
        emulator.documents.add(query, document)
    return document


def _build_app(emulator: Emulator) -> Starlette:
    async def graphql_endpoint(request: Request) -> Response:
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        problem = emulator.signature_refusal(request.scope, body, headers)
        if problem is not None:
            return _message(problem, 401, {"WWW-Authenticate": 'Signature realm="remote.it"'})
        try:
            query, variables, operation_name = _payload(body)
        except _BadRequest as error:
            return _request_error(str(error))
        document = _checked_document(emulator, query, operation_name)
        if isinstance(document, Response):
            return document
        record: RequestRecord = request.scope[_RECORD]
        context = RequestContext(emulator.shares, emulator.faults, emulator.counters, record)
        result = execute_document(document, variables, operation_name, context)
        if emulator.hit(emulator.faults.p_apply_then_drop):
            raise _DropConnection
        # No data at all means the request itself was bad (e.g. variables of the wrong type).
        return JSONResponse(result, status_code=200 if result.get("data") is not None else 400)

    return Starlette(
        routes=[Route(GRAPHQL_PATH, graphql_endpoint, methods=["POST"])],
        middleware=[Middleware(_FaultsAndCounters, emulator=emulator)],
    )
