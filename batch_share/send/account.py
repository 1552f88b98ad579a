"""Reading the account: its devices (for names and `--scope account`) and who has access to
them today (for `sync`, `export` and `--verify`). Read-only queries, batched.

Reads are retried like shares (connection errors, timeouts, 429 with its Retry-After, 5xx):
a nightly sync that gives up on one flaky read would do nothing at all that night.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
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
    client: GraphQLReader, *, page_size: int = PAGE_SIZE, retries: int = 4
) -> list[DeviceInfo]:
    """Every device the key can see, owned or shared with it, one page at a time."""
    devices: list[DeviceInfo] = []
    start = 0
    while True:
        items, has_more = await _retrying(retries, _devices_page, client, start, page_size)
        devices.extend(items)
        if not has_more or not items:
            return devices
        start += len(items)


async def _devices_page(
    client: GraphQLReader, start: int, size: int
) -> tuple[list[DeviceInfo], bool]:
    response = await client.execute(DEVICES_PAGE_QUERY, {"from": start, "size": size})
    if response.errors:
        messages = "; ".join(error.message for error in response.errors)
        raise RequestRejectedError(f"device list query failed: {messages}", status=200)
    data = response.data
    login = data.get("login") if isinstance(data, dict) else None
    page = login.get("devices") if isinstance(login, dict) else None
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise BadResponseError("device list query: the answer has no devices page")
    return [_device_info(item) for item in page["items"]], bool(page.get("hasMore"))


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
    retries: int = 4,
    on_progress: ReadProgress | None = None,
) -> AccountAccess:
    """The devices the key can see and who can reach them: all of them, or only those among
    `device_ids` (unknown or invisible IDs are simply absent)."""
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}, got {page_size}")
    counted = _CountingReader(client)
    progress = on_progress or (lambda _done, _total: None)
    devices: list[DeviceInfo] = []
    access: dict[str, DeviceAccess] = {}
    email = ""

    def take(items: list[Any]) -> None:
        for item in items:
            info = _device_info(item)
            devices.append(info)
            access[info.id] = parse_access(item)

    if device_ids is None:
        start = 0
        while True:
            variables: dict[str, object] = {"from": start, "size": page_size}
            login = _login(await _retrying(retries, counted.execute, ACCOUNT_PAGE_QUERY, variables))
            email = _email(login)
            page = login.get("devices")
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(page, dict) or not isinstance(items, list):
                raise BadResponseError("account query: the answer has no devices page")
            take(items)
            start += len(items)
            total = page.get("total")
            progress(start, total if isinstance(total, int) else None)
            # An empty page ends it too: a server that keeps saying hasMore must not loop.
            if not items or page.get("hasMore") is not True:
                break
    else:
        wanted = sorted(set(device_ids))
        progress(0, len(wanted))
        # An empty batch still says whose key this is, and that the key works.
        for start in range(0, max(len(wanted), 1), READ_BATCH):
            batch = wanted[start : start + READ_BATCH]
            variables = {"ids": batch}
            login = _login(await _retrying(retries, counted.execute, ACCOUNT_IDS_QUERY, variables))
            email = _email(login)
            found = login.get("device") or []
            if not isinstance(found, list):
                raise BadResponseError("account query: the device list is not a list")
            take(found)
            progress(start + len(batch), len(wanted))
    return AccountAccess(email, tuple(devices), access, counted.requests)


class _CountingReader:
    """Counts every request, retries included, for the export's `requests`."""

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
