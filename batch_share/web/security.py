"""The page's outer wall, as plain ASGI middleware in front of every route.

A local web server is reachable by every other page the user has open (through their
browser) and by every local process. So, before any route runs:

- the Host header must name this server (127.0.0.1, localhost or [::1] with our port):
  a DNS-rebinding page reaches 127.0.0.1 under its own host name and is refused here;
- the access token must come with the request: in the URL once (it is then swapped for
  an HttpOnly SameSite=Strict cookie and the URL is redirected without it, so it leaves
  the address bar and history), or in that cookie;
- a request that can change anything (any method but GET/HEAD) with a foreign Origin or a
  cross-site Sec-Fetch-Site is refused; the CSRF token itself is checked by the routes,
  which know where it travels (form field or header);
- bodies are capped twice: a Content-Length over the limit is refused before reading, and
  bytes are counted as they stream in, because Content-Length can lie or be absent.

Every response gets a strict Content-Security-Policy: scripts and styles only from our own
static files, no inline code, nothing framed, forms only to ourselves.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
    (b"cache-control", b"no-store"),
)
_SAFE_METHODS = frozenset({"GET", "HEAD"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class UploadTooLargeError(Exception):
    """The body outgrew the limit while streaming in."""


def cookie_name(port: int) -> str:
    """Cookies ignore ports, so two servers on one machine each get their own cookie."""
    return f"batch_share_{port}"


class Guardrail:
    """Host, token, Origin and body-size checks; see the module docstring."""

    def __init__(self, app: ASGIApp, *, token: str, port: int, max_body: int) -> None:
        self.app = app
        self.token = token
        self.port = port
        self.max_body = max_body

    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(f"{name}:{self.port}" for name in LOOPBACK_NAMES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if host not in self.allowed_hosts():
            await _plain(send, 403, "forbidden: this server answers only to 127.0.0.1")
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        given = query.get("token")
        if given is not None and secrets.compare_digest(given, self.token):
            if scope["method"] in _SAFE_METHODS:
                await self._swap_for_cookie(scope, query, send)
                return
        elif not secrets.compare_digest(self._cookie(headers), self.token):
            await _plain(send, 403, "forbidden: open the URL that `batch-share serve` printed")
            return
        if scope["method"] not in _SAFE_METHODS and not self._same_origin(headers):
            await _plain(send, 403, "forbidden: request from another site")
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _plain(send, 413, "upload too large")
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise UploadTooLargeError
            return message

        async def secured_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, counting_receive, secured_send)
        except UploadTooLargeError:
            if not started:
                await _plain(send, 413, "upload too large")

    def _cookie(self, headers: dict[str, str]) -> str:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed Cookie header is just no cookie
            return ""
        morsel = jar.get(cookie_name(self.port))
        return morsel.value if morsel is not None else ""

    def _same_origin(self, headers: dict[str, str]) -> bool:
        if headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
            return False
        origin = headers.get("origin")
        if origin is None:
            return True  # not a browser (browsers send Origin on every POST)
        return origin in {f"http://{host}" for host in self.allowed_hosts()}

    async def _swap_for_cookie(self, scope: Scope, query: dict[str, str], send: Send) -> None:
        rest = {k: v for k, v in query.items() if k != "token"}
        location = scope["path"] + (f"?{urlencode(rest)}" if rest else "")
        cookie = (
            f"{cookie_name(self.port)}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"set-cookie", cookie),
                    (b"content-length", b"0"),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
