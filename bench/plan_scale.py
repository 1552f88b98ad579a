"""How `plan` scales: a 1,000,000-row CSV and a 100,000-row XLSX.

Prints, from one run on this machine: the time of a bare
`pandas.read_csv(dtype=str, keep_default_na=False)` of the CSV, the time of
`batch-share plan` on it end to end (a fresh process, start-up included) and in-process,
their ratio, the plan's peak RSS, and calamine vs openpyxl reading the XLSX.
Targets: plan <= 2x the bare read; peak RSS <= 1 GB.

    .venv/bin/python bench/plan_scale.py [--rows 1000000] [--xlsx-rows 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parent / "out"
EMAILS_PER_DEVICE = 5


def device(i: int) -> str:
    return ":".join(
        ["80", "00", "00", "00", *(f"{i >> shift & 255:02X}" for shift in (24, 16, 8, 0))]
    )


def make_csv(path: Path, rows: int) -> None:
    if path.exists():
        return
    with path.open("w", encoding="utf-8") as out:
        out.write("device_id,service_id,email,action,scripting,notify,ticket\n")
        for d in range(rows // EMAILS_PER_DEVICE):
            dev = device(d + 1)
            for e in range(EMAILS_PER_DEVICE):
                email = f"user{d * EMAILS_PER_DEVICE + e}@example.com"
                out.write(f"{dev},,{email},ADD,false,true,T-{d}\n")


def make_xlsx(path: Path, rows: int) -> None:
    if path.exists():
        return
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Shares")
    sheet.append(["device_id", "service_id", "email", "action", "scripting", "notify", "ticket"])
    for i in range(rows):
        d = i // EMAILS_PER_DEVICE + 1
        sheet.append([device(d), "", f"user{i}@example.com", "ADD", "false", "true", f"T-{d}"])
    book.save(path)


# Runs the CLI and prints its own peak RSS at exit. The kernel's rusage for a child is no
# use here: a child started with vfork inherits the parent's high-water mark at exec, so it
# would report this (large) benchmark process. VmHWM belongs to the child's own memory map.
PEAK_RSS_WRAPPER = """
import atexit, sys
def peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("peak-rss-kb " + line.split()[1] + "\\n")
atexit.register(peak)
sys.argv = ["batch-share", *sys.argv[1:]]
from batch_share.cli import main
main()
"""


def timed_plan(sheet: Path) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in bytes and exit code of `batch-share plan` in a fresh process."""
    command = [sys.executable, "-c", PEAK_RSS_WRAPPER, "plan", str(sheet), "--quiet"]
    start = time.perf_counter()
    child = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    peak = [line for line in child.stderr.decode().splitlines() if line.startswith("peak-rss-kb")]
    rss = int(peak[-1].split()[1]) * 1024 if peak else 0
    return elapsed, rss, child.returncode


def timed(label: str, func: object) -> float:
    assert callable(func)
    start = time.perf_counter()
    func()
    elapsed = time.perf_counter() - start
    print(f"  {label:<44} {elapsed:8.2f} s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    csv_path = OUT / f"plan-{args.rows}.csv"
    xlsx_path = OUT / f"plan-{args.xlsx_rows}.xlsx"
    make_csv(csv_path, args.rows)
    make_xlsx(xlsx_path, args.xlsx_rows)
    size_mb = csv_path.stat().st_size / 1e6

    from batch_share.pipeline import plan_sheet

    print(f"CSV: {args.rows:,} rows, {size_mb:.0f} MB")
    bare = timed(
        "bare pandas.read_csv(dtype=str, C engine)",
        lambda: pd.read_csv(csv_path, dtype=str, keep_default_na=False),
    )
    in_process = timed("plan_sheet() in-process", lambda: plan_sheet(csv_path))
    wall, rss, code = timed_plan(csv_path)
    print(f"  {'batch-share plan (fresh process)':<44} {wall:8.2f} s  exit {code}")
    print(f"  ratio plan/bare read: end to end {wall / bare:.2f}x, in-process ", end="")
    print(f"{in_process / bare:.2f}x")
    print(f"  peak RSS of plan: {rss / 2**20:.0f} MiB (target <= 1024 MiB)")

    print(f"XLSX: {args.xlsx_rows:,} rows")
    calamine = timed(
        "pandas.read_excel(engine='calamine')",
        lambda: pd.read_excel(xlsx_path, dtype=str, engine="calamine"),
    )
    openpyxl = timed(
        "pandas.read_excel(engine='openpyxl')",
        lambda: pd.read_excel(xlsx_path, dtype=str, engine="openpyxl"),
    )
    print(f"  calamine is {openpyxl / calamine:.1f}x faster than openpyxl")
    xwall, xrss, xcode = timed_plan(xlsx_path)
    print(f"  {'batch-share plan (fresh process)':<44} {xwall:8.2f} s  exit {xcode}")
    print(f"  peak RSS: {xrss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
