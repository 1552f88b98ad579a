"""The remote.it GraphQL client: one signed POST per call, every failure mapped once into the
`errors` tree, so callers (the executor, the CLI) only ever see batch-share's own exceptions.

Retries, pacing and splitting live in the executor; this module makes exactly one attempt.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx

from batch_share import __version__
from batch_share.errors import (
    AuthRefusedError,
    BadResponseError,
    InsecureURLError,
    RateLimitedError,
    RequestRejectedError,
    RequestTimeoutError,
    ServerError,
    TLSError,
    TransportError,
)
from batch_share.models import Mutation
from batch_share.send.auth import Credentials, SignatureAuth

# (argument, variable prefix, GraphQL type) for every `share` argument, as in the schema.
# Each alias i gets its own variables `$<prefix><i>`; prefixes never end in a digit, so
# `$d10` and `$ds0` cannot collide.
SHARE_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("deviceId", "d", "String"),
    ("deviceIds", "ds", "[String!]"),
    ("email", "e", "[String!]!"),
    ("action", "a", "SharingAction!"),
    ("scripting", "sc", "Boolean!"),
    ("notify", "n", "Boolean!"),
    ("services", "sv", "[ServiceSharingOptions!]"),
)
_PREFIXES = {argument: prefix for argument, prefix, _ in SHARE_ARGUMENTS}

WHOAMI_QUERY = "query WhoAmI { login { email } }"
DEVICE_ACCESS_QUERY = """\
query DeviceAccess($ids: [String!]!) {
  login {
    email
    device(id: $ids) {
      id
      name
      access { user { email } scripting }
      services { id name access { user { email } } }
    }
  }
}"""

_EXCERPT_CHARS = 200

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""The most body bytes read from one answer; past it the answer is refused unread.

A `share` answer is a few hundred bytes. The largest answer batch-share asks for is the
read-back `login { device(id: [100 ids]) { access ... services { access ... } } }`: at
about 60 bytes per (user, device or service) pair, 100 devices with 10 services and a
couple of hundred users each come to ~13 MB of JSON only at the far end, so 16 MiB lets
every real account through while a runaway or hostile server costs at most this much
memory per request in flight (and the JSON parse of it), not whatever it chooses to send.
"""

REQUEST_DEADLINE_SECONDS = 120.0
"""The longest one request may take from start to last byte, whatever the server does.

httpx's timeout bounds each read, so a server that sends one byte every few seconds never
trips it. This total deadline does. A real answer takes well under a second; 120 s still
fits a `MAX_RESPONSE_BYTES` answer on a ~1.2 Mbit/s link. A `timeout` longer than this
(a very slow network) raises the deadline with it, so one never undercuts the other.
"""
_DELTA_SECONDS = re.compile(r"-?\d+(\.\d+)?")


@dataclass(frozen=True, slots=True)
class GraphQLErrorInfo:
    """One entry of a GraphQL response's `errors`; `path[0]` is the alias it belongs to."""

    message: str
    path: tuple[str | int, ...] | None = None


