"""How fast `batch-share run` applies a sheet, against the naive one-request-per-row script.

Sheets: 5,000 rows (500 devices x 10 emails) and 50,000 rows (5,000 x 10), all ADD on
whole devices. Device i goes to team i mod 50 (10 emails each), so `--cross-device` has
devices to merge. Every variant runs as a fresh process (start-up included) against a
fresh emulator process (5,000 devices, 20 ms latency per request); afterwards every
device of the fleet is read back through the API and must hold exactly the sheet's
emails (state OK/FAIL).

Variants: the naive script (`bench/naive_sequential.py`), `run --per-request 1`, the
default packing, and `--cross-device`; all with `--concurrency 8 --rate 1000`. The
lower bound is `start-up + ceil(requests / concurrency) x latency`. Then a pace check:
an emulator limited to 20 requests/s, a client allowed 1,000, unpacked requests.
Targets: 5,000 rows >= 100x faster than naive; 50,000 rows in under 10 s; under the rate
limit < 5% of requests answered 429 and throughput within 20% of the limit.

    .venv/bin/python bench/run_speed.py [--quick] [--skip-naive] [--naive-rows N]
                                        [--repeat N] [--tune] [--pace-only]

`--quick`: the 5,000-row sheet only. `--naive-rows N`: the naive script sends only the
first N rows and its time is extrapolated linearly. `--repeat N`: run each batch-share
variant N times and show the run with the median wall time. `--tune`: also time
`--per-request` 1, 5, 10, 20, 50, 100 on every sheet. `--pace-only`: only the pace check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from batch_share.emulator.fleet import device_id
from batch_share.errors import RateLimitedError
from batch_share.send.auth import load_credentials
from batch_share.send.client import ShareClient
from batch_share.send.verify import read_access

BENCH = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "batch_share"]
FLEET_DEVICES = 5_000
LATENCY = 0.02
CONCURRENCY = 8
RATE = 1_000
TEAMS = 50
EMAILS_PER_DEVICE = 10
PACE_LIMIT = 20
STARTUP_SAMPLES = 5
TUNE_PER_REQUEST = (1, 5, 10, 20, 50, 100)
NAIVE = "naive, 1 request/row"

Intent = dict[str, frozenset[str]]
"""device id -> the emails that must have access to it afterwards."""


@dataclass(frozen=True, slots=True)
class Sheet:
    path: Path
    rows: int
    intent: Intent


@dataclass(frozen=True, slots=True)
class Emulator:
    url: str
    pid: int
    env: dict[str, str]
    """This process's environment plus the emulator's throwaway key pair."""


@dataclass(frozen=True, slots=True)
class Timing:
    """One timed child process against a fresh emulator, and what the emulator holds after."""

    wall: float
    client_cpu: float
    emulator_cpu: float | None
    stdout: str
    state_ok: bool


@dataclass(frozen=True, slots=True)
class Result:
    rows: int
    variant: str
    wall: float
    requests: int
    fields: int
    concurrency: int
    client_cpu: float | None
    emulator_cpu: float | None
    state_ok: bool
    summary: dict[str, Any]
    extrapolated_from: int | None = None

    def bound(self, startup: float) -> float:
        return startup + math.ceil(self.requests / self.concurrency) * LATENCY


# -- sheets -------------------------------------------------------------------------------


def team_emails(device_number: int) -> list[str]:
    team = device_number % TEAMS
    return [f"user{team * EMAILS_PER_DEVICE + e}@example.com" for e in range(EMAILS_PER_DEVICE)]


def make_sheet(directory: Path, devices: int) -> Sheet:
    path = directory / f"share-{devices * EMAILS_PER_DEVICE}.csv"
    intent: Intent = {}
    lines = ["device_id,service_id,email,action"]
    for number in range(1, devices + 1):
        emails = team_emails(number)
        intent[device_id(number)] = frozenset(emails)
        lines.extend(f"{device_id(number)},,{email},ADD" for email in emails)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Sheet(path, devices * EMAILS_PER_DEVICE, intent)


def first_rows_intent(rows: int) -> Intent:
    """The intent of a sheet's first `rows` rows (what a naive sample applies)."""
    intent: Intent = {}
    for number in range(1, math.ceil(rows / EMAILS_PER_DEVICE) + 1):
        taken = min(EMAILS_PER_DEVICE, rows - (number - 1) * EMAILS_PER_DEVICE)
        intent[device_id(number)] = frozenset(team_emails(number)[:taken])
    return intent


# -- processes ----------------------------------------------------------------------------


