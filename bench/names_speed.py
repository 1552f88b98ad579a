"""Resolving device names: list the whole account, or ask for each distinct name?

An emulator in its own process holds 10,000 devices (20 ms latency). Their names are the
fleet's: `device-NNNN`, a few friendly names, and every 25th device a "Gateway" (so the
distinct names number 9,601, one of them ambiguous). A roster that names N of them is
resolved two ways, and both are timed and their requests counted:

(a) what `run` does now: `list_devices`, pages of 1,000 through `login { devices }`,
    whatever N is (the whole account, four pages at a time);
(b) asking per distinct name: aliased `dK: devices(name: $nK, size: 10) { items { id name
    owner { email } } hasMore }` fields, 20 or 100 names per request, 8 requests at a time.
    It exists only here, to measure it; `devices(name:)` matches substrings, so exact
    matches are picked out of each answer, as the resolver would.

Printed: requests and seconds for each, at N = 10, 100, 1,000, 2,000 and every distinct
name, and which is faster and which needs fewer requests. The emulator scans its 10,000
names for every `devices(name:)` field, so (b)'s server time grows with N here; a real API
may index names and do better.

    .venv/bin/python bench/names_speed.py [--devices N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import run_speed
from run_speed import emulator, process_cpu

from batch_share.emulator.fleet import device_name
from batch_share.send.account import list_devices
from batch_share.send.auth import load_credentials
from batch_share.send.client import GraphQLResponse, ShareClient

DEVICES = 10_000
LATENCY = 0.02
CONCURRENCY = 8
PER_REQUEST = (20, 100)
NAMED = (10, 100, 1_000, 2_000, 10_000)  # 2,000 brackets where the two cross


@dataclass(frozen=True, slots=True)
class Measured:
    requests: int
    seconds: float
    emulator_cpu: float | None
    resolved: int  # names with at least one exact match


class Counting:
    """A client that counts the requests it sends."""

    def __init__(self, client: ShareClient) -> None:
        self._client = client
        self.requests = 0

    async def execute(self, document: str, variables: Mapping[str, object]) -> GraphQLResponse:
        self.requests += 1
        return await self._client.execute(document, variables)


def names_document(count: int) -> str:
    declared = ", ".join(f"$n{k}: String!" for k in range(count))
    fields = " ".join(
        f"d{k}: devices(name: $n{k}, size: 10) {{ items {{ id name owner {{ email }} }} hasMore }}"
        for k in range(count)
    )
    return f"query Names({declared}) {{ login {{ {fields} }} }}"


async def by_name(client: Counting, names: Sequence[str], per_request: int) -> dict[str, list[str]]:
    """Each name's exact matches (device IDs), `per_request` names per request."""
    gate = asyncio.Semaphore(CONCURRENCY)
    found: dict[str, list[str]] = {}

    async def ask(chunk: Sequence[str]) -> None:
        variables = {f"n{k}": name for k, name in enumerate(chunk)}
        async with gate:
            response = await client.execute(names_document(len(chunk)), variables)
        login = (response.data or {}).get("login")
        if response.errors or not isinstance(login, dict):
            raise RuntimeError(f"name query failed: {response.errors}")
        for k, name in enumerate(chunk):
            items = login[f"d{k}"]["items"]
            found[name] = [i["id"] for i in items if i["name"].casefold() == name.casefold()]

    chunks = [names[i : i + per_request] for i in range(0, len(names), per_request)]
    await asyncio.gather(*(ask(chunk) for chunk in chunks))
    return found


async def timed_listing(server: run_speed.Emulator) -> Measured:
    async with ShareClient(server.url, load_credentials(environ=server.env)) as client:
        counting = Counting(client)
        cpu = process_cpu(server.pid)
        started = time.perf_counter()
        devices = await list_devices(counting)
        seconds = time.perf_counter() - started
    return Measured(counting.requests, seconds, _spent(server, cpu), len(devices))


async def timed_by_name(
    server: run_speed.Emulator, names: Sequence[str], per_request: int
) -> Measured:
    async with ShareClient(server.url, load_credentials(environ=server.env)) as client:
        counting = Counting(client)
        cpu = process_cpu(server.pid)
        started = time.perf_counter()
        found = await by_name(counting, names, per_request)
        seconds = time.perf_counter() - started
    resolved = sum(1 for ids in found.values() if ids)
    return Measured(counting.requests, seconds, _spent(server, cpu), resolved)


def _spent(server: run_speed.Emulator, before: float | None) -> float | None:
    after = process_cpu(server.pid)
    return None if before is None or after is None else after - before


def distinct_names(devices: int) -> list[str]:
    return list(dict.fromkeys(device_name(i) for i in range(1, devices + 1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=DEVICES)
    args = parser.parse_args()
    names = distinct_names(args.devices)
    counts = sorted({min(n, len(names)) for n in NAMED if n <= args.devices} | {len(names)})
    run_speed.LATENCY = LATENCY
    run_speed.FLEET_DEVICES = args.devices
    with emulator() as server:
        listing = asyncio.run(timed_listing(server))
        rows = [
            (count, [asyncio.run(timed_by_name(server, names[:count], k)) for k in PER_REQUEST])
            for count in counts
        ]
    if listing.resolved < args.devices:
        print(f"the listing found {listing.resolved:,} devices of {args.devices:,}")
        return 1
    print(
        f"name resolution in a {args.devices:,}-device account ({len(names):,} distinct "
        f"names), {LATENCY * 1000:.0f} ms latency, concurrency {CONCURRENCY}"
    )
    header = f"{'names':>7}  {'(a) list pages of 1,000':>24}"
    for k in PER_REQUEST:
        header += f"  {f'(b) by name, {k}/request':>26}"
    print(header + f"  {'faster':>7}  {'fewer requests':>14}")
    for count, measured in rows:
        line = f"{count:>7,}  {_cell(listing):>24}"
        line += "".join(f"  {_cell(m):>26}" for m in measured)
        fastest = min(measured, key=lambda m: m.seconds)
        fewest = min(measured, key=lambda m: m.requests)
        faster = "(b)" if fastest.seconds < listing.seconds else "(a)"
        fewer = "(b)" if fewest.requests < listing.requests else "(a)"
        print(line + f"  {faster:>7}  {fewer:>14}")
        if any(m.resolved != count for m in measured):
            print(f"  not every name was found: {[m.resolved for m in measured]} of {count}")
            return 1
    print(
        "  cells: requests / wall seconds (emulator CPU seconds); (a) costs the same for any "
        "number of names: it reads the whole account"
    )
    return 0


def _cell(measured: Measured) -> str:
    cpu = "?" if measured.emulator_cpu is None else f"{measured.emulator_cpu:.2f}"
    return f"{measured.requests:,} req / {measured.seconds:.2f} s ({cpu})"


if __name__ == "__main__":
    sys.exit(main())
