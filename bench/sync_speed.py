"""How much `batch-share sync` reads and sends, and how long it takes, on a large roster.

The roster: 5,000 devices x 10 emails (device i goes to team i mod 50, as in run_speed),
50,000 rows, all whole-device ADD. The emulator (its own process, 20 ms latency) starts
with 90% of that access already in place (`--seed-access`), the rest missing one email per
device, plus strays nobody listed, 5% of the roster's size, on every second device. A sync
has to read every device's access, add the missing 10% and remove the strays, and nothing
else. The same change is then applied by `run` from a hand-written action list (the ADD
and REMOVE rows a person would have to work out) for comparison.

Both go through the brake: removals are ~5% of today's shares (the fraction limit is 50%),
but 2,500 of them is more than the default `--max-removals 100`, so that count is raised
for the bench instead of passing `--allow-mass-removal`.

Targets: only the difference is sent (share fields == one per device per distinct option
set among the missing and stray access, the planner's grouping rule), reading costs at
most one request per 100 devices, the whole sync takes under 10 s; afterwards every device
holds exactly the roster (read back through the API).

    .venv/bin/python bench/sync_speed.py [--devices N]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import run_speed
from run_speed import CLI, Intent, against_fresh_emulator, team_emails

from batch_share.emulator.fleet import device_id

DEVICES = 5_000
LATENCY = 0.02
MISSING_EVERY = 10  # one email in ten is missing: 10% of the roster
STRAY_DEVICES_EVERY = 2  # one stray on every second device: 5% of the roster
TARGET_SECONDS = 10.0
FLAGS = ("--concurrency", "8", "--rate", "1000")


@dataclass(frozen=True, slots=True)
class Case:
    roster: Path  # what sync takes: everyone who should have access
    actions: Path  # what run takes: only the changes
    seed: Path  # access in place before either runs
    intent: Intent
    missing: int
    strays: int
    expected_fields: int  # the fewest share fields that make the change


@dataclass(frozen=True, slots=True)
class Measured:
    name: str
    wall: float
    emulator_cpu: float | None
    summary: dict[str, object]
    state_ok: bool

    def count(self, key: str) -> int:
        value = self.summary.get(key, 0)
        return value if isinstance(value, int) else 0


def stray_email(number: int) -> str:
    return f"former{number % 97}@example.com"


def build(work: Path, devices: int) -> Case:
    """The roster, the seed and the action list, with the minimal field count worked out
    by the planner's rule: one field per device per distinct (action, scripting, notify,
    services). Every missing share here is (ADD, false, true, whole device) and every stray
    (REMOVE, false, false, whole device), so that is one field per device with missing
    access plus one per device with strays."""
    roster, actions, seed = work / "roster.csv", work / "actions.csv", work / "seed.csv"
    intent: Intent = {}
    missing = strays = 0
    add_devices: set[str] = set()
    remove_devices: set[str] = set()
    with (
        roster.open("w", newline="", encoding="utf-8") as roster_file,
        actions.open("w", newline="", encoding="utf-8") as actions_file,
        seed.open("w", newline="", encoding="utf-8") as seed_file,
    ):
        roster_rows, action_rows, seed_rows = (
            csv.writer(roster_file),
            csv.writer(actions_file),
            csv.writer(seed_file),
        )
        roster_rows.writerow(["device_id", "email"])
        action_rows.writerow(["device_id", "email", "action"])
        seed_rows.writerow(["device_id", "service_id", "email", "scripting"])
        for number in range(1, devices + 1):
            device = device_id(number)
            emails = team_emails(number)
            intent[device] = frozenset(emails)
            for position, email in enumerate(emails):
                roster_rows.writerow([device, email])
                if (number + position) % MISSING_EVERY == 0:
                    action_rows.writerow([device, email, "ADD"])
                    add_devices.add(device)
                    missing += 1
                else:
                    seed_rows.writerow([device, "", email, "false"])
            if number % STRAY_DEVICES_EVERY == 0:
                seed_rows.writerow([device, "", stray_email(number), "false"])
                action_rows.writerow([device, stray_email(number), "REMOVE"])
                remove_devices.add(device)
                strays += 1
    expected = len(add_devices) + len(remove_devices)
    return Case(roster, actions, seed, intent, missing, strays, expected)


def measure(
    name: str, command: str, sheet: Path, case: Case, work: Path, extra: Sequence[str]
) -> Measured:
    state = Path(tempfile.mkdtemp(dir=work, prefix="state-"))

    def command_for(server: run_speed.Emulator) -> list[str]:
        return [*CLI, command, str(sheet), "--api-url", server.url, "--json", "--quiet",
                "--state-dir", str(state), "--report", str(state / "report.csv"),
                *FLAGS, *extra]  # fmt: skip

    emulator_flags = ("--seed-access", str(case.seed))
    timing = against_fresh_emulator(command_for, case.intent, emulator_flags)
    summary = json.loads(timing.stdout.strip().splitlines()[-1])
    return Measured(name, timing.wall, timing.emulator_cpu, summary, timing.state_ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=DEVICES)
    args = parser.parse_args()
    # The fleet, latency and read-back come from run_speed; only the size may differ.
    run_speed.FLEET_DEVICES = args.devices
    run_speed.LATENCY = LATENCY
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as temp:
        work = Path(temp)
        case = build(work, args.devices)
        current = len(case.intent) * 10 - case.missing + case.strays
        brake = ("--max-removals", str(case.strays))
        print(
            f"sync of {len(case.intent) * 10:,} roster rows on {args.devices:,} devices, "
            f"{LATENCY * 1000:.0f} ms latency, {' '.join(FLAGS)}: {current:,} shares in place "
            f"({case.missing:,} missing, {case.strays:,} strays; removals / current shares = "
            f"{case.strays / current:.1%}, under the 50% brake; {' '.join(brake)})"
        )
        results = [
            measure("sync roster", "sync", case.roster, case, work, brake),
            measure("run action list", "run", case.actions, case, work, brake),
        ]
    print(
        f"\n{'variant':<17}{'rows':>8}{'read req':>10}{'fields':>8}{'share req':>11}"
        f"{'unchanged':>11}{'wall s':>8}{'emu CPU s':>11}{'state':>7}"
    )
    for result in results:
        rows = sum(v for v in result.summary["counts"].values())  # type: ignore[attr-defined]
        cpu = "?" if result.emulator_cpu is None else f"{result.emulator_cpu:.2f}"
        print(
            f"{result.name:<17}{rows:>8,}{result.count('read_requests'):>10}"
            f"{result.count('mutations'):>8,}{result.count('http_requests'):>11,}"
            f"{result.count('unchanged'):>11,}{result.wall:>8.2f}{cpu:>11}"
            f"{'OK' if result.state_ok else 'FAIL':>7}"
        )
    print(
        "  read req = requests reading the account (access batches of 100, the first also "
        "asking whose key it is); fields = share "
        "fields sent; share req = HTTP requests carrying them"
    )
    sync = results[0]
    reads_allowed = -(-args.devices // 100)  # the target: one request per 100 devices
    fields, reads = sync.count("mutations"), sync.count("read_requests")
    checks = [
        (
            f"only the difference is sent: {fields:,} fields, minimum {case.expected_fields:,}",
            fields == case.expected_fields,
        ),
        (
            f"reading: {reads} requests, at most {reads_allowed} (1 per 100 devices)",
            reads <= reads_allowed,
        ),
        (f"sync under {TARGET_SECONDS:g} s: {sync.wall:.2f} s", sync.wall < TARGET_SECONDS),
        ("state equals the roster after both", all(r.state_ok for r in results)),
    ]
    for text, ok in checks:
        print(f"target {text}: {'met' if ok else 'MISSED'}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
