"""The shared pace, on a fake clock: sleeping advances time, so every check is exact."""

from __future__ import annotations

import asyncio
import math

import pytest
from helpers import FakeTime

from batch_share.send.pace import DECREASE_FACTOR, INCREASE_STEPS, SCATTERED_HOLD, Pace


def make_pace(ceiling: float = 10.0, floor: float = 0.5) -> tuple[Pace, FakeTime]:
    fake = FakeTime()
    return Pace(ceiling, clock=fake.clock, sleep=fake.sleep, floor=floor), fake


def start_times(pace: Pace, fake: FakeTime, count: int) -> list[float]:
    async def run() -> list[float]:
        starts = []
        for _ in range(count):
            await pace.acquire()
            starts.append(fake.now)
        return starts

    return asyncio.run(run())


def succeed_for(pace: Pace, fake: FakeTime, seconds: float, per_second: float) -> None:
    """Successes spread evenly over the next `seconds`, half an interval off the window's
    edges so that no count depends on rounding."""
    start, interval = fake.now, 1.0 / per_second
    for i in range(round(seconds * per_second)):
        fake.now = start + (i + 0.5) * interval
        pace.on_success()
    fake.now = start + seconds


def throttled_at(ceiling: float, per_second: float) -> tuple[Pace, FakeTime]:
    """A pace that ran a second with the server confirming `per_second`, then got a 429."""
    pace, fake = make_pace(ceiling=ceiling)
    start_times(pace, fake, 1)
    succeed_for(pace, fake, 1.0, per_second)
    pace.on_throttle()
    return pace, fake


def successes_to_reach_the_ceiling(pace: Pace, limit: int) -> int:
    for count in range(1, limit + 1):
        pace.on_success()
        if pace.rate == pace.ceiling:
            return count
    raise AssertionError(f"still at {pace.rate:.1f}/s after {limit} successes")


# -- spacing ------------------------------------------------------------------------------


def test_requests_are_spaced_at_the_ceiling() -> None:
    pace, fake = make_pace(ceiling=10.0)
    assert start_times(pace, fake, 5) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_concurrent_callers_line_up_one_interval_apart() -> None:
    waits: list[float] = []

    async def frozen_sleep(seconds: float) -> None:
        # Time stands still, so every caller reserves while the others are still waiting.
        waits.append(seconds)
        await asyncio.sleep(0)

    pace = Pace(4.0, clock=lambda: 0.0, sleep=frozen_sleep)

    async def run() -> None:
        await asyncio.gather(*(pace.acquire() for _ in range(4)))

    asyncio.run(run())
    assert sorted(waits) == pytest.approx([0.25, 0.5, 0.75])


def test_an_idle_spell_does_not_bank_a_burst() -> None:
    pace, fake = make_pace(ceiling=10.0)
    start_times(pace, fake, 1)
    fake.now = 100.0
    assert start_times(pace, fake, 3) == pytest.approx([100.0, 100.1, 100.2])


def test_callers_already_waiting_take_new_slots_at_the_lowered_pace() -> None:
    waits: list[float] = []
    released = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        # Time stands still and nobody wakes until the test says so.
        waits.append(seconds)
        await released.wait()

    pace = Pace(10.0, clock=lambda: 0.0, sleep=held_sleep)

    async def run() -> list[int]:
        first = await pace.acquire()
        queued = [asyncio.ensure_future(pace.acquire()) for _ in range(3)]
        await asyncio.sleep(0)  # they reserve 0.1, 0.2 and 0.3 and wait
        pace.on_throttle(first)  # nothing measured: the pace drops to 3/4 of 10/s
        released.set()
        return list(await asyncio.gather(*queued))

    tickets = asyncio.run(run())
    assert waits[:3] == pytest.approx([0.1, 0.2, 0.3])
    interval = 1.0 / (10.0 * DECREASE_FACTOR)
    assert sorted(waits[3:]) == pytest.approx([interval, 2 * interval, 3 * interval])
    assert tickets == [1, 1, 1]  # sent at the new pace: their 429s would count


# -- decrease -----------------------------------------------------------------------------


def test_a_429_drops_the_pace_below_the_measured_throughput_not_the_ceiling() -> None:
    pace, _ = throttled_at(ceiling=1000.0, per_second=20.0)
    assert pace.level == pytest.approx(20.0)
    assert pace.rate == pytest.approx(20.0 * DECREASE_FACTOR)


def test_only_the_last_second_is_measured() -> None:
    pace, fake = make_pace(ceiling=1000.0)
    start_times(pace, fake, 1)
    succeed_for(pace, fake, 3.0, 40.0)
    succeed_for(pace, fake, 1.0, 10.0)
    assert pace.measured_throughput() == pytest.approx(10.0)


def test_a_young_run_is_measured_over_its_own_age() -> None:
    pace, fake = make_pace(ceiling=1000.0)
    start_times(pace, fake, 1)
    succeed_for(pace, fake, 0.1, 200.0)
    # Twenty successes in a tenth of a second is 200/s, not 20/s.
    assert pace.measured_throughput() == pytest.approx(200.0)


def test_a_pace_below_the_measured_throughput_drops_from_itself() -> None:
    pace, fake = throttled_at(ceiling=1000.0, per_second=20.0)  # now 15/s
    succeed_for(pace, fake, 1.0, 40.0)  # the server confirmed more than the pace
    rate = pace.rate
    pace.on_throttle()
    assert pace.rate == pytest.approx(rate * DECREASE_FACTOR)


