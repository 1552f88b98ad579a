"""How fast `batch-share export` reads a large account and writes it.

An emulator in its own process holds 10,000 devices (3 services each) at 20 ms latency.
Before timing, every device gets 5 shares sent through the API with `batch-share run`:
4 whole-device shares (one team of 4 per device, i mod 50) and 1 service-only share on
its first service. Then `export` runs as a fresh process, once per format, and is timed:
wall time, HTTP requests (from its `--json` summary), the peak RSS of the export process
alone, the rows it wrote (exactly 50,000), and the emulator's CPU seconds meanwhile: the
emulator answers one request at a time, so its GraphQL execution is part of the wall time.

Targets: at most one request per 100 devices read, and under 10 s.

    .venv/bin/python bench/export_speed.py [--devices N] [--formats csv,xlsx,jsonl]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from run_speed import CLI, emulator, process_cpu

from batch_share.emulator.fleet import device_id, service_id

DEVICES = 10_000
LATENCY = 0.02
TEAMS = 50
WHOLE_DEVICE_SHARES = 4
TARGET_SECONDS = 10.0
TARGET_REQUESTS_PER_100 = 1.0


@dataclass(frozen=True, slots=True)
class Timing:
    output: str
    wall: float
    requests: int
    peak_rss_mb: float
    rows: int
    emulator_cpu: float | None  # the server's own share of the wall time, where known


def seed_sheet(path: Path, devices: int) -> int:
    """The shares every device gets; returns how many there are."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device_id", "service_id", "email", "action", "notify"])
        for number in range(1, devices + 1):
            team = number % TEAMS
            for member in range(WHOLE_DEVICE_SHARES):
                email = f"user{team * WHOLE_DEVICE_SHARES + member}@example.com"
                writer.writerow([device_id(number), "", email, "add", "no"])
            writer.writerow(
                [device_id(number), service_id(number, 1), "ops@example.com", "add", "no"]
            )
            rows += WHOLE_DEVICE_SHARES + 1
    return rows


def seed(sheet: Path, env: dict[str, str], url: str, work: Path) -> None:
    command = [*CLI, "run", str(sheet), "--api-url", url, "--quiet", "--json",
               "--concurrency", "8", "--rate", "1000", "--state-dir", str(work / "state"),
               "--report", str(work / "seed-report.csv")]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed (exit {done.returncode}): {done.stderr[-2000:]}")


def time_export(out: Path, env: dict[str, str], url: str, emulator_pid: int) -> Timing:
    """One export in a fresh process; `wait4` gives that process's own peak RSS (the
    children's total would include the seeding run)."""
    command = [*CLI, "export", str(out), "--api-url", url, "--json", "--quiet"]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        cpu_before = process_cpu(emulator_pid)
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        cpu_after = process_cpu(emulator_pid)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if child.returncode != 0:
            message = stderr.read().decode()[-2000:]
            raise RuntimeError(f"export failed (exit {child.returncode}): {message}")
        summary = json.loads(stdout.read().decode().strip().splitlines()[-1])
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    emulator_cpu = None
    if cpu_before is not None and cpu_after is not None:
        emulator_cpu = cpu_after - cpu_before
    return Timing(out.suffix, wall, summary["requests"], peak_mb, summary["rows"], emulator_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=DEVICES)
    parser.add_argument("--formats", default="csv,xlsx,jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="export-bench-") as temp:
        work = Path(temp)
        sheet = work / "seed.csv"
        shares = seed_sheet(sheet, args.devices)
        flags = ("--devices", str(args.devices), "--latency", str(LATENCY))
        with emulator(*flags) as server:
            started = time.perf_counter()
            seed(sheet, server.env, server.url, work)
            print(f"seeded {shares:,} shares on {args.devices:,} devices "
                  f"in {time.perf_counter() - started:.1f}s (not timed below)")  # fmt: skip
            timings = [
                time_export(work / f"access.{suffix}", server.env, server.url, server.pid)
                for suffix in args.formats.split(",")
            ]
    print(
        f"\nexport of {args.devices:,} devices, {shares:,} shares, {LATENCY * 1000:.0f} ms latency"
    )
    print(
        f"{'format':<8}{'wall s':>8}{'requests':>10}{'req/100 dev':>13}"
        f"{'peak RSS MB':>13}{'rows':>9}{'emulator CPU s':>16}"
    )
    ok = True
    for timing in timings:
        per_100 = timing.requests / args.devices * 100
        cpu = "?" if timing.emulator_cpu is None else f"{timing.emulator_cpu:.2f}"
        print(f"{timing.output:<8}{timing.wall:>8.2f}{timing.requests:>10}{per_100:>13.2f}"
              f"{timing.peak_rss_mb:>13.0f}{timing.rows:>9,}{cpu:>16}")  # fmt: skip
        ok &= timing.rows == shares
        ok &= timing.wall < TARGET_SECONDS and per_100 <= TARGET_REQUESTS_PER_100
    print(f"targets (<= {TARGET_REQUESTS_PER_100:g} request per 100 devices, "
          f"< {TARGET_SECONDS:g} s, every share exported): {'OK' if ok else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
