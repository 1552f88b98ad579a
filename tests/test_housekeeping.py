"""What a nightly job leaves behind: named reports pruned to N, a journal pruned to D days,
and a run lock and signal handling that still work where POSIX calls do not exist."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import WAIT_LIMIT, Invoke, write_sheet

from batch_share.emulator import device_id
from batch_share.errors import LockHeldError, UsageError
from batch_share.report.paths import prune_reports, report_path, reports_of
from batch_share.send.journal import DB_NAME, Journal, run_lock
from batch_share.send.signals import handlers_restored, stop_on_signals

NOW = datetime(2026, 3, 1, 2, 30, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent

# --- report names and pruning --------------------------------------------------------------


def test_report_name_is_stem_command_and_utc_time(tmp_path: Path) -> None:
    paris = timezone(timedelta(hours=1))

    path = report_path(tmp_path, Path("in/offboarding.xlsx"), "run", NOW.astimezone(paris))

    assert path == tmp_path / "offboarding.run-20260301T023000Z.csv"


def test_a_second_report_in_the_same_second_gets_its_own_name(tmp_path: Path) -> None:
    first = report_path(tmp_path, Path("s.csv"), "sync", NOW, ".jsonl")
    first.write_text("", encoding="utf-8")
    second = report_path(tmp_path, Path("s.csv"), "sync", NOW, "jsonl")
    second.write_text("", encoding="utf-8")

    assert second.name == "s.sync-20260301T023000Z-1.jsonl"
    assert reports_of(tmp_path, Path("s.csv"), "sync") == [second, first]


def test_report_name_refuses_naive_times_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        report_path(tmp_path, Path("s.csv"), "run", NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="extension"):
        report_path(tmp_path, Path("s.csv"), "run", NOW, ".txt")


def test_pruning_keeps_the_newest_and_never_touches_other_files(tmp_path: Path) -> None:
    sheet = Path("offboarding.csv")
    mine = []
    for day in range(5):
        path = report_path(tmp_path, sheet, "run", NOW + timedelta(days=day), ".xlsx")
        path.write_text("", encoding="utf-8")
        # Modification times are deliberately the reverse of the names' order.
        os.utime(path, (time.time() - day * 1000, time.time() - day * 1000))
        mine.append(path)
    others = [
        tmp_path / "offboarding.sync-20200101T000000Z.csv",  # another command
        tmp_path / "onboarding.run-20200101T000000Z.csv",  # another sheet
        tmp_path / "offboarding.run-notes.csv",  # not a name batch-share gives
        tmp_path / "offboarding.run-20200101T000000Z.csv.bak",
        tmp_path / "offboarding.csv",  # the sheet itself
    ]
    for path in others:
        path.write_text("", encoding="utf-8")
    (tmp_path / "offboarding.run-20190101T000000Z.csv").mkdir()  # a directory: left alone

    removed = prune_reports(tmp_path, sheet, "run", keep=2)

    assert sorted(removed) == sorted(mine[:3])
    assert sorted(p for p in tmp_path.iterdir() if p.is_file()) == sorted([*mine[3:], *others])


def test_pruning_to_zero_and_in_a_missing_directory(tmp_path: Path) -> None:
    path = report_path(tmp_path, Path("s.csv"), "run", NOW)
    path.write_text("", encoding="utf-8")

    assert prune_reports(tmp_path / "absent", Path("s.csv"), "run", keep=0) == []
    assert prune_reports(tmp_path, Path("s.csv"), "run", keep=0) == [path]
    with pytest.raises(ValueError, match="keep"):
        prune_reports(tmp_path, Path("s.csv"), "run", keep=-1)


# --- journal pruning -----------------------------------------------------------------------


def _age(state: Path, days: float) -> None:
    """Backdate everything in the journal, as if written `days` ago."""
    with sqlite3.connect(state / DB_NAME) as db:
        db.execute("UPDATE confirmed SET confirmed_at = confirmed_at - ?", (days * 86400,))
        db.execute("UPDATE runs SET started_at = started_at - ?", (days * 86400,))


def test_journal_entries_older_than_journal_days_go_when_it_opens(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.start_run("old", "s.csv", "http://x")
        journal.record("old", ["a", "b"])
    _age(tmp_path, 31)
    with Journal(tmp_path) as journal:
        journal.start_run("new", "s.csv", "http://x")
        journal.record("new", ["c"])

    with Journal(tmp_path) as journal:
        assert journal.confirmed_since(["a", "b", "c"], 0) == {"c": "new"}
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("SELECT run_id FROM runs").fetchall() == [("new",)]


def test_journal_days_is_a_parameter_and_none_keeps_everything(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.record("r", ["a"])
    _age(tmp_path, 10)

    with Journal(tmp_path, journal_days=None) as journal:
        assert journal.confirmed_since(["a"], 0) == {"a": "r"}
    with Journal(tmp_path, journal_days=11) as journal:
        assert journal.confirmed_since(["a"], 0) == {"a": "r"}
    with Journal(tmp_path, journal_days=9) as journal:
        assert journal.confirmed_since(["a"], 0) == {}
    with pytest.raises(UsageError, match="journal-days"):
        Journal(tmp_path, journal_days=-1)


# --- platforms without fcntl ---------------------------------------------------------------

# Makes `import fcntl` fail in the child, as it does on Windows, before batch_share loads.
NO_FCNTL = textwrap.dedent(
    """
    import sys

    class _NoFcntl:
        def find_spec(self, name, path=None, target=None):
            if name == "fcntl":
                raise ModuleNotFoundError("No module named 'fcntl'", name="fcntl")
            return None

    sys.meta_path.insert(0, _NoFcntl())
    sys.modules.pop("fcntl", None)
    """
)


def _without_fcntl(tmp_path: Path) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(NO_FCNTL, encoding="utf-8")
    path = os.pathsep.join([str(hook), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path}


LOCK_SCRIPT = """
import sys, time
from pathlib import Path
from batch_share.send import journal
assert journal.fcntl is None, "fcntl was importable"
with journal.run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


