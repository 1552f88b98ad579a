"""The baseline batch-share is measured against: the script an admin would write first.

It reads the sheet with the `csv` module and sends one signed `share` mutation per row, one
after another, over one kept-alive connection (so the baseline is fair: no reconnect per
row, no string-built GraphQL). No grouping, no concurrency, no retries.

    R3_ACCESS_KEY_ID=... R3_SECRET_ACCESS_KEY=... \\
        .venv/bin/python bench/naive_sequential.py SHEET.csv --api-url URL [--limit N]

Prints one JSON line: rows sent, rows the API confirmed, and seconds spent sending.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import httpx

from batch_share.send.auth import SignatureAuth, load_credentials

SHARE_ONE = """\
mutation Share($deviceId: String!, $email: [String!]!) {
  share(deviceId: $deviceId, email: $email, action: ADD)
}"""


def read_rows(sheet: Path, limit: int | None) -> list[tuple[str, str]]:
    """(device_id, email) of the first `limit` rows (all rows when None)."""
    with sheet.open(newline="", encoding="utf-8") as handle:
        rows = [(row["device_id"], row["email"]) for row in csv.DictReader(handle)]
    return rows if limit is None else rows[:limit]


def share_each(api_url: str, rows: list[tuple[str, str]]) -> int:
    """Send one request per row; return how many the API answered `true` for."""
    confirmed = 0
    with httpx.Client(auth=SignatureAuth(load_credentials()), timeout=30.0) as client:
        for device, email in rows:
            variables = {"deviceId": device, "email": [email]}
            response = client.post(api_url, json={"query": SHARE_ONE, "variables": variables})
            if response.status_code == 200 and response.json().get("data", {}).get("share"):
                confirmed += 1
    return confirmed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sheet", type=Path, help="CSV with device_id and email columns")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--limit", type=int, default=None, help="send only the first N rows")
    args = parser.parse_args()
    rows = read_rows(args.sheet, args.limit)
    started = time.perf_counter()
    confirmed = share_each(args.api_url, rows)
    elapsed = time.perf_counter() - started
    print(json.dumps({"rows": len(rows), "confirmed": confirmed, "send_seconds": elapsed}))
    sys.exit(0 if confirmed == len(rows) else 1)


if __name__ == "__main__":
    main()
