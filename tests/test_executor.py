"""The executor: pure logic against in-process senders, then real signed HTTP against the
emulator (ShareClient -> loopback server), which is where the behaviour that matters shows."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import pytest
from helpers import FakeTime

from batch_share.emulator import ServerHandle, device_id, service_id
from batch_share.errors import (
    BadResponseError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TransportError,
)
from batch_share.models import (
    Action,
    Mutation,
    Outcome,
    OutcomeKey,
    ProgressEvent,
    ServiceChange,
    Status,
    mutation_keys,
)
from batch_share.send.auth import Credentials
from batch_share.send.client import FieldResult, ShareClient
from batch_share.send.executor import (
    ExecConfig,
    ExecResult,
    ShareSender,
    estimated_size,
    execute,
    split_in_two,
)
from batch_share.send.pace import DECREASE_FACTOR, INCREASE_STEPS

# Retry waits small enough that fault tests take milliseconds.
FAST = ExecConfig(rate=1000.0, backoff_initial=0.005, backoff_max=0.02, retries=10)


def share(
    mutation_id: str,
    devices: Sequence[int] | int,
    emails: Sequence[str],
    *,
    action: Action = Action.ADD,
    scripting: bool = False,
    services: Sequence[tuple[int, Action]] | None = None,
) -> Mutation:
    numbers = [devices] if isinstance(devices, int) else list(devices)
    return Mutation(
        id=mutation_id,
        device_ids=tuple(device_id(n) for n in numbers),
        emails=tuple(emails),
        action=action,
        scripting=scripting,
        notify=False,
        services=None
        if services is None
        else tuple(ServiceChange(service_id(numbers[0], j), a) for j, a in services),
    )


def statuses(result: ExecResult) -> dict[Status, int]:
    counts: dict[Status, int] = {}
    for outcome in result.outcomes.values():
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def key_count(mutations: Iterable[Mutation]) -> int:
    return sum(len(mutation_keys(m)) for m in mutations)


def key(mutation_id: str, device: int, email: str, service: str | None = None) -> OutcomeKey:
    return (mutation_id, device_id(device), service, email.casefold())


# -- in-process senders for the pure logic -----------------------------------------------


@dataclass
class FakeSender:
    """An in-memory `share` endpoint: refuses some emails, optionally behaves like a
    spec-strict GraphQL server (one failing field voids every answer in the request), and
    raises the scripted request-level errors first."""

    refused_emails: set[str] = field(default_factory=set)
    void_on_error: bool = False
    errors: list[Exception] = field(default_factory=list)
    requests: list[list[Mutation]] = field(default_factory=list)
    applied: set[tuple[str, str]] = field(default_factory=set)

    async def share(self, mutations: Sequence[Mutation]) -> list[FieldResult]:
        self.requests.append(list(mutations))
        if self.errors:
            raise self.errors.pop(0)
        answers = []
        for mutation in mutations:
            refused = [e for e in mutation.emails if e in self.refused_emails]
            if refused:
                answers.append(FieldResult(ok=False, message=f"user {refused[0]} is unknown"))
                continue
            self.applied.update((d, e) for d in mutation.device_ids for e in mutation.emails)
            answers.append(FieldResult(ok=True))
        if self.void_on_error and not all(a.ok for a in answers):
            void = FieldResult(ok=False, message="not confirmed: another share failed")
            answers = [a if not a.ok else void for a in answers]
        return answers


def run_fake(
    mutations: Sequence[Mutation],
    sender: ShareSender,
    config: ExecConfig = FAST,
    *,
    fake_time: FakeTime | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> ExecResult:
    fake_time = fake_time or FakeTime()
    return asyncio.run(
        execute(
            mutations,
            sender,
            config,
            stop=stop,
            on_progress=on_progress,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
        )
    )


def test_split_goes_devices_then_services_then_emails() -> None:
    mutation = share("m", [1, 2, 3], ["a@example.com", "b@example.com"])
    first, second = split_in_two(mutation) or pytest.fail("a 3-device mutation splits")
    assert (first.device_ids, second.device_ids) == (
        (device_id(1), device_id(2)),
        (device_id(3),),
    )
    assert first.emails == second.emails == mutation.emails
    assert first.id == second.id == "m"

    services = share("s", 1, ["a@example.com", "b@example.com"], services=[(1, Action.ADD)] * 2)
    left, right = split_in_two(services) or pytest.fail("two service entries split")
    assert left.services is not None
    assert right.services is not None
    assert (len(left.services), len(right.services), left.emails) == (1, 1, services.emails)

    one_service = share("e", 1, ["a@example.com", "b@example.com"], services=[(1, Action.ADD)])
    left, right = split_in_two(one_service) or pytest.fail("two emails split")
    assert (left.emails, right.emails) == (("a@example.com",), ("b@example.com",))

    assert split_in_two(share("x", 1, ["a@example.com"])) is None


def test_requests_pack_up_to_per_request_and_the_byte_budget() -> None:
    mutations = [share(f"m{i}", i, [f"user{i}@example.com"]) for i in range(1, 26)]
    sender = FakeSender()
    run_fake(mutations, sender, ExecConfig(per_request=10, concurrency=1, rate=1000.0))
    assert [len(r) for r in sender.requests] == [10, 10, 5]

    budget = 3 * estimated_size(mutations[0]) + 1
    sender = FakeSender()
    result = run_fake(mutations, sender, ExecConfig(max_document_bytes=budget, rate=1000.0))
    assert max(len(r) for r in sender.requests) == 3
    assert statuses(result) == {Status.SUCCEEDED: 25}


def test_a_voiding_server_still_gets_per_email_answers() -> None:
    """On a server that nulls the whole answer when one field fails, the neighbours of a
    refused field are resent, not failed: only the refused address ends up failed."""
    bad = "ghost@example.com"
    mutations = [
        share("m1", 1, ["a@example.com"]),
        share("m2", 2, ["b@example.com", bad, "c@example.com"]),
        share("m3", 3, ["d@example.com"]),
    ]
    sender = FakeSender(refused_emails={bad}, void_on_error=True)
    result = run_fake(mutations, sender)
    refused = result.outcomes[key("m2", 2, bad)]
    assert (refused.status, refused.code) == (Status.FAILED, "api-error")
    assert refused.message == f"user {bad} is unknown"
    assert statuses(result) == {Status.SUCCEEDED: 4, Status.FAILED: 1}
    assert (device_id(2), bad) not in sender.applied
    assert {(device_id(1), "a@example.com"), (device_id(3), "d@example.com")} <= sender.applied


def test_retries_exhausted_names_the_last_error_and_counts_attempts() -> None:
    sender = FakeSender(errors=[ServerError("boom", status=503) for _ in range(7)])
    result = run_fake([share("m", 1, ["a@example.com"])], sender, ExecConfig(retries=6))
    assert result.outcomes[key("m", 1, "a@example.com")] == Outcome(
        Status.FAILED, "retries-exhausted", "HTTP 503 after 7 attempts", 7
    )
    assert (result.requests, result.retries) == (7, 6)


def test_retry_waits_use_full_jitter_and_honour_retry_after() -> None:
    errors: list[Exception] = [TransportError("reset") for _ in range(4)]
    errors.append(RateLimitedError("slow down", retry_after=42.0))
    sender = FakeSender(errors=errors)
    fake_time = FakeTime()
    config = ExecConfig(backoff_initial=1.0, backoff_max=4.0, rate=1000.0)
    result = run_fake([share("m", 1, ["a@example.com"])], sender, config, fake_time=fake_time)
    assert statuses(result) == {Status.SUCCEEDED: 1}
    long_waits = [s for s in fake_time.sleeps if s > 4.0]
    assert len(long_waits) == 1
    assert long_waits[0] >= 42.0  # the 429's Retry-After, not the 4 s backoff cap
    assert result.rate_limited == 1


def test_the_pace_drops_on_429s_and_climbs_back_to_the_ceiling() -> None:
    events: list[ProgressEvent] = []
    sender = FakeSender(errors=[RateLimitedError("slow down", retry_after=0.1) for _ in range(3)])
    mutations = [share(f"m{i}", i, ["a@example.com"]) for i in range(1, 301)]
    config = ExecConfig(concurrency=1, per_request=1, rate=100.0)
    result = run_fake(mutations, sender, config, on_progress=events.append)
    assert statuses(result) == {Status.SUCCEEDED: 300}
    # Nothing had succeeded to measure, so three decreases by the factor, each 429 marking
    # the level; then the success that ends the request adds a step of the last level.
    level = 100.0 * DECREASE_FACTOR**2
    lowest = level * DECREASE_FACTOR + level / INCREASE_STEPS
    assert min(e.rate for e in events) == pytest.approx(lowest)
    assert events[-1].rate == pytest.approx(100.0)


def test_deadline_gives_up_before_retries_run_out() -> None:
    sender = FakeSender(errors=[TransportError("down") for _ in range(100)])
    config = ExecConfig(retries=50, deadline=10.0, backoff_initial=1.0, backoff_max=4.0)
    result = run_fake([share("m", 1, ["a@example.com"])], sender, config)
    outcome = result.outcomes[key("m", 1, "a@example.com")]
    assert (outcome.status, outcome.code) == (Status.FAILED, "deadline")
    assert "down" in outcome.message
    assert 2 < outcome.attempts < 51


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RequestRejectedError("HTTP 400: too big", status=400), "rejected"),
        (BadResponseError("not JSON", status=200), "bad-response"),
    ],
)
def test_a_request_level_refusal_of_a_single_field_fails_it(error: Exception, code: str) -> None:
    sender = FakeSender(errors=[error])
    result = run_fake([share("m", 1, ["a@example.com"])], sender)
    assert result.outcomes[key("m", 1, "a@example.com")] == Outcome(
        Status.FAILED, code, str(error), 1
    )
    assert len(sender.requests) == 1


def test_stop_before_start_sends_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    sender = FakeSender()
    result = run_fake([share("m", 1, ["a@example.com", "b@example.com"])], sender, stop=stop)
    assert sender.requests == []
    assert result.aborted == "interrupted"
    assert {(o.status, o.code) for o in result.outcomes.values()} == {
        (Status.NOT_RUN, "interrupted")
    }


def test_progress_reports_every_request_and_ends_complete() -> None:
    events: list[ProgressEvent] = []
    mutations = [share(f"m{i}", i, ["a@example.com", "b@example.com"]) for i in range(1, 6)]
    run_fake(
        mutations, FakeSender(), ExecConfig(per_request=2, rate=1000.0), on_progress=events.append
    )
    assert len(events) == 3
    assert events[-1].mutations_done == events[-1].mutations_total == 5
    assert events[-1].keys_succeeded == events[-1].keys_total == 10
    assert [e.requests for e in events] == sorted(e.requests for e in events)


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        ExecConfig(concurrency=0)
    with pytest.raises(ValueError, match="rate"):
        ExecConfig(rate=0)


# -- real HTTP against the emulator -------------------------------------------------------


def credentials_for(emulator: ServerHandle, secret: str | None = None) -> Credentials:
    return Credentials(
        key_id=emulator.key_id,
        secret=base64.b64decode(secret or emulator.secret),
        source="test",
    )


def run_http(
    emulator: ServerHandle,
    mutations: Sequence[Mutation],
    config: ExecConfig = FAST,
    *,
    wrap: Callable[[ShareClient], ShareSender] | None = None,
    stop: asyncio.Event | None = None,
    on_confirmed: Callable[[Mutation, Sequence[OutcomeKey]], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ExecResult:
    async def go() -> ExecResult:
        async with ShareClient(emulator.url, credentials_for(emulator), timeout=5.0) as client:
            sender: ShareSender = wrap(client) if wrap else client
            return await execute(
                mutations, sender, config, stop=stop, on_confirmed=on_confirmed, sleep=sleep
            )

    return asyncio.run(go())


def onboarding(count: int, first_device: int = 1) -> list[Mutation]:
    """`count` mutations over distinct devices: whole-device adds with 1-3 emails, some with
    scripting, every fifth one a service-level change."""
    mutations = []
    for i in range(count):
        device = first_device + i
        emails = [f"user{i}-{k}@example.com" for k in range(1 + i % 3)]
        if i % 5 == 4:
            services = [(1, Action.ADD), (2, Action.ADD)]
            mutations.append(share(f"m{i}", device, emails, services=services))
        else:
            mutations.append(share(f"m{i}", device, emails, scripting=i % 2 == 0))
    return mutations


def assert_applied(emulator: ServerHandle, mutations: Iterable[Mutation]) -> None:
    """The emulator's state is exactly what the mutations asked for."""
    for mutation in mutations:
        emails = {e.casefold() for e in mutation.emails}
        for device in mutation.device_ids:
            if mutation.services is None:
                assert emulator.state.access(device) == dict.fromkeys(emails, mutation.scripting)
                continue
            assert emulator.state.access(device) == {}
            for change in mutation.services:
                assert emulator.state.service_access(change.service_id) == emails


