"""The one place the page reaches the job API.

Everything the page sends goes through `pipeline.run_job`, the same call `batch-share run`
makes, so the brake, the run lock, the journal and the report are the CLI's by construction.
`COMMANDS` is what the page offers. A sync's difference is worded by `diff_lines`, the
function `sync --dry-run` prints with, so the page and the terminal say the same thing.
"""

from __future__ import annotations

from batch_share.pipeline import (
    DEFAULT_API_URL,
    DiffEvent,
    GuardEvent,
    JobEvent,
    JobOptions,
    JobResult,
    PlannedEvent,
    plan_summary,
    run_job,
    write_job_report,
)
from batch_share.plan.sync import DeviceDiff, DiffTotals, diff_lines

COMMANDS: tuple[str, ...] = ("run", "sync")

__all__ = [
    "COMMANDS",
    "DEFAULT_API_URL",
    "DeviceDiff",
    "DiffEvent",
    "DiffTotals",
    "GuardEvent",
    "JobEvent",
    "JobOptions",
    "JobResult",
    "PlannedEvent",
    "diff_lines",
    "plan_summary",
    "run_job",
    "write_job_report",
]