def test_a_429_before_anything_succeeded_drops_the_configured_pace() -> None:
    pace, fake = make_pace(ceiling=10.0)
    start_times(pace, fake, 1)
    pace.on_throttle()
    assert pace.rate == pytest.approx(10.0 * DECREASE_FACTOR)
    # The slot reserved at the old pace (t=0.1) is not kept: the next one is a new interval
    # after the last request that went out.
    assert start_times(pace, fake, 2) == pytest.approx([1 / pace.rate, 2 / pace.rate])


def test_429s_from_requests_sent_at_the_old_pace_count_once() -> None:
    pace, _ = make_pace(ceiling=8.0)

    async def run() -> list[int]:
        return list(await asyncio.gather(*(pace.acquire() for _ in range(8))))

    tickets = asyncio.run(run())
    for ticket in tickets:  # all eight in flight come back 429
        pace.on_throttle(ticket)
    assert pace.rate == pytest.approx(8.0 * DECREASE_FACTOR)

    later = asyncio.run(pace.acquire())
    pace.on_throttle(later)  # sent at the new pace: a new signal
    assert pace.rate == pytest.approx(8.0 * DECREASE_FACTOR**2)


def test_rate_never_falls_below_the_floor() -> None:
    pace, _ = make_pace(ceiling=10.0, floor=0.5)
    for _ in range(50):
        pace.on_throttle()
    assert pace.rate == pytest.approx(0.5)


def test_a_floor_above_the_ceiling_is_clamped_to_it() -> None:
    pace, _ = make_pace(ceiling=0.2, floor=0.5)
    pace.on_throttle()
    assert pace.rate == pytest.approx(0.2)


# -- recovery -----------------------------------------------------------------------------


def test_successes_climb_back_by_a_fraction_of_the_level_not_of_the_ceiling() -> None:
    pace, _ = throttled_at(ceiling=1000.0, per_second=20.0)
    low = 20.0 * DECREASE_FACTOR
    step = 20.0 / INCREASE_STEPS
    rates = []
    for _ in range(3):
        pace.on_success()
        rates.append(pace.rate)
    assert rates == pytest.approx([low + step, low + 2 * step, low + 3 * step])


def test_past_the_level_the_steps_grow_with_the_pace() -> None:
    pace, _ = throttled_at(ceiling=1000.0, per_second=20.0)
    while pace.rate < 40.0:
        pace.on_success()
    before = pace.rate
    pace.on_success()
    assert pace.rate == pytest.approx(before * (1 + 1 / INCREASE_STEPS))


def test_after_a_single_429_the_pace_regains_the_ceiling_in_bounded_successes() -> None:
    pace, _ = throttled_at(ceiling=1000.0, per_second=20.0)
    # Back to the level additively, then by a factor (1 + 1/steps) per success.
    to_level = INCREASE_STEPS * (1 - DECREASE_FACTOR)
    to_ceiling = math.log(1000.0 / 20.0) / math.log1p(1 / INCREASE_STEPS)
    bound = math.ceil(to_level + to_ceiling) + 2  # +2: rounding on the way
    needed = successes_to_reach_the_ceiling(pace, bound)
    assert needed > to_level  # one success does not undo the decrease
    assert pace.rate == 1000.0
    pace.on_success()
    assert pace.rate == 1000.0  # and never passes the ceiling


def test_a_scattered_429_while_climbing_back_keeps_the_level() -> None:
    pace, fake = throttled_at(ceiling=1000.0, per_second=40.0)
    succeed_for(pace, fake, 1.0, 32.0)  # climbing back, the server keeping up
    assert pace.rate < 40.0
    pace.on_throttle()
    assert pace.level == pytest.approx(40.0)  # not lowered to what this 429 measured
    assert pace.rate == pytest.approx(32.0 * DECREASE_FACTOR)


def test_a_trickle_of_scattered_429s_never_sinks_the_pace_below_half_the_level() -> None:
    pace, fake = throttled_at(ceiling=1000.0, per_second=40.0)
    for _ in range(30):
        succeed_for(pace, fake, 0.5, pace.rate)  # the server confirms whatever is sent
        pace.on_throttle()
    assert pace.level == pytest.approx(40.0)
    assert pace.rate >= SCATTERED_HOLD * 40.0


def test_a_429_where_the_server_confirmed_under_half_the_pace_lowers_the_level() -> None:
    pace, fake = throttled_at(ceiling=1000.0, per_second=40.0)
    succeed_for(pace, fake, 1.0, 5.0)  # the limit fell far below what it was
    pace.on_throttle()
    assert pace.level == pytest.approx(5.0)
    assert pace.rate == pytest.approx(5.0 * DECREASE_FACTOR)


def test_after_scattered_429s_the_pace_regains_the_ceiling() -> None:
    pace, fake = throttled_at(ceiling=1000.0, per_second=40.0)
    for _ in range(5):
        succeed_for(pace, fake, 0.5, pace.rate)
        pace.on_throttle()
    assert pace.level == pytest.approx(40.0)
    # From at least half the level back to it additively, then by a factor per success.
    to_level = INCREASE_STEPS * (1 - SCATTERED_HOLD)
    to_ceiling = math.log(1000.0 / 40.0) / math.log1p(1 / INCREASE_STEPS)
    successes_to_reach_the_ceiling(pace, math.ceil(to_level + to_ceiling) + 2)
    assert pace.rate == 1000.0


@pytest.mark.parametrize("ceiling", [0.0, -1.0, float("inf"), float("nan")])
def test_an_unusable_ceiling_is_refused(ceiling: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Pace(ceiling)
