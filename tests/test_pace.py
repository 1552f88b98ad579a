"""The shared pace, on a fake clock: sleeping advances time, so every check is exact."""

from __future__ import annotations

import asyncio

import pytest
from helpers import FakeTime

from batch_share.pace import INCREASE_STEPS, Pace


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


def test_a_429_halves_the_rate_and_spacing_follows() -> None:
    pace, fake = make_pace(ceiling=10.0)
    start_times(pace, fake, 1)  # reserves the next slot at the old spacing, t=0.1
    pace.on_throttle()
    assert pace.rate == pytest.approx(5.0)
    assert start_times(pace, fake, 3) == pytest.approx([0.1, 0.3, 0.5])


def test_rate_never_falls_below_the_floor() -> None:
    pace, _ = make_pace(ceiling=10.0, floor=0.5)
    for _ in range(50):
        pace.on_throttle()
    assert pace.rate == pytest.approx(0.5)


def test_a_floor_above_the_ceiling_is_clamped_to_it() -> None:
    pace, _ = make_pace(ceiling=0.2, floor=0.5)
    pace.on_throttle()
    assert pace.rate == pytest.approx(0.2)


def test_429s_from_requests_sent_at_the_old_pace_count_once() -> None:
    pace, _ = make_pace(ceiling=8.0)

    async def run() -> list[int]:
        return list(await asyncio.gather(*(pace.acquire() for _ in range(8))))

    tickets = asyncio.run(run())
    for ticket in tickets:  # all eight in flight come back 429
        pace.on_throttle(ticket)
    assert pace.rate == pytest.approx(4.0)

    later = asyncio.run(pace.acquire())
    pace.on_throttle(later)  # sent at the new pace: a new signal
    assert pace.rate == pytest.approx(2.0)


def test_successes_climb_back_to_the_ceiling_additively_and_stop_there() -> None:
    pace, _ = make_pace(ceiling=10.0)
    pace.on_throttle()
    rates = []
    for _ in range(INCREASE_STEPS):
        pace.on_success()
        rates.append(pace.rate)
    step = 10.0 / INCREASE_STEPS
    assert rates[:3] == pytest.approx([5.0 + step, 5.0 + 2 * step, 5.0 + 3 * step])
    assert rates[INCREASE_STEPS // 2 - 1] == pytest.approx(10.0)
    assert max(rates) == pytest.approx(10.0)
    assert rates[-1] == pytest.approx(10.0)


def test_recovery_from_the_floor_is_bounded() -> None:
    pace, _ = make_pace(ceiling=10.0, floor=0.5)
    for _ in range(10):
        pace.on_throttle()
    for _ in range(INCREASE_STEPS):
        pace.on_success()
    assert pace.rate == pytest.approx(10.0)


@pytest.mark.parametrize("ceiling", [0.0, -1.0, float("inf"), float("nan")])
def test_an_unusable_ceiling_is_refused(ceiling: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Pace(ceiling)
