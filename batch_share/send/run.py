"""Sending a plan: the executor over a real client, the journal, `--resume` and `--verify`.
Returns per-line outcomes; writing the report is the caller's job."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from batch_share.errors import ApiError
from batch_share.models import Intent, Mutation, Outcome, OutcomeKey, ProgressEvent, Status
from batch_share.plan.planned import PlannedSheet
from batch_share.send.executor import ExecConfig, ExecResult, execute
from batch_share.send.journal import Journal, intent_key
from batch_share.send.signals import handlers_restored, run_async, stop_on_signals
from batch_share.send.verify import not_applied, read_access

if TYPE_CHECKING:
    from batch_share.send.auth import Credentials  # auth imports httpx, which `plan` never needs

logger = logging.getLogger("batch_share")


@dataclass
class RunResult:
    """What a run did: the executor's result (None when nothing was sent) and line outcomes."""

    exec_result: ExecResult | None
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    resumed: int = 0  # lines skipped because an earlier run's confirmation was in the journal
    not_applied: int = 0  # lines --verify found without effect

    @property
    def aborted(self) -> str | None:
        return self.exec_result.aborted if self.exec_result else None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to send: executor settings plus the journal, resume and read-back choices."""

    config: ExecConfig = field(default_factory=ExecConfig)
    timeout: float = 30.0
    run_id: str = ""
    journal: Journal | None = None
    resume_since: float | None = None  # skip intents the journal confirmed at/after this time
    verify: bool = False
    handle_signals: bool = False


def run_plan(
    planned: PlannedSheet,
    *,
    api_url: str,
    credentials: Credentials,
    options: RunOptions | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> RunResult:
    """Send the plan and return per-line outcomes (the caller writes the report).

    With `handle_signals`, SIGINT/SIGTERM set `stop`: the executor starts nothing new, lets
    in-flight requests finish, and the caller still gets every line's outcome to report.
    """
    from batch_share.send.client import ShareClient  # noqa: PLC0415 - `plan` never pays for httpx

    options = options or RunOptions()
    stop = stop or asyncio.Event()
    sent = _sent_intents(planned)
    earlier = _confirmed_earlier(options, api_url, credentials.key_id, sent)
    mutations = _without_lines(planned, set(earlier))
    journal = options.journal

    def confirmed(mutation: Mutation, outcome_keys: Sequence[OutcomeKey]) -> None:
        if journal is not None:
            journal.record(
                options.run_id,
                (
                    _key_intent_digest(api_url, credentials.key_id, mutation, k)
                    for k in outcome_keys
                ),
            )

    async def go() -> tuple[ExecResult, dict[int, Outcome]]:
        if options.handle_signals:
            stop_on_signals(asyncio.get_running_loop(), stop)
        async with ShareClient(api_url, credentials, timeout=options.timeout) as client:
            result = ExecResult({})
            for phase in _phases(planned, mutations):
                if result.aborted is None and stop.is_set():
                    result.aborted = "interrupted"  # stopped between two phases
                if result.aborted is not None:
                    break
                done = result
                result = _joined(
                    done,
                    await execute(
                        phase,
                        client,
                        options.config,
                        stop=stop,
                        on_progress=_offset(on_progress, done, len(mutations)),
                        on_confirmed=confirmed,
                    ),
                )
            outcomes = {**line_outcomes(planned, result), **earlier}
            if options.verify and result.aborted is None and not stop.is_set():
                devices = {sent[line].device_id for line in sent}
                try:
                    access = await read_access(client, devices)
                except ApiError as error:
                    # The shares were sent and confirmed; a failed read-back must not turn
                    # that into "not sent". The lines stand as the API confirmed them.
                    logger.warning("--verify could not read the devices back: %s", error)
                    return result, outcomes
                missing = not_applied(sent, outcomes, access)
                outcomes.update(missing)
                if journal is not None:
                    journal.forget(
                        intent_key(api_url, credentials.key_id, sent[line]) for line in missing
                    )
            return result, outcomes

    with handlers_restored():
        exec_result, outcomes = run_async(go())
    missing = sum(1 for o in outcomes.values() if o.code == "not-applied")
    return RunResult(exec_result, outcomes, resumed=len(earlier), not_applied=missing)


def _phases(planned: PlannedSheet, mutations: tuple[Mutation, ...]) -> list[tuple[Mutation, ...]]:
    """The mutations in the order the plan demands: those from `Plan.later` on wait until
    every earlier one has its answer (a sync removes before it adds)."""
    later = planned.plan.later
    if later is None:
        return [mutations]
    waiting = {mutation.id for mutation in planned.plan.mutations[later:]}
    first = tuple(m for m in mutations if m.id not in waiting)
    then = tuple(m for m in mutations if m.id in waiting)
    return [phase for phase in (first, then) if phase]


def _joined(done: ExecResult, more: ExecResult) -> ExecResult:
    return ExecResult(
        outcomes={**done.outcomes, **more.outcomes},
        requests=done.requests + more.requests,
        retries=done.retries + more.retries,
        rate_limited=done.rate_limited + more.rate_limited,
        fields_sent=done.fields_sent + more.fields_sent,
        aborted=more.aborted,
        elapsed=done.elapsed + more.elapsed,
    )


def _offset(
    on_progress: Callable[[ProgressEvent], None] | None, done: ExecResult, total: int
) -> Callable[[ProgressEvent], None] | None:
    """Progress of a later phase, counted on from the phases before it."""
    if on_progress is None:
        return None
    finished = len({key[0] for key in done.outcomes})
    succeeded = sum(1 for o in done.outcomes.values() if o.status is Status.SUCCEEDED)
    failed = len(done.outcomes) - succeeded

    def report(event: ProgressEvent) -> None:
        on_progress(
            replace(
                event,
                mutations_done=finished + event.mutations_done,
                mutations_total=total,
                keys_succeeded=succeeded + event.keys_succeeded,
                keys_failed=failed + event.keys_failed,
                keys_total=len(done.outcomes) + event.keys_total,
                requests=done.requests + event.requests,
                retries=done.retries + event.retries,
            )
        )

    return report


def _sent_intents(planned: PlannedSheet) -> dict[int, Intent]:
    """The lines that go out themselves (not duplicates), as intents, by line index."""
    sent = map(int, np.flatnonzero(planned.plan.sent_mask))
    return {line: planned.lines.intent(line) for line in sent}


def _confirmed_earlier(
    options: RunOptions, api_url: str, key_id: str, sent: dict[int, Intent]
) -> dict[int, Outcome]:
    """Lines an earlier run confirmed within the resume window (only with --resume)."""
    if options.journal is None or options.resume_since is None:
        return {}
    keys = {line: intent_key(api_url, key_id, intent) for line, intent in sent.items()}
    found = options.journal.confirmed_since(keys.values(), options.resume_since)
    return {
        line: Outcome(Status.SUCCEEDED, "", f"confirmed by earlier run {found[key]}")
        for line, key in keys.items()
        if key in found
    }


def _without_lines(planned: PlannedSheet, skip: set[int]) -> tuple[Mutation, ...]:
    """The plan's mutations minus the emails whose every line is in `skip`."""
    if not skip:
        return planned.plan.mutations
    lines, plan = planned.lines, planned.plan
    keep: dict[int, set[str]] = {}
    for line in map(int, np.flatnonzero(plan.sent_mask)):
        if line not in skip:
            keep.setdefault(int(plan.line_mutation[line]), set()).add(
                lines.email_keys[int(lines.email[line])]
            )
    reduced = []
    for index, mutation in enumerate(plan.mutations):
        emails = tuple(e for e in mutation.emails if e.casefold() in keep.get(index, set()))
        if emails:
            reduced.append(replace(mutation, emails=emails))
    return tuple(reduced)