def test_happy_path_reaches_the_intended_state_in_few_requests(emulator: ServerHandle) -> None:
    mutations = onboarding(30)
    confirmed: list[Mutation] = []
    result = run_http(emulator, mutations, on_confirmed=lambda m, _keys: confirmed.append(m))
    assert result.aborted is None
    assert statuses(result) == {Status.SUCCEEDED: key_count(mutations)}
    assert {o.attempts for o in result.outcomes.values()} == {1}
    assert_applied(emulator, mutations)
    assert sorted(m.id for m in confirmed) == sorted(m.id for m in mutations)
    counters = emulator.state.counters
    assert counters.requests == result.requests == 2  # 30 fields, 20 per request
    assert counters.share_fields == result.fields_sent == 30


def test_remove_and_readd_are_idempotent_over_http(emulator: ServerHandle) -> None:
    emails = ["a@example.com", "b@example.com"]
    run_http(emulator, [share("add", 1, emails)])
    result = run_http(
        emulator,
        [share("again", 1, emails), share("gone", 2, emails, action=Action.REMOVE)],
    )
    assert statuses(result) == {Status.SUCCEEDED: 4}
    assert emulator.state.access(device_id(1)) == dict.fromkeys(emails, False)
    assert emulator.state.access(device_id(2)) == {}