@dataclass(frozen=True, slots=True)
class GraphQLResponse:
    data: dict[str, object] | None
    errors: tuple[GraphQLErrorInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldResult:
    """The answer for one `share` field of a request."""

    ok: bool
    message: str = ""  # the server's own error message when not ok
    # True when the server named this field in an error of its own: the refusal is about
    # this field, not a neighbour that voided the whole answer.
    own_error: bool = False


def check_api_url(url: str) -> None:
    """Refuse a URL the signed requests must not go to, before any I/O.

    Plain http is allowed only to loopback (the emulator): anywhere else the request, its
    key id and signature would cross the network in clear text.
    """
    parsed = httpx.URL(url)
    where = _display(parsed)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InsecureURLError(f"API URL {where!r} is not an http(s) URL")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise InsecureURLError(
            f"refusing plain http:// to {parsed.host}: use https:// "
            "(http is allowed only to a loopback address such as 127.0.0.1)"
        )


def _is_loopback(host: str) -> bool:
    if host.rstrip(".").casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _display(url: httpx.URL) -> str:
    """The URL for messages: without user info, which could hold a password."""
    return str(url.copy_with(userinfo=b""))


@functools.lru_cache(maxsize=128)
def share_document(count: int) -> str:
    """A mutation with `count` aliased `share` fields `m0..m{count-1}`.

    Every alias declares all the schema's arguments as variables; `share` then sends only
    the variables a mutation uses. A declared nullable variable that is absent from the
    variables map leaves its argument unset (GraphQL spec, CoerceArgumentValues), exactly
    as if it were not written, so one document per count serves every shape of mutation.
    """
    if count < 1:
        raise ValueError("a share document needs at least one field")
    declarations = ", ".join(
        f"${prefix}{index}: {graphql_type}"
        for index in range(count)
        for _, prefix, graphql_type in SHARE_ARGUMENTS
    )
    fields = "\n".join(
        f"  m{index}: share("
        + ", ".join(f"{argument}: ${prefix}{index}" for argument, prefix, _ in SHARE_ARGUMENTS)
        + ")"
        for index in range(count)
    )
    return f"mutation Share({declarations}) {{\n{fields}\n}}"


def share_variables(mutations: Sequence[Mutation]) -> dict[str, object]:
    """The variables for `share_document(len(mutations))`, renamed per alias."""
    return {
        f"{_PREFIXES[argument]}{index}": value
        for index, mutation in enumerate(mutations)
        for argument, value in mutation.variables().items()
    }


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date.

    A wait below zero (a date in the past) means "now"; an unreadable value means the
    server gave no hint.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return max(0.0, float(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class ShareClient:
    """An authenticated connection to the remote.it GraphQL API.

    Use as `async with ShareClient(url, credentials) as client:`. `transport` is for tests
    and special networks; TLS verification is always on for the default transport.
    """

    def __init__(
        self,
        api_url: str,
        credentials: Credentials,
        *,
        timeout: float = 30.0,
        deadline: float | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        check_api_url(api_url)
        self._url = api_url
        self._where = _display(httpx.URL(api_url))
        self._credentials = credentials
        self._deadline = (
            deadline if deadline is not None else max(REQUEST_DEADLINE_SECONDS, timeout)
        )
        self._max_bytes = max_response_bytes
        self._http = httpx.AsyncClient(
            auth=SignatureAuth(credentials),
            headers={"User-Agent": f"batch-share/{__version__}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            # The executor's --concurrency is the one cap on requests in flight; a second,
            # smaller cap here would only turn waiting for a connection into pool timeouts.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            verify=True,
            http2=False,
            follow_redirects=False,
            transport=transport,
        )

    async def __aenter__(self) -> ShareClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(self, document: str, variables: Mapping[str, object]) -> GraphQLResponse:
        """Send one GraphQL document in one POST; raise an `ApiError` for anything that is
        not a GraphQL answer. GraphQL errors in a 200 answer are returned, not raised."""
        payload: dict[str, object] = {"query": document, "variables": dict(variables)}
        try:
            async with asyncio.timeout(self._deadline):
                response, body = await self._exchange(payload)
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"POST {self._where}: no complete answer within the {self._deadline:g} s "
                "deadline for one request"
            ) from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(
                f"POST {self._where}: no answer in time ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            problem = _tls_problem(exc)
            if problem is not None:
                raise TLSError(
                    f"POST {self._where}: TLS/certificate check failed: {problem}; "
                    "refusing to talk to a server whose certificate cannot be verified"
                ) from exc
            raise TransportError(f"POST {self._where}: {_reason(exc)}") from exc
        except httpx.RequestError as exc:
            # e.g. a body that cannot be decoded: the server answered, but not readably.
            raise BadResponseError(f"POST {self._where}: {_reason(exc)}") from exc
        if response.status_code == 200:
            return self._graphql(response, body)
        raise self._status_error(response, body)

    async def _exchange(self, payload: dict[str, object]) -> tuple[httpx.Response, bytes]:
        """POST and read the answer as a stream, so a body past the cap is refused having
        cost at most the cap, not loaded whole first."""
        async with self._http.stream("POST", self._url, json=payload) as response:
            where = f"POST {self._where} -> HTTP {response.status_code}"
            limit = _mib(self._max_bytes)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise BadResponseError(
                    f"{where}: the answer declares {int(declared):,} bytes, more than the "
                    f"{limit} any answer may have; not read",
                    status=response.status_code,
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise BadResponseError(
                        f"{where}: the answer is larger than the {limit} any answer may have; "
                        "stopped reading",
                        status=response.status_code,
                    )
        return response, bytes(body)

    async def share(self, mutations: Sequence[Mutation]) -> list[FieldResult]:
        """Send all `mutations` as aliased `share` fields of one request.

        Returns one result per mutation, in order. Raises `RequestRejectedError` when the
        server refused the document as a whole (no field was attempted).
        """
        if not mutations:
            return []
        response = await self.execute(share_document(len(mutations)), share_variables(mutations))
        return field_results(response, len(mutations))

    async def whoami(self) -> str:
        """The email of the account the key belongs to (LEAVE rows must use it)."""
        login = _login(await self.execute(WHOAMI_QUERY, {}), "login")
        email = login.get("email")
        if not isinstance(email, str):
            raise BadResponseError(f"POST {self._where}: the login has no email")
        return email

    async def device_access(self, device_ids: Sequence[str]) -> list[dict[str, object]]:
        """The devices among `device_ids` the account can see, with who has access to them
        and to their services. Unknown or foreign IDs are simply absent."""
        if not device_ids:
            return []
        _, devices = await self.device_access_and_email(device_ids)
        return devices

    async def device_access_and_email(
        self, device_ids: Sequence[str]
    ) -> tuple[str, list[dict[str, object]]]:
        """`device_access` plus whose key this is, in the same request: a sync's first read
        then costs no request of its own to learn whose access never to remove."""
        response = await self.execute(DEVICE_ACCESS_QUERY, {"ids": list(device_ids)})
        login = _login(response, "device access")
        email = login.get("email")
        if not isinstance(email, str):
            raise BadResponseError(f"POST {self._where}: the login has no email")
        devices = login.get("device")
        if devices is None:
            return email, []
        if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
            raise BadResponseError(f"POST {self._where}: device list is not a list of objects")
        return email, devices

    def _graphql(self, response: httpx.Response, body: bytes) -> GraphQLResponse:
        where = f"POST {self._where} -> HTTP {response.status_code}"
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            # RecursionError: JSON nested deeper than the parser's stack, e.g. `[[[[...`.
            raise BadResponseError(
                f"{where}: the answer is not JSON: {_excerpt(response, body)}", status=200
            ) from None
        if not isinstance(payload, dict) or not ("data" in payload or "errors" in payload):
            raise BadResponseError(f"{where}: the answer is not a GraphQL response", status=200)
        data = payload.get("data")
        if data is not None and not isinstance(data, dict):
            raise BadResponseError(f"{where}: GraphQL `data` is not an object", status=200)
        errors = _graphql_errors(payload.get("errors"))
        if errors is None:
            raise BadResponseError(f"{where}: GraphQL `errors` is not a list", status=200)
        return GraphQLResponse(data=data, errors=errors)

    def _status_error(self, response: httpx.Response, body: bytes) -> Exception:
        status = response.status_code
        if response.is_redirect:
            return BadResponseError(
                f"POST {self._where} -> HTTP {status}: refused to follow a redirect to "
                f"{_location(response)}; requests are signed for the API URL only, so they "
                "are never re-sent elsewhere (check --api-url)",
                status=status,
            )
        message = f"POST {self._where} -> HTTP {status}: {_excerpt(response, body)}"
        if status in (401, 403):
            credentials = self._credentials
            return AuthRefusedError(
                f"{message} (key {credentials.key_id} from {credentials.source})", status=status
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
            return RateLimitedError(message, retry_after=retry_after)
        if status >= 500:
            return ServerError(message, status=status)
        if status >= 400:
            return RequestRejectedError(message, status=status)
        # 1xx/2xx other than 200, or a redirect: nothing a GraphQL endpoint should answer.
        return BadResponseError(message, status=status)


def field_results(response: GraphQLResponse, count: int) -> list[FieldResult]:
    """One `FieldResult` per alias `m0..m{count-1}` of a share response.

    The real API nulls only a failing alias. But `share` is declared `Boolean!`, and a
    server that follows the spec to the letter nulls all of `data` at the first failure and
    never runs the fields after it. So a field is ok only when the server said `true` for
    it; every other one carries its own errors, or a note that nothing confirmed it.
    """
    aliases = [f"m{index}" for index in range(count)]
    by_alias: dict[str, list[str]] = {}
    unplaced: list[str] = []
    for error in response.errors:
        alias = error.path[0] if error.path else None
        if isinstance(alias, str) and alias in aliases:
            messages = by_alias.setdefault(alias, [])
            if error.message not in messages:
                messages.append(error.message)
        else:
            unplaced.append(error.message)
    data = response.data
    if data is None and not by_alias:
        reason = "; ".join(unplaced) or "no data and no errors"
        raise RequestRejectedError(f"the server rejected the request: {reason}", status=200)
    if unplaced:
        fallback = "; ".join(unplaced)
    elif data is None:
        fallback = "not confirmed: another share in the same request failed"
    else:
        fallback = "the server did not confirm this share"
    results = []
    for alias in aliases:
        if data is not None and data.get(alias) is True:
            results.append(FieldResult(ok=True))
        else:
            own = by_alias.get(alias)
            results.append(
                FieldResult(ok=False, message="; ".join(own or [fallback]), own_error=bool(own))
            )
    return results


def _graphql_errors(raw: object) -> tuple[GraphQLErrorInfo, ...] | None:
    """The `errors` entries, or None when `errors` is not a list at all."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return None
    errors = []
    for entry in raw:
        if not isinstance(entry, dict):
            errors.append(GraphQLErrorInfo(message=str(entry)))
            continue
        raw_path = entry.get("path")
        path = None
        if isinstance(raw_path, list):
            parts = tuple(part for part in raw_path if isinstance(part, str | int))
            path = parts if len(parts) == len(raw_path) else None
        errors.append(GraphQLErrorInfo(str(entry.get("message", "unknown error")), path))
    return tuple(errors)


def _login(response: GraphQLResponse, what: str) -> dict[str, object]:
    if response.errors:
        messages = "; ".join(error.message for error in response.errors)
        raise RequestRejectedError(f"{what} query failed: {messages}", status=200)
    login = None if response.data is None else response.data.get("login")
    if not isinstance(login, dict):
        raise BadResponseError(f"{what} query: the answer has no login", status=200)
    return login


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _tls_problem(exc: Exception) -> str | None:
    """What TLS objected to, when a transport error comes from the handshake, else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"the server's certificate is not trusted ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or cause})"
        cause = cause.__cause__ or cause.__context__
    return None


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def _location(response: httpx.Response) -> str:
    """Where a redirect pointed, shortened and without user info, for the message."""
    location = response.headers.get("location", "").strip()
    if not location:
        return "(no Location given)"
    try:
        shown = _display(response.url.join(location))
    except (httpx.InvalidURL, ValueError):
        shown = location
    return shown if len(shown) <= _EXCERPT_CHARS else shown[:_EXCERPT_CHARS] + "..."


def _excerpt(response: httpx.Response, body: bytes) -> str:
    """A short, single-line account of an error answer: the server's own message if it sent
    one in JSON, else the start of the body."""
    head = body[: _EXCERPT_CHARS * 4].decode(response.encoding or "utf-8", errors="replace")
    text = _server_message(body) or " ".join(head.split()) or response.reason_phrase
    authorization = response.request.headers.get("authorization")
    if authorization:  # a server that echoes the request must not put it in our messages
        text = text.replace(authorization, "[redacted]")
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    return text


def _server_message(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(payload, dict):
        return ""
    errors = _graphql_errors(payload.get("errors"))
    if errors:
        return "; ".join(error.message for error in errors)
    for key in ("message", "error"):
        if isinstance(payload.get(key), str):
            return str(payload[key])
    return ""
