"""Where nightly reports go, and how many are kept.

A cron job that writes a report every night fills its directory within a year; pruning is
done by name only, `<sheet stem>.<command>-<UTC time>[-N].<ext>`, so a file that batch-share
did not name that way (someone's notes, another sheet's reports, a different command's) is
never touched, whatever its age.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from batch_share.report.writer import REPORT_EXTENSIONS

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME_TAIL = re.compile(
    r"(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?(?P<ext>"
    + "|".join(re.escape(ext) for ext in REPORT_EXTENSIONS)
    + r")"
)


def report_path(
    report_dir: Path, sheet: Path, command: str, now: datetime, extension: str = ".csv"
) -> Path:
    """A fresh report name inside `report_dir`; a second run in the same second gets `-1`."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    ext = extension if extension.startswith(".") else f".{extension}"
    if ext not in REPORT_EXTENSIONS:
        raise ValueError(f"report extension must be one of {', '.join(REPORT_EXTENSIONS)}")
    stem = f"{sheet.stem}.{command}-{now.astimezone(UTC).strftime(STAMP_FORMAT)}"
    candidate = report_dir / f"{stem}{ext}"
    n = 0
    while candidate.exists():
        n += 1
        candidate = report_dir / f"{stem}-{n}{ext}"
    return candidate


def reports_of(report_dir: Path, sheet: Path, command: str) -> list[Path]:
    """This sheet's reports for this command, newest first (by the time in the name, which
    survives copies and restores that reset modification times)."""
    prefix = f"{sheet.stem}.{command}-"
    found: list[tuple[str, int, Path]] = []
    if not report_dir.is_dir():
        return []
    for path in report_dir.iterdir():
        if not path.name.startswith(prefix) or not path.is_file() or path.is_symlink():
            continue
        tail = _NAME_TAIL.fullmatch(path.name[len(prefix) :])
        if tail is not None:
            found.append((tail["stamp"], int(tail["n"] or 0), path))
    found.sort(reverse=True)
    return [path for _, _, path in found]


def prune_reports(report_dir: Path, sheet: Path, command: str, keep: int) -> list[Path]:
    """Delete all but the `keep` newest reports of this sheet and command; return them."""
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    removed = []
    for path in reports_of(report_dir, sheet, command)[keep:]:
        try:
            path.unlink()
        except FileNotFoundError:  # another run pruned it first
            continue
        removed.append(path)
    return removed