def test_thirty_percent_faults_still_all_succeed(emulator: ServerHandle) -> None:
    faults = emulator.state.faults
    faults.p503, faults.p429, faults.p_drop, faults.retry_after = 0.1, 0.1, 0.1, 0.01
    mutations = onboarding(40)
    result = run_http(emulator, mutations, replace(FAST, per_request=1))
    assert statuses(result) == {Status.SUCCEEDED: key_count(mutations)}
    assert_applied(emulator, mutations)
    assert result.retries > 0
    assert result.rate_limited > 0
    assert emulator.state.counters.dropped > 0
    assert max(o.attempts for o in result.outcomes.values()) > 1


@dataclass
class Recorder:
    """Wraps the real client to note each request, and each 429's Retry-After, on a
    timeline that the test's (real) sleep also writes to."""

    client: ShareClient
    timeline: list[tuple[str, float]]

    async def share(self, mutations: Sequence[Mutation]) -> list[FieldResult]:
        self.timeline.append(("send", 0.0))
        try:
            return await self.client.share(mutations)
        except RateLimitedError as error:
            self.timeline.append(("429", error.retry_after or 0.0))
            raise


def test_retry_after_is_waited_out_before_the_retry(emulator: ServerHandle) -> None:
    faults = emulator.state.faults
    faults.p429, faults.retry_after = 0.5, 0.05
    timeline: list[tuple[str, float]] = []

    async def sleep(seconds: float) -> None:
        timeline.append(("sleep", seconds))
        await asyncio.sleep(seconds)

    # One worker keeps the timeline in order; backoff alone would wait at most 2 ms.
    config = ExecConfig(
        concurrency=1,
        per_request=1,
        rate=1000.0,
        retries=20,
        backoff_initial=0.001,
        backoff_max=0.002,
    )
    result = run_http(
        emulator,
        onboarding(12),
        config,
        wrap=lambda client: Recorder(client, timeline),
        sleep=sleep,
    )
    assert statuses(result).keys() == {Status.SUCCEEDED}
    throttled = [i for i, (what, _) in enumerate(timeline) if what == "429"]
    assert len(throttled) == result.rate_limited > 2
    for at in throttled:
        assert timeline[at][1] == pytest.approx(0.05)  # the header reached the executor
        resend = next(i for i in range(at, len(timeline)) if timeline[i][0] == "send")
        waited = sum(seconds for what, seconds in timeline[at:resend] if what == "sleep")
        assert waited >= 0.05


