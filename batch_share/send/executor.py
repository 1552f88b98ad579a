"""Send the planned mutations: packing, bounded concurrency, pacing, retries and splitting.

Each mutation travels as a *field*: one aliased `share` in a request. Up to `concurrency`
workers take up to `per_request` waiting fields at a time (under `max_document_bytes`),
take a start slot from the shared `Pace`, and send them as one request through a
`ShareSender` (the HTTP client in production; the executor knows nothing of HTTP).

Retries. A transport error, a timeout, a 429 or a 5xx retries the *whole* request, with
exponential backoff and full jitter, waiting at least the server's Retry-After. Resending
is safe because `share` is idempotent for ADD and REMOVE: adding a share that exists and
removing one that is absent both answer true, so a request the server applied before the
connection dropped (or before it failed to answer) changes nothing the second time. LEAVE
is the one action that is not: leaving twice is an error, so a LEAVE whose first answer was
lost may come back "not shared with you" and is reported failed with that message. Nothing
else is retried: 401/403 stop the run, a rejected document is resent in smaller requests,
and a field's own GraphQL error is settled by splitting, never by resending it unchanged.

Splitting. A field the server refuses is cut in halves (devices first, then service
entries, then emails) and the halves are resent until every refused part is a single
(device, service entry, email) that carries the server's own message, while the parts the
server accepts succeed. Parts keep the parent's `id`, so every report line of one planned
mutation names the same mutation.

A field that comes back refused, without an error of its own, from a request where
*nothing* succeeded is first resent on its own before it is split or failed: a spec-strict
GraphQL server answers an error in one `Boolean!` field by voiding the whole `data`, so
there every neighbour of the guilty field looks refused too. A field the server named in
its own error, or one from a request where some field succeeded or that it carried alone,
speaks for itself. Suspect fields (those and the halves of a refused field) are
always sent alone, so they cannot void healthy work packed beside them.

Confirmed fields are final: they are reported through `on_confirmed` at once and never
resent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception_type
from tenacity.stop import stop_after_attempt, stop_base
from tenacity.wait import wait_base, wait_random_exponential

from batch_share.errors import (
    ApiError,
    AuthRefusedError,
    BadResponseError,
    RateLimitedError,
    RequestRejectedError,
    RetryableError,
)
from batch_share.models import (
    PER_REQUEST_DEFAULT,
    Mutation,
    Outcome,
    OutcomeKey,
    ProgressEvent,
    Status,
    mutation_keys,
)
from batch_share.send.pace import Pace

if TYPE_CHECKING:
    # Type-only: importing the client would pull httpx into `plan`, which never sends.
    from batch_share.send.client import FieldResult

logger = logging.getLogger(__name__)

# Query text one aliased field adds besides its variables (alias, arguments, variable
# declarations); only used to keep a packed document under `max_document_bytes`.
FIELD_OVERHEAD_BYTES = 300

_T = TypeVar("_T")

INTERRUPTED_MESSAGE = "not confirmed: the run was interrupted"


class ShareSender(Protocol):
    """Sends `share` fields as one request; one answer per mutation, in order.

    Raises the `ApiError` subclasses of `batch_share.errors` for a request that failed as
    a whole (`ShareClient` is the production implementation).
    """

    async def share(self, mutations: Sequence[Mutation]) -> list[FieldResult]: ...


@dataclass(frozen=True, slots=True)
class ExecConfig:
    concurrency: int = 8
    """Most HTTP requests in flight at once."""
    rate: float = 10.0
    """Ceiling of requests per second across all workers; the pace adapts below it."""
    retries: int = 6
    """Retries per request after its first attempt."""
    per_request: int = PER_REQUEST_DEFAULT
    """Most mutations packed into one request as aliased fields; 1 turns packing off."""
    max_document_bytes: int = 256_000
    deadline: float = 300.0
    """Seconds from a mutation's first send after which its retries give up."""
    backoff_initial: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        for name in ("concurrency", "per_request", "max_document_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.retries < 0:
            raise ValueError(f"retries must not be negative, got {self.retries}")
        for name in ("rate", "deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.backoff_initial <= self.backoff_max:
            raise ValueError("backoff must satisfy 0 <= backoff_initial <= backoff_max")


@dataclass
class ExecResult:
    outcomes: dict[OutcomeKey, Outcome]
    """One per key of every mutation given (`models.mutation_keys`)."""
    requests: int = 0
    """HTTP attempts made, retries included."""
    retries: int = 0
    rate_limited: int = 0
    """Attempts answered 429."""
    fields_sent: int = 0
    """`share` fields carried by all attempts."""
    aborted: str | None = None
    """None, "auth-refused" or "interrupted"."""
    elapsed: float = 0.0


async def execute(
    mutations: Sequence[Mutation],
    sender: ShareSender,
    config: ExecConfig,
    *,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    on_confirmed: Callable[[Mutation, Sequence[OutcomeKey]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ExecResult:
    """Send every mutation and return an outcome for each of their keys.

    `stop` (set on Ctrl-C/SIGTERM) starts nothing new and lets requests in flight finish;
    keys not confirmed by then are `not-run`/`interrupted`. A 401/403 does the same with
    `auth-refused`. `on_confirmed` is called as soon as the server confirms a mutation or
    a part of one, with the keys it confirmed. `clock` and `sleep` are the time source for
    pacing, backoff and deadlines, so tests run without waiting. An exception from a
    callback (say, a journal that cannot be written) ends the run and propagates.
    """
    run = _Run(mutations, sender, config, stop, on_progress, on_confirmed, clock, sleep)
    return await run.execute()


def split_in_two(mutation: Mutation) -> tuple[Mutation, Mutation] | None:
    """Halve a refused mutation to find the part the server objects to, or None when it
    already names a single (device, service entry, email).

    Devices go first: a device-level refusal (not ours, internal error) is the coarsest
    cause, so isolating it confirms the healthy devices in the fewest rounds.
    """
    if len(mutation.device_ids) > 1:
        first, second = _halves(mutation.device_ids)
        return replace(mutation, device_ids=first), replace(mutation, device_ids=second)
    if mutation.services is not None and len(mutation.services) > 1:
        first_services, second_services = _halves(mutation.services)
        return replace(mutation, services=first_services), replace(
            mutation, services=second_services
        )
    if len(mutation.emails) > 1:
        first, second = _halves(mutation.emails)
        return replace(mutation, emails=first), replace(mutation, emails=second)
    return None


def _halves(items: tuple[_T, ...]) -> tuple[tuple[_T, ...], tuple[_T, ...]]:
    middle = (len(items) + 1) // 2
    return items[:middle], items[middle:]


def estimated_size(mutation: Mutation) -> int:
    """Approximate bytes a field adds to a request document."""
    return len(json.dumps(mutation.variables())) + FIELD_OVERHEAD_BYTES


@dataclass(eq=False, slots=True)
class _Field:
    """A (part of a) mutation waiting to be sent or in flight.

    `attempts` counts every HTTP attempt that carried it or the field it was split from;
    `deadline_at` is set at the first send and inherited by its parts.
    """

    mutation: Mutation
    keys: Sequence[OutcomeKey]
    size: int
    attempts: int = 0
    deadline_at: float | None = None
    alone: bool = False

    @classmethod
    def of(cls, mutation: Mutation, *, parent: _Field | None = None) -> _Field:
        made = cls(mutation, mutation_keys(mutation), estimated_size(mutation))
        if parent is not None:
            made.attempts, made.deadline_at, made.alone = parent.attempts, parent.deadline_at, True
        return made


@dataclass(eq=False, slots=True)
class _Request:
    """One request and its retries. `past_deadline_at` is set when the deadline stopped it:
    the time the next attempt would have started."""

    batch: list[_Field]
    sends: int = 0
    past_deadline_at: float | None = None


class _HaltedError(Exception):
    """The run was stopped (interrupt or refused credentials) before this request went out."""


class _PastDeadline(stop_base):
    """Give up when the next attempt could not start before the batch's earliest deadline,
    rather than sleep towards a deadline that a retry could never meet."""

    def __init__(self, request: _Request, clock: Callable[[], float]) -> None:
        self._request = request
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        deadlines = [f.deadline_at for f in self._request.batch if f.deadline_at is not None]
        next_start = self._clock() + (retry_state.upcoming_sleep or 0.0)
        if next_start >= min(deadlines, default=math.inf):
            self._request.past_deadline_at = next_start
            return True
        return False


class _BackoffOrRetryAfter(wait_base):
    """Full-jitter exponential backoff, but never sooner than a 429's Retry-After.

    The jitter stays on top of Retry-After (the larger of the two) so that the workers a
    429 burst hit do not all come back in the same instant.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self._backoff = wait_random_exponential(multiplier=initial, max=maximum)

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self._backoff(retry_state)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return max(wait, error.retry_after)
        return wait


class _Run:
    """The state of one `execute` call, shared by its workers (all on one event loop)."""

    def __init__(
        self,
        mutations: Sequence[Mutation],
        sender: ShareSender,
        config: ExecConfig,
        stop: asyncio.Event | None,
        on_progress: Callable[[ProgressEvent], None] | None,
        on_confirmed: Callable[[Mutation, Sequence[OutcomeKey]], None] | None,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._sender = sender
        self._config = config
        self._stop = stop
        self._on_progress = on_progress
        self._on_confirmed = on_confirmed
        self._clock = clock
        self._raw_sleep = sleep
        self._pace = Pace(config.rate, clock=clock, sleep=sleep)
        self._wait = _BackoffOrRetryAfter(config.backoff_initial, config.backoff_max)
        self._per_request = config.per_request

        self._pending: deque[_Field] = deque(_Field.of(m) for m in mutations)
        self._alone: deque[_Field] = deque()
        self._in_flight = 0
        self._wakeup = asyncio.Event()
        self._halted = asyncio.Event()
        self._halt_code: str | None = None
        self._halt_message = ""

        self._result = ExecResult(outcomes={})
        self._keys_left: Counter[str] = Counter()
        for waiting in self._pending:
            self._keys_left[waiting.mutation.id] += len(waiting.keys)
        self._keys_total = sum(self._keys_left.values())
        self._mutations_done = self._keys_succeeded = self._keys_failed = 0

    # -- the run ---------------------------------------------------------------------------

    async def execute(self) -> ExecResult:
        started = self._clock()
        watcher = asyncio.ensure_future(self._watch()) if self._stop is not None else None
        try:
            async with asyncio.TaskGroup() as workers:
                for _ in range(self._config.concurrency):
                    workers.create_task(self._work())
        except BaseExceptionGroup as group:
            # A worker only dies of a bug or a failing callback; raise it as itself.
            raise group.exceptions[0] from None
        finally:
            if watcher is not None:
                watcher.cancel()
        self._settle_not_run([*self._alone, *self._pending])
        self._result.aborted = self._halt_code
        self._result.elapsed = self._clock() - started
        return self._result

    async def _watch(self) -> None:
        """Interrupt waits (backoff, pace) the moment `stop` is set."""
        if self._stop is not None:
            await self._stop.wait()
            self._halt("interrupted", INTERRUPTED_MESSAGE)

    def _is_halted(self) -> bool:
        # `stop` is read directly too, so a stop set by a callback takes effect before the
        # watcher task has had its turn.
        if self._stop is not None and self._stop.is_set():
            self._halt("interrupted", INTERRUPTED_MESSAGE)
        return self._halted.is_set()

    def _halt(self, code: str, message: str) -> None:
        """Start no new request. The first reason wins: a 401 arriving after Ctrl-C is
        still an interrupted run."""
        if self._halt_code is None:
            self._halt_code, self._halt_message = code, message
        self._halted.set()
        self._wakeup.set()

    async def _work(self) -> None:
        while (batch := await self._next_batch()) is not None:
            try:
                await self._carry(batch)
            finally:
                self._in_flight -= 1
                self._wakeup.set()
            self._report_progress()

    async def _next_batch(self) -> list[_Field] | None:
        """The next fields to send, or None when the run is over for this worker: halted,
        or nothing waits and no request in flight can bring more (splits, requeues)."""
        while not self._is_halted():
            if self._alone or self._pending:
                self._in_flight += 1
                return self._take()
            if self._in_flight == 0:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        return None

    def _take(self) -> list[_Field]:
        if self._alone:
            return [self._alone.popleft()]
        batch = [self._pending.popleft()]
        size = batch[0].size
        while self._pending and len(batch) < self._per_request:
            size += self._pending[0].size
            if size > self._config.max_document_bytes:
                break
            batch.append(self._pending.popleft())
        return batch

    def _requeue(self, fields: Sequence[_Field]) -> None:
        """Put fields back at the front, in order: they are older than what waits."""
        for waiting in reversed(fields):
            (self._alone if waiting.alone else self._pending).appendleft(waiting)

    # -- one request -------------------------------------------------------------------

    async def _carry(self, batch: list[_Field]) -> None:
        request = _Request(batch)
        try:
            answers = await self._send(request)
        except _HaltedError:
            self._settle_not_run(batch)
        except AuthRefusedError as error:
            self._halt(
                "auth-refused",
                f"not confirmed: the API refused the credentials (HTTP {error.status})",
            )
            self._settle_not_run(batch)
        except RequestRejectedError as error:
            self._rejected(batch, error)
        except BadResponseError as error:
            self._fail_all(batch, "bad-response", str(error))
        except RetryError as error:
            self._gave_up(request, error.last_attempt.exception())
        else:
            self._answered(batch, answers)

    async def _send(self, request: _Request) -> list[FieldResult]:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RetryableError),
            stop=stop_after_attempt(self._config.retries + 1) | _PastDeadline(request, self._clock),
            wait=self._wait,
            sleep=self._sleep,
        )
        answers: list[FieldResult] = await retrying(self._attempt, request)
        return answers

    async def _attempt(self, request: _Request) -> list[FieldResult]:
        ticket = await self._unless_halted(self._pace.acquire)
        if self._is_halted():
            raise _HaltedError
        now = self._clock()
        for sending in request.batch:
            sending.attempts += 1
            if sending.deadline_at is None:
                sending.deadline_at = now + self._config.deadline
        if request.sends:
            self._result.retries += 1
        request.sends += 1
        self._result.requests += 1
        self._result.fields_sent += len(request.batch)
        try:
            answers = await self._sender.share([f.mutation for f in request.batch])
        except RateLimitedError:
            self._result.rate_limited += 1
            self._pace.on_throttle(ticket)
            raise
        self._pace.on_success()
        return answers

    async def _sleep(self, seconds: float) -> None:
        await self._unless_halted(lambda: self._raw_sleep(seconds))

    async def _unless_halted(self, start: Callable[[], Awaitable[_T]]) -> _T:
        """Await `start()`, but give up with `_HaltedError` as soon as the run is halted: a
        worker waiting out a long backoff or pace slot must not hold up a Ctrl-C."""
        if self._is_halted():
            raise _HaltedError
        work = asyncio.ensure_future(start())
        halted = asyncio.ensure_future(self._halted.wait())
        try:
            done, _ = await asyncio.wait((work, halted), return_when=asyncio.FIRST_COMPLETED)
        finally:
            halted.cancel()
            if not work.done():
                work.cancel()
        if work not in done:
            raise _HaltedError
        return work.result()

    # -- what the answers mean -------------------------------------------------------------

    def _answered(self, batch: list[_Field], answers: list[FieldResult]) -> None:
        voidable = len(batch) > 1 and not any(answer.ok for answer in answers)
        resend: list[_Field] = []
        for sent, answer in zip(batch, answers, strict=True):
            if answer.ok:
                self._confirm(sent)
            elif voidable and not answer.own_error:
                sent.alone = True
                resend.append(sent)
            elif (parts := split_in_two(sent.mutation)) is not None:
                resend.extend(_Field.of(part, parent=sent) for part in parts)
            else:
                self._settle(sent, Status.FAILED, "api-error", answer.message)
        self._requeue(resend)

    def _rejected(self, batch: list[_Field], error: RequestRejectedError) -> None:
        """The server refused the document as a whole (too big, too many aliases): send
        smaller requests from now on; a single field it refuses is failed."""
        if len(batch) == 1:
            self._fail_all(batch, "rejected", str(error))
            return
        smaller = max(1, len(batch) // 2)
        if smaller < self._per_request:
            self._per_request = smaller
            logger.warning(
                "the API refused a request of %d shares (%s); sending at most %d per request",
                len(batch),
                error,
                smaller,
            )
        self._requeue(batch)

    def _gave_up(self, request: _Request, error: BaseException | None) -> None:
        reason = _describe(error)
        if request.past_deadline_at is None:
            self._fail_all(
                request.batch, "retries-exhausted", f"{reason} after {request.sends} attempts"
            )
            return
        expired = [
            f
            for f in request.batch
            if f.deadline_at is not None and f.deadline_at <= request.past_deadline_at
        ]
        self._fail_all(
            expired,
            "deadline",
            f"gave up after {self._config.deadline:g} s: {reason} on attempt {request.sends}",
        )
        self._requeue([f for f in request.batch if f not in expired])

    # -- outcomes --------------------------------------------------------------------------

    def _confirm(self, confirmed: _Field) -> None:
        self._settle(confirmed, Status.SUCCEEDED, "", "")
        if self._on_confirmed is not None:
            self._on_confirmed(confirmed.mutation, confirmed.keys)

    def _fail_all(self, fields: Sequence[_Field], code: str, message: str) -> None:
        for failed in fields:
            self._settle(failed, Status.FAILED, code, message)

    def _settle_not_run(self, fields: Sequence[_Field]) -> None:
        for unsent in fields:
            self._settle(unsent, Status.NOT_RUN, self._halt_code or "", self._halt_message)

    def _settle(self, settled: _Field, status: Status, code: str, message: str) -> None:
        outcome = Outcome(status, code, message, settled.attempts)
        for key in settled.keys:
            self._result.outcomes[key] = outcome
        count = len(settled.keys)
        if status is Status.SUCCEEDED:
            self._keys_succeeded += count
        elif status is Status.FAILED:
            self._keys_failed += count
        mutation_id = settled.mutation.id
        self._keys_left[mutation_id] -= count
        if self._keys_left[mutation_id] == 0:
            self._mutations_done += 1

    def _report_progress(self) -> None:
        if self._on_progress is None:
            return
        self._on_progress(
            ProgressEvent(
                mutations_done=self._mutations_done,
                mutations_total=len(self._keys_left),
                keys_succeeded=self._keys_succeeded,
                keys_failed=self._keys_failed,
                keys_total=self._keys_total,
                requests=self._result.requests,
                retries=self._result.retries,
                rate=self._pace.rate,
            )
        )


def _describe(error: BaseException | None) -> str:
    """The last error of a request, short: the HTTP status when there was one."""
    if isinstance(error, ApiError) and error.status is not None:
        return f"HTTP {error.status}"
    return (str(error) or type(error).__name__).rstrip(".")
