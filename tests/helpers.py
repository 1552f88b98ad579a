"""Small pieces several test files need: real files written and read the way a user would."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from typer.testing import Result

# The report's columns as SPEC.md lists them, kept here as the contract the product is
# checked against (not imported from the product, which would make the check circular).
SPEC_REPORT_COLUMNS = [
    "row",
    "device_id",
    "service_id",
    "email",
    "action",
    "scripting",
    "notify",
    "status",
    "code",
    "message",
    "attempts",
    "mutation",
]
Invoke = Callable[..., Result]  # the CLI, in-process: invoke("run", sheet, "--report", out)
WAIT_LIMIT = 30.0  # seconds a subprocess may take to get going before the test gives up
SHEET_HEADER = ["device_id", "service_id", "email", "action", "scripting", "notify", "ticket"]


def write_sheet(
    path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = SHEET_HEADER
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


class FakeTime:
    """A clock that moves only when slept on, so timing logic runs in microseconds."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll `condition` while the run is alive; a run that ends or stalls fails the test."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(f"the run ended or stalled (exit {process.returncode}): {stderr}")
        time.sleep(0.01)
