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
from batch_share.models import DeviceAccess

if TYPE_CHECKING:
    from batch_share.send.client import GraphQLResponse

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
