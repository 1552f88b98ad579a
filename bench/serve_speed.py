"""How long from dropping a 5,000-row sheet on the page to seeing its plan.

Times the two requests the page makes (upload, then the plan page it redirects to) over
real HTTP; the browser's own rendering comes on top and is not measured here.

    .venv/bin/python bench/serve_speed.py [rows]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from batch_share.emulator import device_id
from batch_share.web import ServeConfig
from batch_share.web.server import WebServer


def make_sheet(path: Path, rows: int) -> Path:
    lines = ["device_id,email,action,ticket"]
    for i in range(rows):
        action = "REMOVE" if i % 10 == 0 else "ADD"
        email = f"user{i}@example.com" if i % 97 else "not-an-email"
        lines.append(f"{device_id(i % 1000 + 1)},{email},{action},T-{i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as scratch:
        sheet = make_sheet(Path(scratch) / "big.csv", rows)
        config = ServeConfig(port=0, work_dir=Path(scratch) / "work")
        with (
            WebServer(config) as web,
            httpx.Client(base_url=web.base, follow_redirects=True, timeout=120) as client,
        ):
            client.get(web.url).raise_for_status()
            times = []
            for _ in range(5):
                started = time.perf_counter()
                page = client.post(
                    "/upload",
                    data={"csrf": web.config.csrf},
                    files={"sheet": (sheet.name, sheet.read_bytes())},
                    headers={"origin": web.base},
                )
                page.raise_for_status()
                times.append(time.perf_counter() - started)
            size = len(page.content)
    print(
        f"{rows} rows: upload -> plan page in {statistics.median(times) * 1000:.0f} ms "
        f"(median of {len(times)}, best {min(times) * 1000:.0f} ms; page {size / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