@pytest.mark.slow
def test_without_fcntl_plan_works_and_the_lock_falls_back_to_an_exclusive_file(
    tmp_path: Path,
) -> None:
    env = _without_fcntl(tmp_path)
    sheet = write_sheet(tmp_path / "s.csv", [[device_id(1), "", "ann@example.com", "", "", "", ""]])
    state = tmp_path / "state"

    plan = subprocess.run(
        [sys.executable, "-m", "batch_share", "plan", str(sheet)],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=False,
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_SCRIPT, str(state), "30"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        second = subprocess.run(
            [sys.executable, "-c", LOCK_SCRIPT, str(state), "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT_LIMIT,
            check=False,
        )
    finally:
        holder.kill()
        holder.communicate()

    assert plan.returncode == 0, plan.stderr
    assert "1 lines" in plan.stdout
    assert second.returncode != 0
    assert "LockHeldError" in second.stderr
    assert f"pid {holder.pid}" in second.stderr
    # The killed holder left its file behind; the next run sees the pid is gone and takes over.
    assert (state / "run.lock.excl").exists()
    third = subprocess.run(
        [sys.executable, "-c", LOCK_SCRIPT, str(state), "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=False,
    )
    assert third.returncode == 0, third.stderr
    assert third.stdout == "held\nreleased\n"
    assert "took over the run lock left by pid" in third.stderr
    assert not (state / "run.lock.excl").exists()


def test_the_exclusive_file_lock_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch_share.send import journal

    monkeypatch.setattr(journal, "fcntl", None)
    with run_lock(tmp_path) as held:
        assert held.pid == os.getpid()
        with pytest.raises(LockHeldError, match="delete the file if no run is going"):
            run_lock(tmp_path).__enter__()
    assert not (tmp_path / "run.lock.excl").exists()
    # A lock file written by something else, unreadable as a pid: refused, not taken over.
    (tmp_path / "run.lock.excl").write_text("garbage", encoding="utf-8")
    with pytest.raises(LockHeldError), run_lock(tmp_path):
        pass
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot use the state directory"), run_lock(blocked):
        pass


class _LoopWithoutSignals(asyncio.SelectorEventLoop):
    """Windows' event loop: `add_signal_handler` is not implemented."""

    def add_signal_handler(self, *_args: object) -> None:
        raise NotImplementedError


def test_sigterm_stops_a_run_on_a_loop_without_signal_support() -> None:
    before = signal.getsignal(signal.SIGTERM)

    async def wait_for_stop() -> bool:
        stop = asyncio.Event()
        stop_on_signals(asyncio.get_running_loop(), stop)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), timeout=5)
        return stop.is_set()

    loop = _LoopWithoutSignals()
    try:
        with handlers_restored():
            assert loop.run_until_complete(wait_for_stop())
    finally:
        loop.close()
    assert signal.getsignal(signal.SIGTERM) is before


def test_run_names_its_report_in_report_dir_and_keeps_the_newest(
    invoke: Invoke, tmp_path: Path
) -> None:
    sheet = write_sheet(
        tmp_path / "nightly.csv", [[device_id(1), "", "ann@example.com", "", "", "", "T-1"]]
    )
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "other.csv").write_text("not ours\n", encoding="utf-8")

    runs = [invoke("run", sheet, "--report-dir", reports, "--keep-reports", "2") for _ in range(3)]

    assert [result.exit_code for result in runs] == [0, 0, 0]
    kept = sorted(p.name for p in reports.iterdir())
    assert len(kept) == 3
    assert "other.csv" in kept
    ours = [name for name in kept if name != "other.csv"]
    assert all(re.fullmatch(r"nightly\.run-\d{8}T\d{6}Z(-\d+)?\.csv", name) for name in ours)
    written = [re.search(r"; report (\S+); exit", result.output) for result in runs]
    paths = [Path(match.group(1)) for match in written if match is not None]
    assert len(paths) == 3
    assert not paths[0].exists()  # the oldest was pruned
    assert paths[1].exists()
    assert paths[2].exists()
