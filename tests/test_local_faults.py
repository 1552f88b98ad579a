"""Local trouble during a run: the report's disk fills up or its directory goes away, the
state directory vanishes, the journal cannot be written.

Disk full is real: the run goes in a child process whose RLIMIT_FSIZE makes any write past
the limit fail with EFBIG (SIGXFSZ ignored), so the report's temp file fails on the write
path as on a full disk. chmod cannot stand in for it, since the tests may run as root.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import WAIT_LIMIT, read_report, write_sheet
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import ServerHandle, device_id
from batch_share.send.journal import DB_NAME, Journal

PREVIOUS = b"row,status\r\n2,succeeded\r\n"

# Big enough that the report passes the size limit, small enough that the journal stays
# far below it: two lines whose extra column carries 60 kB each, as 30,000 two-byte characters
# (a cell holds at most 32,767 characters, or the sheet is refused before anything runs).
FILE_SIZE_LIMIT = 96 * 1024
LIMITED_RUN = """\
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG, do not kill us
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from batch_share.cli.app import main
sys.argv[0] = "batch-share"
main()
"""


def rows(note: str = "") -> list[list[str]]:
    return [
        [device_id(i), "", f"u{i}@example.com", "add", "", "", note or f"T-{i}"] for i in (1, 2)
    ]


def confirmed(state_dir: Path) -> int:
    with sqlite3.connect(state_dir / DB_NAME) as db:
        (count,) = db.execute("SELECT count(*) FROM confirmed").fetchone()
    return int(count)


def environment(emulator: ServerHandle, state_dir: Path) -> dict[str, str]:
    return {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "BATCH_SHARE_STATE_DIR": str(state_dir),
    }


def invoke(emulator: ServerHandle, state_dir: Path, *args: str | Path) -> Result:
    env: dict[str, str | None] = {**environment(emulator, state_dir), "R3_PROFILE": None}
    return CliRunner().invoke(app, [str(arg) for arg in args], env=env)


@contextmanager
def while_a_request_is_in_flight(
    emulator: ServerHandle, action: Callable[[], None]
) -> Iterator[None]:
    """Do `action` while the emulator holds the run's first request in its latency, that
    is, after the run has started and before any answer came back."""
    emulator.state.faults.latency = 0.4
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + WAIT_LIMIT
        while emulator.state.counters.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        action()
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield
    thread.join(WAIT_LIMIT)
    assert done.is_set(), "the run never sent a request"


def test_a_full_disk_keeps_the_previous_report_and_the_journal(
    emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", rows(note="\u00e9" * 30_000))
    report = tmp_path / "out" / "report.csv"
    report.parent.mkdir()
    report.write_bytes(PREVIOUS)
    state = tmp_path / "state"
    command = [sys.executable, "-c", LIMITED_RUN, str(FILE_SIZE_LIMIT), "run", str(sheet)]

    finished = subprocess.run(
        [*command, "--report", str(report)],
        env={**os.environ, **environment(emulator, state)},
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=False,
    )

    assert finished.returncode == 1, finished.stderr
    assert f"error: could not write the report {report}: File too large" in finished.stderr
    assert "an earlier report at that path is unchanged" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert report.read_bytes() == PREVIOUS
    assert sorted(report.parent.iterdir()) == [report]  # no temp file left behind
    assert confirmed(state) == 2
    assert emulator.state.access(device_id(1)) == {"u1@example.com": False}


def test_a_report_directory_gone_mid_run_is_a_clear_error_and_the_journal_keeps_all(
    emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", rows())
    folder = tmp_path / "reports"
    folder.mkdir()
    report = folder / "report.csv"
    state = tmp_path / "state"

    with while_a_request_is_in_flight(emulator, folder.rmdir):
        result = invoke(emulator, state, "run", sheet, "--report", report)

    assert result.exit_code == 1, result.output
    assert f"could not write the report {report}: No such file or directory" in result.output
    assert "Traceback" not in result.output
    assert not folder.exists()
    assert confirmed(state) == 2


def test_a_state_directory_gone_mid_run_warns_and_the_run_completes(
    emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", rows())
    report = tmp_path / "report.csv"
    state = tmp_path / "state"

    def remove_state() -> None:
        for path in sorted(state.iterdir()):
            path.unlink()
        state.rmdir()

    with while_a_request_is_in_flight(emulator, remove_state):
        result = invoke(emulator, state, "run", sheet, "--report", report)

    assert result.exit_code == 0, result.output
    assert f"warning: the journal in {state} stopped recording" in result.output
    assert "the state directory or its database disappeared during the run" in result.output
    assert "Traceback" not in result.output
    assert [line["status"] for line in read_report(report)] == ["succeeded", "succeeded"]
    assert emulator.state.access(device_id(2)) == {"u2@example.com": False}


def test_a_journal_that_cannot_be_written_warns_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Journal(tmp_path) as journal, caplog.at_level(logging.WARNING, "batch_share"):
        journal.record("run-1", ["a"])
        journal._db.execute("PRAGMA query_only = 1")  # every write now fails, as on a full disk

        journal.record("run-1", ["b"])
        journal.record("run-1", ["c"])
        journal.forget(["a"])

    assert journal.lost is not None
    assert "could not be written" in journal.lost
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"the journal in {tmp_path} stopped recording"
    ]
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("SELECT intent FROM confirmed").fetchall() == [("a",)]
