"""Reading the account with read-only queries: which devices the key can see, what they and
their services are called, and who can reach them.

Three readers, each paying for no more than it needs:

- `list_devices` pages `login { devices }` for IDs and names only (name resolution), 1,000
  devices per request, the most the API gives in one page.
- `read_access` asks `login { device(id: [...]) }` for the access lists of devices already
  known by ID (`--verify`, sync), `READ_BATCH` IDs per request.
- `read_account` pages `login { devices }` with the access lists in the same selection, so a
  whole-account export costs one request per 1,000 devices instead of one per 100, and asks
  for `login { email }` in that same request instead of a separate `whoami`. With a list of
  IDs (`export --devices`) it falls back to `device(id:)` batches, as `read_access` does.

Everything goes through `ShareClient.execute`, one POST per call; a throttled or failing
read is retried here, since a read has no side effect to double.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from batch_share.errors import (
    BadResponseError,
    RateLimitedError,
    RequestRejectedError,
    RetryableError,
)
from batch_share.send.client import GraphQLResponse, ShareClient

READ_BATCH = 100  # device ids per `login { device(id: [...]) }` query
PAGE_SIZE = 1000  # the API's largest `devices(size:)`
READ_RETRIES = 4
_BACKOFF_FIRST = 0.5
_BACKOFF_MOST = 30.0

DEVICES_QUERY = """\
query Devices($from: Int, $size: Int) {
  login {
    devices(from: $from, size: $size) {
      items { id name owner { email } services { id name } }
      hasMore
      total
    }
  }
}"""

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


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    name: str
    owner: str  # owner email, case-folded ("" if the API gives none)
    services: tuple[ServiceInfo, ...]


@dataclass(frozen=True, slots=True)
class DeviceAccess:
    """Who can reach a device (email key -> scripting) and each of its services."""

    device: dict[str, bool] = field(default_factory=dict)
    services: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountAccess:
    """What the key's account looks like now: every device it can see, in the API's order,
    with who can reach each. `requests` counts the HTTP requests the reading took."""

    email: str  # the key owner's, case-folded
    devices: tuple[DeviceInfo, ...]
    access: Mapping[str, DeviceAccess]
    requests: int


class AccessReader(Protocol):
    async def device_access(self, device_ids: Sequence[str]) -> list[dict[str, object]]: ...


ReadProgress = Callable[[int, int | None], None]
"""Called after each request with the devices read so far and the total, once known."""


async def list_devices(client: ShareClient, *, page_size: int = PAGE_SIZE) -> list[DeviceInfo]:
    """Every device the key can see (its own and those shared with it), with its services'
    names, ordered as the API pages them (by name)."""
    devices: list[DeviceInfo] = []
    reader = _Counter(client, asyncio.sleep)
    async for login in _pages(reader, DEVICES_QUERY, page_size, lambda _done, _total: None):
        devices.extend(_device_info(item) for item in _items(login))
    return devices


async def read_access(reader: AccessReader, device_ids: Iterable[str]) -> dict[str, DeviceAccess]:
    wanted = sorted(set(device_ids))
    access: dict[str, DeviceAccess] = {}
    for start in range(0, len(wanted), READ_BATCH):
        for device in await reader.device_access(wanted[start : start + READ_BATCH]):
            access[str(device.get("id"))] = _parse_access(device)
    return access


async def read_account(
    client: ShareClient,
    *,
    device_ids: Iterable[str] | None = None,
    page_size: int = PAGE_SIZE,
    on_progress: ReadProgress | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AccountAccess:
    """The devices the key can see and who can reach them: all of them, or only those among
    `device_ids` (unknown or invisible IDs are simply absent)."""
    counter = _Counter(client, sleep)
    progress = on_progress or (lambda _done, _total: None)
    devices: list[DeviceInfo] = []
    access: dict[str, DeviceAccess] = {}
    email = ""

    def take(items: list[dict[str, object]]) -> None:
        for item in items:
            info = _device_info(item)
            devices.append(info)
            access[info.id] = _parse_access(item)

    if device_ids is None:
        async for login in _pages(counter, ACCOUNT_PAGE_QUERY, page_size, progress):
            email = _email(login)
            take(_items(login))
    else:
        wanted = sorted(set(device_ids))
        progress(0, len(wanted))
        for start in range(0, len(wanted), READ_BATCH):
            batch = wanted[start : start + READ_BATCH]
            login = _login(await counter.execute(ACCOUNT_IDS_QUERY, {"ids": batch}))
            email = _email(login)
            take(_objects(login.get("device") or [], "device"))
            progress(start + len(batch), len(wanted))
        if not wanted:  # still say whose key this is
            email = _email(_login(await counter.execute(ACCOUNT_IDS_QUERY, {"ids": []})))
    return AccountAccess(email, tuple(devices), access, counter.requests)


# --- paging and retrying ----------------------------------------------------------------


class _Executor(Protocol):
    async def execute(self, document: str, variables: Mapping[str, object]) -> GraphQLResponse: ...


class _Counter:
    """Counts requests and retries a read the server asked to be patient with."""

    def __init__(self, client: _Executor, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._client = client
        self._sleep = sleep
        self.requests = 0

    async def execute(self, document: str, variables: Mapping[str, object]) -> GraphQLResponse:
        for attempt in range(READ_RETRIES + 1):
            self.requests += 1
            try:
                return await self._client.execute(document, variables)
            except RetryableError as error:
                if attempt == READ_RETRIES:
                    raise
                wait = error.retry_after if isinstance(error, RateLimitedError) else None
                await self._sleep(wait or min(_BACKOFF_MOST, _BACKOFF_FIRST * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover


async def _pages(
    client: _Executor, document: str, page_size: int, progress: ReadProgress
) -> AsyncIterator[dict[str, object]]:
    """`login` objects of successive `devices(from:, size:)` pages until `hasMore` is false.

    Stops on an empty page as well, so a server that keeps saying `hasMore` cannot keep a
    reader going forever.
    """
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}, got {page_size}")
    start = 0
    while True:
        login = _login(await client.execute(document, {"from": start, "size": page_size}))
        page = login.get("devices")
        if not isinstance(page, dict):
            raise BadResponseError("devices query: the answer has no device page", status=200)
        items = _items(login)
        start += len(items)
        total = page.get("total")
        progress(start, total if isinstance(total, int) else None)
        yield login
        if not items or page.get("hasMore") is not True:
            return


# --- parsing ----------------------------------------------------------------------------


def _login(response: GraphQLResponse) -> dict[str, object]:
    if response.errors:
        messages = "; ".join(error.message for error in response.errors)
        raise RequestRejectedError(f"account query failed: {messages}", status=200)
    login = None if response.data is None else response.data.get("login")
    if not isinstance(login, dict):
        raise BadResponseError("account query: the answer has no login", status=200)
    return login


def _objects(value: object, what: str) -> list[dict[str, object]]:
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise BadResponseError(f"account query: {what} is not a list of objects", status=200)
    return value


def _items(login: Mapping[str, object]) -> list[dict[str, object]]:
    page = login.get("devices")
    return _objects(page.get("items") if isinstance(page, dict) else None, "devices.items")


def _email(login: Mapping[str, object]) -> str:
    email = login.get("email")
    if not isinstance(email, str):
        raise BadResponseError("account query: the login has no email", status=200)
    return email.casefold()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _device_info(item: Mapping[str, object]) -> DeviceInfo:
    owner = item.get("owner")
    services = item.get("services")
    return DeviceInfo(
        id=_text(item.get("id")),
        name=_text(item.get("name")),
        owner=_text(owner.get("email")).casefold() if isinstance(owner, dict) else "",
        services=tuple(
            ServiceInfo(_text(service.get("id")), _text(service.get("name")))
            for service in (services if isinstance(services, list) else [])
            if isinstance(service, dict)
        ),
    )


def _emails(entries: object) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for entry in entries if isinstance(entries, list) else []:
        user = entry.get("user") if isinstance(entry, dict) else None
        email = user.get("email") if isinstance(user, dict) else None
        if isinstance(email, str):
            found[email.casefold()] = bool(entry.get("scripting"))
    return found


def _parse_access(device: Mapping[str, object]) -> DeviceAccess:
    services = device.get("services")
    return DeviceAccess(
        device=_emails(device.get("access")),
        services={
            str(service.get("id")): frozenset(_emails(service.get("access")))
            for service in (services if isinstance(services, list) else [])
            if isinstance(service, dict)
        },
    )
