"""`make demo`: apply sample_sheets/onboarding.xlsx to a local emulator, the way an admin would.

The emulator runs in this process on a free loopback port with a throwaway key; the real
`batch-share run` command runs as a child process against it, so the demo exercises exactly
what a user runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from batch_share.emulator import Emulator, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
SHEET = Path("sample_sheets/onboarding.xlsx")
REPORT = Path("demo-output/onboarding-report.xlsx")


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
    print(f"report: {REPORT}")
    return code


if __name__ == "__main__":
    sys.exit(main())