def test_a_failing_device_fails_only_its_own_keys(emulator: ServerHandle) -> None:
    emulator.state.faults.failing_devices = {device_id(2)}
    emails = ["a@example.com", "b@example.com"]
    mutations = [share("multi", [1, 2, 3], emails), share("other", 4, emails)]
    result = run_http(emulator, mutations)
    message = f"could not update sharing for device {device_id(2)}: internal error"
    for email in emails:
        failed = result.outcomes[key("multi", 2, email)]
        assert (failed.status, failed.code, failed.message) == (
            Status.FAILED,
            "api-error",
            message,
        )
        for device in (1, 3):
            assert result.outcomes[key("multi", device, email)].status is Status.SUCCEEDED
        assert result.outcomes[key("other", 4, email)].status is Status.SUCCEEDED
    assert statuses(result) == {Status.SUCCEEDED: 6, Status.FAILED: 2}
    assert emulator.state.access(device_id(2)) == {}
    for device in (1, 3, 4):
        assert set(emulator.state.access(device_id(device))) == set(emails)


def test_fields_refused_in_their_own_words_are_not_resent_one_by_one(
    emulator: ServerHandle,
) -> None:
    # Every field of the request fails, but each error names its own alias: nothing was
    # voided by a neighbour, so there is nothing to learn from resending them alone.
    mutations = [share(f"m{n}", n, [f"user{n}@unregistered.example"]) for n in range(1, 6)]

    result = run_http(emulator, mutations)

    assert statuses(result) == {Status.FAILED: 5}
    assert result.requests == 1
    assert emulator.state.counters.requests == 1


