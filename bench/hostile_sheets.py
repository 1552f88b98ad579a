"""What hostile-looking but ordinary workbooks cost, against the baseline.

Prints: `batch-share plan` on a 5-row workbook with one stray cell at XFD1048576 (wall time
and the child's own peak RSS; targets < 1 s and < 300 MB), and the 100,000-row workbook of
bench/plan_scale.py read by `load_sheet` next to the baseline full read,
`pandas.read_excel(engine="calamine")`, both in fresh processes.

    .venv/bin/python bench/hostile_sheets.py [--xlsx-rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from plan_scale import OUT, make_xlsx, timed_plan

ROWS = [[f"80:00:00:00:00:00:00:0{i}", f"u{i}@example.com", "ADD"] for i in range(1, 6)]

READ = """
import sys, time
from pathlib import Path
which, path = sys.argv[1], Path(sys.argv[2])
start = time.perf_counter()
if which == "baseline":
    import pandas as pd
    pd.read_excel(path, dtype=str, engine="calamine")
else:
    from batch_share.sheet.loader import load_sheet
    load_sheet(path)
print(time.perf_counter() - start)
"""


def make_stray(path: Path) -> None:
    if path.exists():
        return
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["device_id", "email", "action"])
    for row in ROWS:
        sheet.append(row)
    sheet["XFD1048576"] = "x"
    book.save(path)


def fresh_read(which: str, path: Path) -> float:
    """Seconds to read the workbook in a new process, imports included."""
    child = subprocess.run(
        [sys.executable, "-c", READ, which, str(path)], capture_output=True, text=True, check=True
    )
    return float(child.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    stray = OUT / "stray-cell.xlsx"
    normal = OUT / f"plan-{args.xlsx_rows}.xlsx"
    make_stray(stray)
    make_xlsx(normal, args.xlsx_rows)

    print("Stray cell at XFD1048576, 5 rows: batch-share plan in a fresh process")
    print("  baseline (calamine's dense read): native abort, exit 134 (17 billion cells)")
    runs = [timed_plan(stray) for _ in range(args.repeat)]
    wall = min(run[0] for run in runs)
    rss = max(run[1] for run in runs)
    codes = sorted({run[2] for run in runs})
    print(
        f"  now: {wall:.2f} s (best of {args.repeat}), peak RSS {rss / 2**20:.0f} MiB, exit {codes}"
    )
    print("  targets: < 1 s, < 300 MB")

    print(f"XLSX, {args.xlsx_rows:,} rows, read in a fresh process (best of {args.repeat})")
    start = time.perf_counter()
    baseline = min(fresh_read("baseline", normal) for _ in range(args.repeat))
    now = min(fresh_read("load_sheet", normal) for _ in range(args.repeat))
    print(f"  {'baseline: pandas.read_excel(engine=calamine)':<48} {baseline:6.2f} s")
    print(f"  {'now: load_sheet (checks included)':<48} {now:6.2f} s")
    print(f"  ratio now/baseline {now / baseline:.2f}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
