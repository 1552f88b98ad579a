"""Reading the account: its devices (for names and `--scope account`) and who has access to
them today (for `sync`, `export` and `--verify`). Read-only queries, batched.

Reads are retried like shares (connection errors, timeouts, 429 with its Retry-After, 5xx):
a nightly sync that gives up on one flaky read would do nothing at all that night.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from batch_share.errors import (
    BadResponseError,
    RateLimitedError,
    RequestRejectedError,
    RetryableError,
)
from batch_share.models import DeviceAccess, DeviceInfo, ServiceInfo

if TYPE_CHECKING:
    from batch_share.send.client import GraphQLResponse, ShareClient

_T = TypeVar("_T")

READ_BATCH = 100  # device ids per `login { device(id: [...]) }` query
PAGE_SIZE = 1000  # the API's largest `login { devices(size:) }` page

DEVICES_PAGE_QUERY = """\
query DevicesPage($from: Int, $size: Int) {
  login {
    devices(from: $from, size: $size) {
      items { id name owner { email } services { id name } }
      hasMore
      total
    }
  }
}"""


class GraphQLReader(Protocol):
    async def execute(self, document: str, variables: Mapping[str, object]) -> GraphQLResponse: ...


class AccessReader(Protocol):
    async def device_access(self, device_ids: Sequence[str]) -> list[dict[str, object]]: ...


async def list_devices(
    client: GraphQLReader, *, page_size: int = PAGE_SIZE, concurrency: int = 4, retries: int = 4
) -> list[DeviceInfo]:
    """Every device the key can see, owned or shared with it, in the API's order."""

    async def page_at(start: int) -> _Page:
        return await _retrying(retries, _devices_page, client, start, page_size)

    pages = await _every_page(page_at, concurrency)
    return [page.devices[index] for page, index in _first_seen(pages)]


async def _devices_page(client: GraphQLReader, start: int, size: int) -> _Page:
    response = await client.execute(DEVICES_PAGE_QUERY, {"from": start, "size": size})
    if response.errors:
        messages = "; ".join(error.message for error in response.errors)
        raise RequestRejectedError(f"device list query failed: {messages}", status=200)
    data = response.data
    login = data.get("login") if isinstance(data, dict) else None
    page = login.get("devices") if isinstance(login, dict) else None
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise BadResponseError("device list query: the answer has no devices page")
    return _parsed(
        page["items"], email="", more=page.get("hasMore") is True, total=page.get("total")
    )


def _device_info(item: object) -> DeviceInfo:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise BadResponseError("device list query: a device without an id")
    owner = item.get("owner")
    email = owner.get("email") if isinstance(owner, dict) else None
    services = item.get("services")
    return DeviceInfo(
        id=item["id"],
        name=str(item.get("name") or ""),
        owner=email.casefold() if isinstance(email, str) else "",
        services=tuple(
            ServiceInfo(str(s["id"]), str(s.get("name") or ""))
            for s in (services if isinstance(services, list) else [])
            if isinstance(s, dict) and isinstance(s.get("id"), str)
        ),
    )


async def read_access(
    reader: AccessReader,
    device_ids: Iterable[str],
    *,
    concurrency: int = 4,
    retries: int = 4,
) -> dict[str, DeviceAccess]:
    """Today's access of each device the key can see among `device_ids`, `READ_BATCH` ids
    per request, `concurrency` requests at a time. Devices it cannot see are absent."""
    wanted = sorted(set(device_ids))
    batches = [wanted[start : start + READ_BATCH] for start in range(0, len(wanted), READ_BATCH)]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def read(batch: list[str]) -> list[dict[str, object]]:
        async with gate:
            return await _retrying(retries, reader.device_access, batch)

    access: dict[str, DeviceAccess] = {}
    for found in await asyncio.gather(*(read(batch) for batch in batches)):
        for device in found:
            access[str(device.get("id"))] = parse_access(device)
    return access


async def _retrying(retries: int, call: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(retries + 1),
        wait=_backoff_or_retry_after,
        retry=retry_if_exception_type(RetryableError),
        reraise=True,
    ):
        with attempt:
            return await call(*args)
    raise AssertionError("tenacity neither returned nor raised")  # pragma: no cover


_BACKOFF = wait_random_exponential(multiplier=0.5, max=30)


def _backoff_or_retry_after(state: RetryCallState) -> float:
    """Exponential backoff with jitter, but never sooner than the server's Retry-After."""
    wait = _BACKOFF(state)
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        return max(wait, error.retry_after)
    return wait