def test_an_unregistered_email_fails_alone_with_the_servers_message(
    emulator: ServerHandle,
) -> None:
    good = ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    bad = "Newcomer@unregistered.example"
    mutation = share("m", 5, [good[0], good[1], bad, good[2], good[3]])
    result = run_http(emulator, [mutation, *onboarding(6, first_device=10)])
    failed = result.outcomes[key("m", 5, bad)]
    assert (failed.status, failed.code) == (Status.FAILED, "api-error")
    assert failed.message == f"user {bad} has no remote.it account"
    assert failed.attempts > 1  # the first request carried it with the others
    for email in good:
        assert result.outcomes[key("m", 5, email)].status is Status.SUCCEEDED
    assert set(emulator.state.access(device_id(5))) == set(good)
    assert sum(1 for o in result.outcomes.values() if o.status is Status.FAILED) == 1


def test_confirmed_shares_are_never_resent(emulator: ServerHandle) -> None:
    emulator.state.faults.unregistered_emails = {"x@example.com", "y@example.com"}
    mutations = onboarding(20)
    mutations.append(share("bad1", 30, ["p@example.com", "x@example.com", "q@example.com"]))
    mutations.append(share("bad2", [31, 32], ["y@example.com", "r@example.com"]))
    result = run_http(emulator, mutations, replace(FAST, per_request=6))
    assert statuses(result)[Status.FAILED] == 3  # x on device 30, y on devices 31 and 32

    counters = emulator.state.counters
    assert counters.share_fields == result.fields_sent
    confirmed: set[tuple[str, str | None, str]] = set()
    for record in counters.log:
        assert record.status == 200
        for call in record.share_calls:
            services = [s for s, _ in call.services] if call.services else [None]
            keys = {
                (d, s, e.casefold()) for d in call.device_ids for s in services for e in call.emails
            }
            assert not keys & confirmed, f"resent after confirmation: {call}"
            if call.error is None:
                confirmed |= keys


def test_apply_then_drop_retries_leave_the_state_exact(emulator: ServerHandle) -> None:
    emulator.state.faults.p_apply_then_drop = 0.3
    mutations = onboarding(25)
    removal = share("rm", 40, ["gone@example.com"], action=Action.REMOVE)
    result = run_http(emulator, [*mutations, removal], replace(FAST, per_request=3))
    assert statuses(result).keys() == {Status.SUCCEEDED}
    assert result.retries > 0
    assert emulator.state.counters.dropped > 0
    assert_applied(emulator, mutations)
    assert emulator.state.access(device_id(40)) == {}


