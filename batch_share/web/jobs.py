"""The one place the page reaches the job API.

Everything the page sends goes through `pipeline.run_job`, the same call `batch-share run`
makes, so the brake, the run lock, the journal and the report are the CLI's by construction.
`COMMANDS` is what the page offers: `sync` joins it when `run_job` runs sync jobs.
"""

from __future__ import annotations

from batch_share.pipeline import (
    DEFAULT_API_URL,
    GuardEvent,
    JobEvent,
    JobOptions,
    JobResult,
    PlannedEvent,
    plan_summary,
    run_job,
    write_job_report,
)

COMMANDS: tuple[str, ...] = ("run",)

__all__ = [
    "COMMANDS",
    "DEFAULT_API_URL",
    "GuardEvent",
    "JobEvent",
    "JobOptions",
    "JobResult",
    "PlannedEvent",
    "plan_summary",
    "run_job",
    "write_job_report",
]