def _key_intent_digest(api_url: str, key_id: str, mutation: Mutation, key: OutcomeKey) -> str:
    _, device, service, email_key = key
    action = mutation.action
    if service is not None and mutation.services is not None:
        action = next(s.action for s in mutation.services if s.service_id == service)
    intent = Intent(device, service, email_key, action, mutation.scripting, mutation.notify)
    return intent_key(api_url, key_id, intent)


def line_outcomes(planned: PlannedSheet, exec_result: ExecResult) -> dict[int, Outcome]:
    """The outcome of every line sent itself, from the executor's per-key results."""
    lines, plan = planned.lines, planned.plan
    outcomes: dict[int, Outcome] = {}
    for line in map(int, np.flatnonzero(plan.sent_mask)):
        mutation = plan.mutations[int(plan.line_mutation[line])]
        service = int(lines.service[line])
        key = (
            mutation.id,
            lines.device_ids[int(lines.device[line])],
            lines.service_ids[service] if service >= 0 else None,
            lines.email_keys[int(lines.email[line])],
        )
        outcomes[line] = exec_result.outcomes.get(key) or _unsent(exec_result)
    return outcomes


def _unsent(exec_result: ExecResult) -> Outcome:
    """A line the executor never took up: a later phase of a run that stopped first."""
    if exec_result.aborted is not None:
        reason = f"not sent: the run stopped ({exec_result.aborted}) before this phase"
        return Outcome(Status.NOT_RUN, exec_result.aborted, reason)
    return Outcome(Status.NOT_RUN, "not-sent", "no result from the executor")
