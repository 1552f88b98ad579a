"""The request pace shared by every worker: a one-token bucket whose rate adapts to 429s.

Requests are spaced `1/rate` apart across all workers. Until the server first answers 429
no limit is known, so the pace runs at the ceiling (`--rate`).

A 429 lowers the pace below the throughput the server was *measured* to confirm over the
last second, not below the configured pace: the configured pace can be fifty times the
server's limit (a ceiling of 1,000/s against a limit of 20/s), and halving from there takes
several halvings, each answered with its own burst of 429s, before it gets near the limit.
Confirmed throughput, by contrast, is about the limit itself once the pace exceeds it, so
one decrease lands just under the limit.

The throughput at which the server throttled is remembered as the *level*, and each
success adds back a small fraction of that level (not of the ceiling): the pace creeps back
up to the limit over tens of successes and overshoots it gently, so one success never
undoes a decrease. Past the level the step grows with the pace itself, so a limit that has
gone away, or a lone 429 from a server with none, is left behind geometrically: the pace
regains the ceiling in a bounded number of successes.

Some 429s come whatever the pace (a flaky proxy, a quota that other clients share). One
that arrives while the pace is still climbing back below the level, with the server
confirming more than half the pace, says nothing new about the limit: it lowers the pace
but keeps the level, and never drops the pace below half the level. Otherwise every such
429 would shrink both the pace and its steps, and a steady trickle of them would sink a run
to the floor.

The bucket holds a single token on purpose: after an idle spell workers resume at the pace,
never with a burst that would earn a fresh round of 429s.

`Retry-After` is not handled here: it belongs to the request that was throttled (its retry
waits at least that long), not to every worker.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

# The constants below were chosen for the case they must handle (the pace check of
# bench/run_speed.py): a server allowing 20 requests/s from a token bucket that holds one
# second's worth, 8 workers, a ceiling of 1,000/s, 500 requests. Targets: fewer than 5% of
# requests answered 429, confirmed throughput within 20% of the limit.
#
# One second of successes: ~20 samples at 20/s, an estimate good to a few percent, and
# recent enough to describe the pace that was just refused. A server bucket holding a
# second's worth cannot make a one-second window read far above the limit.
THROUGHPUT_WINDOW = 1.0
# When the 429 comes the pace has crept a little past the limit, so the measured throughput
# is the limit plus a few percent. Three quarters of it is safely below the limit (one
# decrease, not a cascade of them), and the server's bucket refills during the dip, so
# little of the throughput it costs is lost. A deeper cut (a half) leaves the run under the
# limit for longer, which only a server bucket large enough to repay the dip makes good; a
# shallower one (0.9) leaves too little room for the overshoot and earns more 429s.
DECREASE_FACTOR = 0.75
# Successes to climb the level's worth of pace. The climb from 3/4 of the level back to it
# takes 200 / 4 = 50 successes (2.5 s at 20/s); past it each success adds 1/200 of the pace,
# so the bucket refilled in the dip drains slowly and the next 429 comes some 3 s after the
# last: about one 429 per 60-70 successes (1.5%). The rest are the first round, while no
# limit is known: one per worker in flight, twice, since the first estimate, taken from the
# server's initial burst, is too high. Measured: 16-17 of ~517 requests answered 429 (3.3%),
# 20.3 confirmed requests/s. Half the steps climb twice as fast and cost 429s about twice
# as often; more steps cost fewer 429s but climb back more slowly after a scattered one.
INCREASE_STEPS = 200
# Fewer successes than this in the window measure nothing (a 429 before anything got
# through); the decrease then falls back to a fraction of the configured pace.
MIN_SAMPLES = 2
# A 429 that looks scattered (see the module docstring) never drops the pace below this
# fraction of the level; and one where the server confirmed under this fraction of the pace
# is not scattered: the limit really is lower than the level (it changed, or the first
# estimate was too high).
SCATTERED_HOLD = 0.5


class Pace:
    """Shared, adaptive spacing of request starts.

    `acquire()` returns a ticket naming the pace the request was started under. Pass it to
    `on_throttle` so that a burst of 429s answering requests that were all sent at the old
    pace counts as one signal, not as one decrease each: with eight requests in flight,
    eight decreases would drop the pace to the floor for what was a single moment of
    congestion.
    """

    def __init__(
        self,
        ceiling: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        floor: float = 0.5,
    ) -> None:
        if not (ceiling > 0 and math.isfinite(ceiling)):
            raise ValueError(f"the request rate must be a positive number, not {ceiling!r}")
        if not floor > 0:
            raise ValueError(f"the pace floor must be positive, not {floor!r}")
        self._ceiling = ceiling
        self._floor = min(floor, ceiling)
        self._rate = ceiling
        self._level: float | None = None
        self._clock = clock
        self._sleep = sleep
        self._next_start = -math.inf
        self._last_start = -math.inf
        self._first_start: float | None = None
        self._generation = 0
        self._successes: deque[float] = deque()

    @property
    def rate(self) -> float:
        """Current requests per second."""
        return self._rate

    @property
    def ceiling(self) -> float:
        return self._ceiling

    @property
    def floor(self) -> float:
        return self._floor

    @property
    def level(self) -> float | None:
        """The throughput (requests/s) at which the server last showed its limit; None
        until it has."""
        return self._level

    async def acquire(self) -> int:
        """Wait for this request's start slot; returns the ticket for `on_throttle`.

        The slot is reserved before sleeping, so concurrent callers line up one interval
        apart without a lock; a caller cancelled while waiting only leaves an unused slot.
        A caller whose slot was reserved at a pace that has since been lowered takes a new
        slot at the new pace: with eight workers queued a few intervals ahead, the old
        spacing would otherwise go on for the whole queue, past the server's limit.
        """
        while True:
            ticket = self._generation
            now = self._clock()
            if self._first_start is None:
                self._first_start = now
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self._rate
            if start > now:
                await self._sleep(start - now)
            if ticket == self._generation:
                self._last_start = start
                return ticket

    def on_throttle(self, ticket: int | None = None) -> None:
        """A request got 429: drop the pace below the confirmed throughput, not below the
        floor (nor, for a scattered 429, below half the level).

        A `ticket` from before the latest decrease is ignored: that request was paced at the
        old rate and its 429 reports congestion that has already been answered.
        """
        if ticket is not None and ticket != self._generation:
            return
        measured = self.measured_throughput()
        confirmed = self._rate if measured is None else min(self._rate, measured)
        if self._shows_the_limit(measured, confirmed):
            self._level = confirmed
        hold = SCATTERED_HOLD * self._level if self._level is not None else 0.0
        self._rate = max(self._floor, DECREASE_FACTOR * confirmed, hold)
        self._generation += 1
        # Slots queued at the old pace are taken again (see `acquire`), counted from the
        # last request that went out rather than from the end of the old queue.
        self._next_start = self._last_start + 1.0 / self._rate

    def on_success(self) -> None:
        """A request went through: count it, and climb back towards the ceiling."""
        now = self._clock()
        self._successes.append(now)
        self._forget_before(now - THROUGHPUT_WINDOW)
        if self._level is None:
            return  # never throttled: already at the ceiling
        step = max(self._rate, self._level) / INCREASE_STEPS
        self._rate = min(self._ceiling, self._rate + step)

    def measured_throughput(self) -> float | None:
        """Successes per second over the last `THROUGHPUT_WINDOW`, or None if too few.

        A run younger than the window is measured over its own age: dividing its first
        successes by the whole window would read a fast start as a slow server.
        """
        now = self._clock()
        self._forget_before(now - THROUGHPUT_WINDOW)
        if len(self._successes) < MIN_SAMPLES or self._first_start is None:
            return None
        span = min(THROUGHPUT_WINDOW, now - self._first_start)
        return len(self._successes) / span if span > 0 else None

    def _shows_the_limit(self, measured: float | None, confirmed: float) -> bool:
        """Whether this 429 tells where the server's limit is, rather than being scattered.

        The first one does, and so does one with nothing measured to judge it by; one at or
        past the level (the climb found the limit again); and one where the server
        confirmed under half the pace (the limit is lower than the level: it changed, or
        the first estimate was too high).
        """
        return (
            self._level is None
            or measured is None
            or self._rate >= self._level
            or confirmed < SCATTERED_HOLD * self._rate
        )

    def _forget_before(self, cutoff: float) -> None:
        while self._successes and self._successes[0] < cutoff:
            self._successes.popleft()