@contextlib.contextmanager
def emulator(*flags: str) -> Iterator[Emulator]:
    """A fresh emulator in its own process, so its CPU is not charged to the timed client.

    `--port 0` lets the emulator bind a free port itself (no race between picking a port
    and binding it); its first three stdout lines name the URL and the key pair.
    """
    command = [*CLI, "emulator", "--port", "0", "--devices", str(FLEET_DEVICES)]
    command += ["--latency", str(LATENCY), *flags]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as child:
        try:
            yield _handshake(child)
        finally:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


def _handshake(child: subprocess.Popen[str]) -> Emulator:
    assert child.stdout is not None
    lines = [child.stdout.readline().strip() for _ in range(3)]
    if not lines[2].startswith("R3_SECRET_ACCESS_KEY="):
        raise RuntimeError(f"the emulator did not start (exit {child.poll()}): {lines[0]!r}")
    env = dict(os.environ)
    env.pop("R3_PROFILE", None)
    for line in lines[1:]:
        name, _, value = line.partition("=")
        env[name] = value
    return Emulator(url=lines[0].rsplit(" ", 1)[-1], pid=child.pid, env=env)


def timed(command: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and stdout of a child process; a failure shows its stderr."""
    before = _finished_children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command[2:4])} exited {done.returncode}: {done.stderr}")
    return wall, _finished_children_cpu() - before, done.stdout


def _finished_children_cpu() -> float:
    """CPU seconds of every child reaped so far; a running emulator is not among them."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float | None:
    """CPU seconds a running process has used so far (Linux /proc), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # The command name may hold spaces; after its closing ")" utime and stime are the
    # 12th and 13th fields.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_wall(command: Sequence[str]) -> float:
    return statistics.median(timed(command)[0] for _ in range(STARTUP_SAMPLES))


def against_fresh_emulator(
    command_for: Callable[[Emulator], list[str]], intent: Intent, emulator_flags: Sequence[str]
) -> Timing:
    with emulator(*emulator_flags) as server:
        cpu_before = process_cpu(server.pid)
        wall, client_cpu, stdout = timed(command_for(server), server.env)
        cpu_after = process_cpu(server.pid)
        state_ok = state_matches(server, intent)
    emulator_cpu = None
    if cpu_before is not None and cpu_after is not None:
        emulator_cpu = cpu_after - cpu_before
    return Timing(wall, client_cpu, emulator_cpu, stdout, state_ok)


# -- checking the result ------------------------------------------------------------------


def state_matches(server: Emulator, intent: Intent) -> bool:
    """Read every device of the fleet back: each must hold exactly its intended emails."""
    return asyncio.run(_state_matches(server, intent))


class PatientReader:
    """Reads access lists, waiting out 429s: after the pace check the server's rate limit
    still holds, and reading the fleet back is a check, not part of what is measured."""

    def __init__(self, client: ShareClient) -> None:
        self._client = client

    async def device_access(self, device_ids: Sequence[str]) -> list[dict[str, object]]:
        while True:
            try:
                return await self._client.device_access(device_ids)
            except RateLimitedError as error:
                await asyncio.sleep(error.retry_after or 1.0)


async def _state_matches(server: Emulator, intent: Intent) -> bool:
    fleet = [device_id(number) for number in range(1, FLEET_DEVICES + 1)]
    async with ShareClient(server.url, load_credentials(environ=server.env)) as client:
        seen = await read_access(PatientReader(client), fleet)
    return all(
        device in seen and set(seen[device].device) == intent.get(device, frozenset())
        for device in fleet
    )


# -- the variants -------------------------------------------------------------------------


def run_batch_share(
    sheet: Sheet,
    variant: str,
    flags: Sequence[str],
    work: Path,
    *,
    emulator_flags: Sequence[str] = (),
) -> Result:
    state = Path(tempfile.mkdtemp(dir=work, prefix="state-"))

    def command_for(server: Emulator) -> list[str]:
        report = state / "report.csv"
        return [*CLI, "run", str(sheet.path), "--api-url", server.url, "--json", "--quiet",
                "--state-dir", str(state), "--report", str(report), *flags]  # fmt: skip

    timing = against_fresh_emulator(command_for, sheet.intent, emulator_flags)
    summary = json.loads(timing.stdout.strip().splitlines()[-1])
    return Result(
        rows=sheet.rows,
        variant=variant,
        wall=timing.wall,
        requests=summary["http_requests"],
        fields=summary["mutations"],
        concurrency=int(flags[list(flags).index("--concurrency") + 1]),
        client_cpu=timing.client_cpu,
        emulator_cpu=timing.emulator_cpu,
        state_ok=timing.state_ok and summary["counts"]["succeeded"] == sheet.rows,
        summary=summary,
    )


def median_run(repeat: int, run: Callable[[], Result]) -> Result:
    """The run with the median wall time of `repeat`; its state is OK only if all were."""
    runs = sorted((run() for _ in range(repeat)), key=lambda result: result.wall)
    return replace(runs[len(runs) // 2], state_ok=all(result.state_ok for result in runs))


def run_naive(sheet: Sheet, rows: int) -> Result:
    """The naive script on the sheet's first `rows` rows, as measured (not extrapolated)."""

    def command_for(server: Emulator) -> list[str]:
        script = str(BENCH / "naive_sequential.py")
        return [
            sys.executable,
            script,
            str(sheet.path),
            "--api-url",
            server.url,
            "--limit",
            str(rows),
        ]

    timing = against_fresh_emulator(command_for, first_rows_intent(rows), ())
    summary = json.loads(timing.stdout)
    return Result(
        rows=rows,
        variant=NAIVE,
        wall=timing.wall,
        requests=rows,
        fields=rows,
        concurrency=1,
        client_cpu=timing.client_cpu,
        emulator_cpu=timing.emulator_cpu,
        state_ok=timing.state_ok and summary["confirmed"] == rows,
        summary=summary,
    )


def naive_for(measured: Result, rows: int) -> Result:
    """The naive time for `rows` rows: its measured wall time plus the time per row it
    measured for every row it did not send."""
    sent = measured.rows
    if sent == rows:
        return measured
    per_row = measured.summary["send_seconds"] / sent
    return replace(
        measured,
        rows=rows,
        wall=measured.wall + (rows - sent) * per_row,
        requests=rows,
        fields=rows,
        client_cpu=None,
        emulator_cpu=None,
        extrapolated_from=sent,
    )


def standard_flags(*extra: str) -> list[str]:
    return ["--concurrency", str(CONCURRENCY), "--rate", str(RATE), *extra]


def bench_sheet(sheet: Sheet, work: Path, naive: Result | None, repeat: int) -> list[Result]:
    variants = [
        ("--per-request 1", standard_flags("--per-request", "1")),
        ("default", standard_flags()),
        ("--cross-device", standard_flags("--cross-device")),
    ]
    results = [naive] if naive is not None else []
    for name, flags in variants:
        results.append(median_run(repeat, partial(run_batch_share, sheet, name, flags, work)))
    return results


# -- printing -----------------------------------------------------------------------------

HEADER = (
    f"{'rows':>7} {'variant':<21} {'wall s':>8} {'requests':>8} {'fields':>7} "
    f"{'speedup':>8} {'bound s':>8} {'/bound':>7} {'cpu cli':>7} {'cpu emu':>7} {'state':>5}"
)


def _seconds(value: float | None) -> str:
    return f"{value:7.2f}" if value is not None else f"{'-':>7}"


def table_line(result: Result, naive: Result | None, startup: float) -> str:
    speedup = f"{naive.wall / result.wall:7.0f}x" if naive is not None else f"{'-':>8}"
    bound = result.bound(startup)
    wall = f"{result.wall:8.2f}" if result.extrapolated_from is None else f"~{result.wall:7.0f}"
    return (
        f"{result.rows:>7,} {result.variant:<21} {wall} {result.requests:>8,} "
        f"{result.fields:>7,} {speedup} {bound:8.2f} {result.wall / bound:6.1f}x "
        f"{_seconds(result.client_cpu)} {_seconds(result.emulator_cpu)} "
        f"{'OK' if result.state_ok else 'FAIL':>5}"
    )


def print_table(results: list[Result], startup: float) -> None:
    print(HEADER)
    for result in results:
        naive = next((r for r in results if r.rows == result.rows and r.variant == NAIVE), None)
        print(table_line(result, None if result is naive else naive, startup))
    print(
        "  fields = share fields sent (planned mutations); bound = start-up + "
        "ceil(requests / concurrency) x latency (concurrency 1 for naive); cpu = CPU seconds "
        "of the client process and of the emulator during the run"
    )
    for result in results:
        if result.extrapolated_from is not None:
            print(
                f"  naive at {result.rows:,} rows: extrapolated linearly from the "
                f"{result.extrapolated_from:,} rows it actually sent"
            )


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_targets(results: list[Result]) -> None:
    by_key = {(r.rows, r.variant): r for r in results}
    naive = by_key.get((5_000, NAIVE))
    for variant in ("default", "--cross-device"):
        small = by_key.get((5_000, variant))
        if naive is not None and small is not None:
            speedup = naive.wall / small.wall
            print(
                f"target 5,000 rows >= 100x naive, {variant}: {speedup:.0f}x {met(speedup >= 100)}"
            )
        large = by_key.get((50_000, variant))
        if large is not None:
            print(
                f"target 50,000 rows < 10 s, {variant}: {large.wall:.2f} s {met(large.wall < 10)}"
            )


def pace_check(sheet: Sheet, work: Path) -> None:
    flags = standard_flags("--per-request", "1")
    limit = ("--rate-limit", str(PACE_LIMIT))
    result = run_batch_share(sheet, "pace", flags, work, emulator_flags=limit)
    summary = result.summary
    throttled = summary["rate_limited"] / result.requests
    # `elapsed` is the run's own clock (sheet loading onward), so interpreter start-up does
    # not dilute the rate the server saw.
    throughput = (result.requests - summary["rate_limited"]) / summary["elapsed"]
    within = abs(throughput - PACE_LIMIT) <= 0.2 * PACE_LIMIT
    print(
        f"pace check: emulator --rate-limit {PACE_LIMIT}/s, client --rate {RATE} "
        f"--per-request 1, {sheet.rows:,} rows: {result.requests} requests in "
        f"{summary['elapsed']:.1f} s (wall {result.wall:.1f} s), state "
        f"{'OK' if result.state_ok else 'FAIL'}"
    )
    print(
        f"  answered 429: {summary['rate_limited']} of {result.requests} = {throttled:.1%} "
        f"(target < 5%: {met(throttled < 0.05)}); retries {summary['retries']}"
    )
    print(
        f"  throughput {throughput:.1f} confirmed requests/s vs limit {PACE_LIMIT}/s "
        f"(target within 20%: {met(within)})"
    )


def tune(sheets: list[Sheet], work: Path, startup: float, repeat: int) -> None:
    print(f"\n--per-request sweep (--concurrency {CONCURRENCY}, median of {repeat}):")
    print(
        f"{'rows':>7} {'per-req':>7} {'wall s':>8} {'requests':>8} {'/bound':>7} "
        f"{'cpu cli':>7} {'cpu emu':>7} {'state':>5}"
    )
    for sheet in sheets:
        for per_request in TUNE_PER_REQUEST:
            flags = standard_flags("--per-request", str(per_request))
            run = partial(run_batch_share, sheet, str(per_request), flags, work)
            result = median_run(repeat, run)
            print(
                f"{sheet.rows:>7,} {per_request:>7} {result.wall:8.2f} {result.requests:>8,} "
                f"{result.wall / result.bound(startup):6.1f}x {_seconds(result.client_cpu)} "
                f"{_seconds(result.emulator_cpu)} {'OK' if result.state_ok else 'FAIL':>5}"
            )


# -- main ---------------------------------------------------------------------------------


def measure_startup(work: Path) -> float:
    """Median start-up of `--help` and of `plan` on a 1-row sheet; returns the latter."""
    one_row = work / "one-row.csv"
    one_row.write_text(f"device_id,email\n{device_id(1)},someone@example.com\n", encoding="utf-8")
    help_wall = median_wall([*CLI, "--help"])
    plan_wall = median_wall([*CLI, "plan", str(one_row), "--quiet"])
    print(
        f"start-up (median of {STARTUP_SAMPLES}): batch-share --help {help_wall:.2f} s, "
        f"plan of a 1-row sheet {plan_wall:.2f} s (the start-up in the bound)"
    )
    return plan_wall


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 5,000-row sheet only")
    parser.add_argument("--skip-naive", action="store_true", help="do not run the naive script")
    parser.add_argument(
        "--naive-rows", type=int, default=5_000, help="rows the naive script sends (<= 5,000)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant; median shown")
    parser.add_argument("--tune", action="store_true", help="also sweep --per-request")
    parser.add_argument(
        "--pace-only", action="store_true", help="run only the pace check (5,000 rows)"
    )
    args = parser.parse_args()
    if not 1 <= args.naive_rows <= 5_000:
        parser.error("--naive-rows must be between 1 and 5000")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    print(
        f"run speed: emulator and client are separate processes sharing this machine's "
        f"{os.cpu_count()} cores; emulator latency {LATENCY * 1000:.0f} ms/request, "
        f"{FLEET_DEVICES:,} devices; --concurrency {CONCURRENCY} --rate {RATE}"
    )
    with tempfile.TemporaryDirectory(prefix="batch-share-bench-") as temp:
        work = Path(temp)
        if args.pace_only:
            pace_check(make_sheet(work, 500), work)
            return
        startup = measure_startup(work)
        device_counts = [500] if args.quick else [500, 5_000]
        sheets = [make_sheet(work, devices) for devices in device_counts]
        measured = None if args.skip_naive else run_naive(sheets[0], args.naive_rows)
        results: list[Result] = []
        for sheet in sheets:
            naive = naive_for(measured, sheet.rows) if measured is not None else None
            results += bench_sheet(sheet, work, naive, args.repeat)
        print()
        print_table(results, startup)
        print_targets(results)
        print()
        pace_check(sheets[0], work)
        if args.tune:
            tune(sheets, work, startup, args.repeat)


if __name__ == "__main__":
    main()