def test_an_alias_cap_halves_the_packing_and_everything_succeeds(
    emulator: ServerHandle,
) -> None:
    emulator.state.faults.alias_cap = 6
    mutations = onboarding(40)
    result = run_http(emulator, mutations, replace(FAST, per_request=20))
    assert statuses(result).keys() == {Status.SUCCEEDED}
    assert_applied(emulator, mutations)
    log = emulator.state.counters.log
    assert any(record.status == 400 for record in log)
    assert max(r.share_fields for r in log if r.status == 200) <= 5  # 20 -> 10 -> 5


def test_a_401_mid_run_stops_and_leaves_the_rest_not_run(emulator: ServerHandle) -> None:
    """After two good requests the key is refused: nothing more is sent."""
    wrong = base64.b64encode(b"not the key" * 3).decode()

    @dataclass
    class KeyRevokedAfter:
        good: ShareClient
        bad: ShareClient
        calls: int = 0

        async def share(self, mutations: Sequence[Mutation]) -> list[FieldResult]:
            self.calls += 1
            client = self.good if self.calls <= 2 else self.bad
            return await client.share(mutations)

    async def go() -> ExecResult:
        async with (
            ShareClient(emulator.url, credentials_for(emulator)) as good,
            ShareClient(emulator.url, credentials_for(emulator, wrong)) as bad,
        ):
            config = replace(FAST, per_request=2, concurrency=1)
            return await execute(onboarding(10), KeyRevokedAfter(good, bad), config)

    result = asyncio.run(go())
    assert result.aborted == "auth-refused"
    assert emulator.state.counters.requests == result.requests == 3
    done = {k[0] for k, o in result.outcomes.items() if o.status is Status.SUCCEEDED}
    assert done == {"m0", "m1", "m2", "m3"}
    refused = [o for o in result.outcomes.values() if o.status is not Status.SUCCEEDED]
    assert {(o.status, o.code) for o in refused} == {(Status.NOT_RUN, "auth-refused")}
    assert all("HTTP 401" in o.message for o in refused)
    assert_applied(emulator, onboarding(4))
    assert emulator.state.access(device_id(5)) == {}


def test_concurrency_never_exceeds_the_limit(emulator: ServerHandle) -> None:
    emulator.state.faults.latency = 0.05
    config = replace(FAST, per_request=1, concurrency=4)
    result = run_http(emulator, onboarding(32), config)
    assert statuses(result).keys() == {Status.SUCCEEDED}
    assert 1 < emulator.state.counters.peak_concurrency <= 4


def test_stop_lets_in_flight_finish_and_marks_the_rest_interrupted(
    emulator: ServerHandle,
) -> None:
    stop = asyncio.Event()
    config = replace(FAST, per_request=2, concurrency=1)
    result = run_http(
        emulator, onboarding(10), config, stop=stop, on_confirmed=lambda _m, _k: stop.set()
    )
    assert result.aborted == "interrupted"
    assert emulator.state.counters.requests == 1
    done = {k[0] for k, o in result.outcomes.items() if o.status is Status.SUCCEEDED}
    assert done == {"m0", "m1"}
    rest = [o for k, o in result.outcomes.items() if k[0] not in done]
    assert {(o.status, o.code) for o in rest} == {(Status.NOT_RUN, "interrupted")}
    assert_applied(emulator, onboarding(2))


def test_lines_of_a_phase_never_sent_carry_why_the_run_stopped() -> None:
    from batch_share.models import Sheet
    from batch_share.plan.planned import plan_loaded
    from batch_share.send.run import line_outcomes

    planned = plan_loaded(
        Sheet.from_rows(["device_id", "email"], [[device_id(1), "ann@example.com"]])
    )

    stopped = line_outcomes(planned, ExecResult({}, aborted="auth-refused"))
    finished = line_outcomes(planned, ExecResult({}))

    assert (stopped[0].status, stopped[0].code) == (Status.NOT_RUN, "auth-refused")
    assert finished[0].code == "not-sent"