async def read_access_and_email(
    client: ShareClient, device_ids: Sequence[str], *, concurrency: int = 4, retries: int = 4
) -> tuple[str, dict[str, DeviceAccess], int]:
    """Whose key this is and today's access of `device_ids`: the first batch also asks for
    the key's email, so the whole read is one request per `READ_BATCH` devices. Returns the
    email (case-folded), the access, and the requests it took."""
    wanted = sorted(set(device_ids))
    first, rest = wanted[:READ_BATCH], wanted[READ_BATCH:]
    email, devices = await _retrying(retries, client.device_access_and_email, first)
    access = {str(device.get("id")): parse_access(device) for device in devices}
    access.update(await read_access(client, rest, concurrency=concurrency, retries=retries))
    return email.casefold(), access, 1 + -(-len(rest) // READ_BATCH)


def _emails(entries: object) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for entry in entries if isinstance(entries, list) else []:
        user = entry.get("user") if isinstance(entry, dict) else None
        email = user.get("email") if isinstance(user, dict) else None
        if isinstance(email, str):
            found[email.casefold()] = bool(entry.get("scripting"))
    return found


def parse_access(device: Mapping[str, object]) -> DeviceAccess:
    services = device.get("services")
    return DeviceAccess(
        device=_emails(device.get("access")),
        services={
            str(service.get("id")): frozenset(_emails(service.get("access")))
            for service in (services if isinstance(services, list) else [])
            if isinstance(service, dict)
        },
    )


# --- the whole account with its access, for `export` --------------------------------------
# `login { devices }` selects access lists too, so a whole-account export costs one request
# per 1,000 devices instead of one per 100, and `login { email }` rides in the same request
# instead of a separate `whoami`. With a list of IDs (`export --devices`) it reads
# `device(id:)` in `READ_BATCH`es instead, as `read_access` does.

# Service access carries no scripting here: `DeviceAccess` keeps only who can reach a
# service, and on a full page those lists are most of the answer (server time is per field).
_ACCESS_FIELDS = """\
id name owner { email }
access { user { email } scripting }
services { id name access { user { email } } }"""

ACCOUNT_PAGE_QUERY = f"""\
query AccountAccess($from: Int, $size: Int) {{
  login {{
    email
    devices(from: $from, size: $size) {{
      items {{ {_ACCESS_FIELDS} }}
      hasMore
      total
    }}
  }}
}}"""

ACCOUNT_IDS_QUERY = f"""\
query AccountDevices($ids: [String!]!) {{
  login {{
    email
    device(id: $ids) {{ {_ACCESS_FIELDS} }}
  }}
}}"""

ReadProgress = Callable[[int, "int | None"], None]
"""Called after each request with the devices read so far and the total, once known."""


@dataclass(frozen=True, slots=True)
class AccountAccess:
    """What the key's account looks like now: every device it can see, in the API's order,
    with who can reach each. `requests` counts the HTTP requests the reading took."""

    email: str  # the key owner's, case-folded
    devices: tuple[DeviceInfo, ...]
    access: Mapping[str, DeviceAccess]
    requests: int


async def read_account(
    client: GraphQLReader,
    *,
    device_ids: Iterable[str] | None = None,
    page_size: int = PAGE_SIZE,
    concurrency: int = 4,
    retries: int = 4,
    on_progress: ReadProgress | None = None,
) -> AccountAccess:
    """The devices the key can see and who can reach them: all of them, or only those among
    `device_ids` (unknown or invisible IDs are simply absent).

    Up to `concurrency` pages (or batches of IDs) are asked for at once, and devices keep
    the API's order whatever order the answers come in.
    """
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}, got {page_size}")
    counted = CountingReader(client)
    progress = on_progress or (lambda _done, _total: None)
    read = 0

    def tick(count: int, total: int | None) -> None:
        nonlocal read
        read += count
        progress(read, total)

    async def page_at(start: int) -> _Page:
        variables = {"from": start, "size": page_size}
        return _account_page(
            _login(await _retrying(retries, counted.execute, ACCOUNT_PAGE_QUERY, variables))
        )

    async def batch_of(ids: list[str], wanted: int) -> _Page:
        variables = {"ids": ids}
        login = _login(await _retrying(retries, counted.execute, ACCOUNT_IDS_QUERY, variables))
        found = login.get("device") or []
        if not isinstance(found, list):
            raise BadResponseError("account query: the device list is not a list")
        tick(len(ids), wanted)
        return _parsed(found, email=_email(login), more=False, total=None, with_access=True)

    if device_ids is None:
        pages = await _every_page(
            page_at, concurrency, on_page=lambda page: tick(len(page.devices), page.total)
        )
    else:
        wanted = sorted(set(device_ids))
        progress(0, len(wanted))
        batches = [wanted[at : at + READ_BATCH] for at in range(0, len(wanted), READ_BATCH)]
        # An empty list still asks once: that says whose key this is, and that it works.
        calls = [functools.partial(batch_of, batch, len(wanted)) for batch in batches or [[]]]
        pages = await _concurrently(calls, concurrency)
    kept = list(_first_seen(pages))
    devices = tuple(page.devices[index] for page, index in kept)
    access = {page.devices[index].id: page.access[index] for page, index in kept}
    return AccountAccess(pages[0].email, devices, access, counted.requests)


