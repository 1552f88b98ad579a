"""Crash-safe memory of what the API has confirmed, and the run lock, in a state directory.

The journal is a SQLite database in WAL mode. Each confirmed (device, service, email,
action, options) is committed the moment the API answers `true`, so a process killed at
any instant loses at most the requests that were in flight, and those are safe to send
again (ADD of an existing share and REMOVE of an absent one both answer `true`).

Entries are keyed by a hash that includes the API URL and the access key id, so a run
against the emulator can never vouch for production, nor one account for another. The
secret is never stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from batch_share.errors import LockHeldError, UsageError
from batch_share.models import Intent

try:
    import fcntl
except ImportError:  # Windows: see the module docstring for the fallback
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("batch_share")
_T = TypeVar("_T")

STATE_DIR_ENV = "BATCH_SHARE_STATE_DIR"
DB_NAME = "journal.sqlite3"
LOCK_NAME = "run.lock"
EXCL_LOCK_NAME = "run.lock.excl"
JOURNAL_DAYS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS confirmed (
    intent TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    confirmed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    sheet TEXT NOT NULL,
    api_url TEXT NOT NULL
);
"""


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$BATCH_SHARE_STATE_DIR`, else the per-user data dir (XDG on Linux, ~/Library on macOS)."""
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "batch-share"
    home = Path(env.get("HOME") or Path.home())
    return home / ".local" / "state" / "batch-share"


def intent_key(api_url: str, key_id: str, intent: Intent) -> str:
    """A stable digest of one request as the API saw it; the journal's primary key."""
    # The unit separator cannot occur in an ID, an email or a URL, so the join is unambiguous.
    text = "\x1f".join(
        (
            api_url,
            key_id,
            intent.device_id,
            intent.service_id or "",
            intent.email_key,
            intent.action.value,
            "1" if intent.scripting else "0",
            "1" if intent.notify else "0",
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


class Journal:
    """Confirmed intents, one row each; opened per run, closed at its end.

    Once open, a journal that cannot be written (its directory deleted under the run, its
    disk full) costs a warning, not the run: the report is the record of what happened, and
    what the journal misses is only resent by a later `--resume`, which is safe. Aborting
    instead would leave shares half-applied at 2 a.m. for the sake of a cache.

    Entries older than `journal_days` are dropped on opening, so a nightly job's journal
    stays the size of a month of runs instead of growing forever; None keeps everything.
    `--resume` cannot see past that horizon, which is far beyond its default window.
    """

    def __init__(self, state_dir: Path, *, journal_days: float | None = JOURNAL_DAYS) -> None:
        if journal_days is not None and journal_days < 0:
            raise UsageError("--journal-days must be 0 or more")
        self._dir = state_dir
        self.lost: str | None = None
        """Why the journal stopped recording mid-run, once it has; None while it works."""
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(state_dir / DB_NAME, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process (the WAL is in the OS cache); only a
            # power cut could lose the last commits, and those intents are safe to resend.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            if journal_days is not None:
                self.prune(time.time() - journal_days * 86400)
        except (OSError, sqlite3.Error) as error:
            raise UsageError(f"cannot open the state directory {state_dir}: {error}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def prune(self, before: float) -> int:
        """Forget confirmations and runs older than `before`; return how many entries went."""
        self._db.execute("BEGIN")
        try:
            gone = self._db.execute("DELETE FROM confirmed WHERE confirmed_at < ?", (before,))
            self._db.execute("DELETE FROM runs WHERE started_at < ?", (before,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return gone.rowcount

    def start_run(self, run_id: str, sheet: str, api_url: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)", (run_id, time.time(), sheet, api_url)
        )

    def record(self, run_id: str, intents: Iterable[str]) -> None:
        """Commit confirmed intents now: one small transaction per API answer."""
        if self._usable():
            try:
                self._record(run_id, intents)
            except (OSError, sqlite3.Error) as error:
                self._lose(f"it could not be written ({error})")

    def _usable(self) -> bool:
        if self.lost is not None:
            return False
        # Files deleted under an open SQLite connection still take writes, into nothing a
        # later run can find: check that the directory is still there before trusting it.
        if not (self._dir / DB_NAME).is_file():
            self._lose("the state directory or its database disappeared during the run")
            return False
        return True

    def _lose(self, reason: str) -> None:
        self.lost = reason
        log.warning(
            "the journal in %s stopped recording: %s; sending goes on and the report is "
            "complete, but a later --resume will not know what this run confirmed",
            self._dir,
            reason,
        )

    def _record(self, run_id: str, intents: Iterable[str]) -> None:
        now = time.time()
        # The connection is in autocommit mode, so without an explicit transaction every
        # row would be its own commit: a 50,000-row run spent 1.5 s on that alone.
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO confirmed VALUES (?, ?, ?)",
                ((intent, run_id, now) for intent in intents),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def forget(self, intents: Iterable[str]) -> None:
        """Withdraw confirmations that read-back verification found without effect, so a
        later `--resume` sends them again instead of trusting the API's `true`."""
        if self._usable():
            try:
                self._db.executemany(
                    "DELETE FROM confirmed WHERE intent = ?", ((i,) for i in intents)
                )
            except (OSError, sqlite3.Error) as error:
                self._lose(f"it could not be written ({error})")

    def confirmed_since(self, intents: Iterable[str], since: float) -> dict[str, str]:
        """Which of `intents` were confirmed at or after `since`, and by which run."""
        found: dict[str, str] = {}
        wanted = list(intents)
        chunk = 500  # stay under SQLite's host-parameter limit
        for start in range(0, len(wanted), chunk):
            part = wanted[start : start + chunk]
            marks = ",".join("?" * len(part))
            query = "SELECT intent, run_id FROM confirmed WHERE confirmed_at >= ? AND intent IN "
            rows = self._db.execute(f"{query}({marks})", (since, *part))
            found.update(dict(rows.fetchall()))
        return found


@dataclass(frozen=True, slots=True)
class LockInfo:
    pid: int
    started: str


@contextlib.contextmanager
def run_lock(state_dir: Path) -> Iterator[LockInfo]:
    """Hold the state directory for one run; a second run is refused (exit 4).

    `flock` is released by the kernel when its holder dies, so a lock left by a killed run
    is never stale in practice; the pid written inside only serves the refusal message and
    the log line that says a dead run's lock was taken over.
    """
    if fcntl is None:
        with _exclusive_file_lock(state_dir) as info:
            yield info
        return
    path = state_dir / LOCK_NAME
    handle = _open_in_state_dir(state_dir, lambda: path.open("a+", encoding="utf-8"))
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            raise LockHeldError(
                f"another batch-share run holds {path}"
                + (f" (pid {holder.pid}, started {holder.started})" if holder else "")
                + "; wait for it to finish"
            ) from None
        previous = _read_holder(handle)
        if previous is not None and previous.pid != os.getpid():
            log.warning(
                "took over the run lock left by pid %s (started %s), which is no longer running",
                previous.pid,
                previous.started,
            )
        mine = _me()
        handle.seek(0)
        handle.truncate()
        handle.write(f"{mine.pid} {mine.started}\n")
        handle.flush()
        try:
            yield mine
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _me() -> LockInfo:
    return LockInfo(os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def _open_in_state_dir(state_dir: Path, opener: Callable[[], _T]) -> _T:
    """Run `opener` in the state directory; only an O_EXCL race escapes as FileExistsError."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unusable(state_dir, error) from None
    try:
        return opener()
    except FileExistsError:
        raise
    except OSError as error:
        raise _unusable(state_dir, error) from None


def _unusable(state_dir: Path, error: OSError) -> UsageError:
    return UsageError(
        f"cannot use the state directory {state_dir}: {error.strerror or error} "
        "(choose another with --state-dir)"
    )


@contextlib.contextmanager
def _exclusive_file_lock(state_dir: Path) -> Iterator[LockInfo]:
    """The fallback where `flock` does not exist: whoever creates the file holds the lock."""
    path = state_dir / EXCL_LOCK_NAME
    mine = _me()
    for _attempt in range(2):
        try:
            descriptor = _open_in_state_dir(
                state_dir, lambda: os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            )
        except FileExistsError:
            holder = _read_lock_file(path)
            if holder is not None and not _pid_alive(holder.pid):
                log.warning(
                    "took over the run lock left by pid %s (started %s), which is no longer "
                    "running",
                    holder.pid,
                    holder.started,
                )
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            raise LockHeldError(
                f"another batch-share run holds {path}"
                + (f" (pid {holder.pid}, started {holder.started})" if holder else "")
                + "; wait for it to finish, or delete the file if no run is going"
            ) from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(f"{mine.pid} {mine.started}\n")
        break
    else:
        raise LockHeldError(f"another batch-share run took {path} at the same moment")
    try:
        yield mine
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _read_lock_file(path: Path) -> LockInfo | None:
    try:
        with path.open(encoding="utf-8") as handle:
            return _read_holder(handle)
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    """False only when the process is provably gone; unknown counts as alive."""
    if os.name != "posix":
        # Windows' os.kill(pid, 0) would send CTRL_C_EVENT, not probe: never guess there.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        return True
    return True


def _read_holder(handle: TextIO) -> LockInfo | None:
    handle.seek(0)
    parts = handle.read().split()
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    return LockInfo(int(parts[0]), parts[1])
