"""`make demo`: apply sample_sheets/onboarding.xlsx to a local emulator, the way an admin
would, then show what `sync` would change to make the account match sample_sheets/roster.csv.

The emulator runs in this process on a free loopback port with a throwaway key; the real
`batch-share` commands run as child processes against it, so the demo exercises exactly
what a user runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from make_samples import ROSTER_TODAY

from batch_share.emulator import Emulator, SeedGrant, device_id, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
SHEET = Path("sample_sheets/onboarding.xlsx")
REPORT = Path("demo-output/onboarding-report.xlsx")
ROSTER = Path("sample_sheets/roster.csv")
SYNC_REPORT = Path("demo-output/roster-dry-run.csv")


def main() -> int:
    (ROOT / REPORT.parent).mkdir(exist_ok=True)
    emulator = Emulator(devices=50)
    with serve_in_thread(emulator) as server:
        print(f"emulator: {server.url} (throwaway key {emulator.key_id})", flush=True)
        env = {
            **os.environ,
            "R3_ACCESS_KEY_ID": emulator.key_id,
            "R3_SECRET_ACCESS_KEY": emulator.secret,
            "REMOTEIT_API_URL": server.url,
        }
        command = [sys.executable, "-m", "batch_share", "run", str(SHEET), "--report", str(REPORT)]
        print(f"$ batch-share run {SHEET} --report {REPORT}", flush=True)
        # Relative paths and the repository as working directory keep the output portable.
        code = subprocess.run(command, env=env, cwd=ROOT, check=False).returncode  # noqa: S603
        print(f"report: {REPORT}\n", flush=True)
        # A fresh account for the sync: what the roster's people have today, nothing else.
        emulator.seed_access(
            SeedGrant(device_id(number), email, scripting)
            for number, email, scripting in ROSTER_TODAY
        )
        emulator.reset()
        sync = [sys.executable, "-m", "batch_share", "sync", str(ROSTER), "--dry-run"]
        sync += ["--report", str(SYNC_REPORT)]
        print(f"$ batch-share sync {ROSTER} --dry-run --report {SYNC_REPORT}", flush=True)
        dry = subprocess.run(sync, env=env, cwd=ROOT, check=False).returncode  # noqa: S603
    print(f"report: {SYNC_REPORT}")
    return code or dry


if __name__ == "__main__":
    sys.exit(main())