@dataclass(frozen=True, slots=True)
class _Page:
    email: str
    devices: list[DeviceInfo]
    access: list[DeviceAccess]
    more: bool
    total: int | None


def _parsed(
    items: list[Any], *, email: str, more: bool, total: object, with_access: bool = False
) -> _Page:
    return _Page(
        email=email,
        devices=[_device_info(item) for item in items],
        access=[parse_access(item) for item in items] if with_access else [],
        # An empty page ends the reading too: a server stuck on hasMore must not loop.
        more=more and bool(items),
        total=total if isinstance(total, int) else None,
    )


def _first_seen(pages: Sequence[_Page]) -> Iterator[tuple[_Page, int]]:
    """Where each device first appears: a page boundary that moved as the account grew
    can show a device on two pages."""
    seen: set[str] = set()
    for page in pages:
        for index, info in enumerate(page.devices):
            if info.id not in seen:
                seen.add(info.id)
                yield page, index


def _account_page(login: Mapping[str, object]) -> _Page:
    page = login.get("devices")
    items = page.get("items") if isinstance(page, dict) else None
    if not isinstance(page, dict) or not isinstance(items, list):
        raise BadResponseError("account query: the answer has no devices page")
    return _parsed(
        items,
        email=_email(login),
        more=page.get("hasMore") is True,
        total=page.get("total"),
        with_access=True,
    )


async def _every_page(
    page_at: Callable[[int], Awaitable[_Page]],
    concurrency: int,
    on_page: Callable[[_Page], None] = lambda _page: None,
) -> list[_Page]:
    """Every page of a `login { devices(from:, size:) }` listing, in order.

    The first page gives the page length and the total; then up to `concurrency` pages are
    in flight at once, each parsed while the server works on the next, and never past the
    total (a server overstating it costs at most `concurrency` requests, not one per page).
    A page shorter than the first (a server with uneven pages, or devices deleted meanwhile)
    makes the offsets after it wrong: those requests are dropped and asked again from where
    that page ended, so no device is skipped. Without a total, pages go one at a time.
    """
    first = await page_at(0)
    pages = [first]
    on_page(first)
    step, total = len(first.devices), first.total
    ahead = max(1, concurrency) if total is not None else 1
    pending: deque[tuple[int, asyncio.Future[_Page]]] = deque()
    next_start = step

    def ask_ahead() -> None:
        nonlocal next_start
        while len(pending) < ahead and (total is None or next_start < total or not pending):
            pending.append((next_start, asyncio.ensure_future(page_at(next_start))))
            next_start += step

    try:
        while pages[-1].more:
            ask_ahead()
            start, answer = pending.popleft()
            page = await answer
            pages.append(page)
            on_page(page)
            if page.more and len(page.devices) != step:
                await _cancelled([answer for _, answer in pending])
                pending.clear()
                next_start = start + len(page.devices)
    finally:
        await _cancelled([answer for _, answer in pending])
    return pages


async def _cancelled(answers: Sequence[asyncio.Future[Any]]) -> None:
    for answer in answers:
        answer.cancel()
    await asyncio.gather(*answers, return_exceptions=True)


async def _concurrently(calls: Sequence[Callable[[], Awaitable[_T]]], limit: int) -> list[_T]:
    """The results in `calls` order, at most `limit` running at once. The first failure
    cancels the rest and is raised as itself (a TaskGroup would wrap it in a group)."""
    gate = asyncio.Semaphore(max(1, limit))

    async def gated(call: Callable[[], Awaitable[_T]]) -> _T:
        async with gate:
            return await call()

    tasks = [asyncio.ensure_future(gated(call)) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        await _cancelled(tasks)
        raise


class CountingReader:
    """Counts every request, retries included, for the `requests` that export, sync and
    name lookups report."""

    def __init__(self, client: GraphQLReader) -> None:
        self._client = client
        self.requests = 0

    async def execute(self, document: str, variables: Mapping[str, object]) -> GraphQLResponse:
        self.requests += 1
        return await self._client.execute(document, variables)


def _login(response: GraphQLResponse) -> dict[str, object]:
    if response.errors:
        messages = "; ".join(error.message for error in response.errors)
        raise RequestRejectedError(f"account query failed: {messages}", status=200)
    login = None if response.data is None else response.data.get("login")
    if not isinstance(login, dict):
        raise BadResponseError("account query: the answer has no login", status=200)
    return login


def _email(login: Mapping[str, object]) -> str:
    email = login.get("email")
    if not isinstance(email, str):
        raise BadResponseError("account query: the login has no email", status=200)
    return email.casefold()
