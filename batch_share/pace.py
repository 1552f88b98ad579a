"""The request pace shared by every worker: a one-token bucket whose rate adapts (AIMD).

Requests are spaced `1/rate` apart across all workers. The rate starts at the ceiling
(`--rate`); a 429 halves it (multiplicative decrease) and each successful request adds a
twentieth of the ceiling back (additive increase). So a server that really allows less than
the ceiling is probed in a gentle sawtooth just under its limit, while scattered 429s cost a
moment: from half the ceiling, ten successes bring the pace back, so a run never stays slow
because of a few throttled requests.

The bucket holds a single token on purpose: after an idle spell workers resume at the pace,
never with a burst that would earn a fresh round of 429s.

`Retry-After` is not handled here: it belongs to the request that was throttled (its retry
waits at least that long), not to every worker.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

DECREASE_FACTOR = 0.5
# Successes needed to climb from nothing to the ceiling; see the module docstring.
INCREASE_STEPS = 20


class Pace:
    """Shared, adaptive spacing of request starts.

    `acquire()` returns a ticket naming the pace the request was started under. Pass it to
    `on_throttle` so that a burst of 429s answering requests that were all sent at the old
    pace counts as one signal, not as one halving each: with eight requests in flight, eight
    halvings would drop the pace to the floor for what was a single moment of congestion.
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
        self._clock = clock
        self._sleep = sleep
        self._next_start = -math.inf
        self._generation = 0

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

    async def acquire(self) -> int:
        """Wait for this request's start slot; returns the ticket for `on_throttle`.

        The slot is reserved before sleeping, so concurrent callers line up one interval
        apart without a lock; a caller cancelled while waiting only leaves an unused slot.
        """
        now = self._clock()
        start = max(now, self._next_start)
        self._next_start = start + 1.0 / self._rate
        ticket = self._generation
        if start > now:
            await self._sleep(start - now)
        return ticket

    def on_throttle(self, ticket: int | None = None) -> None:
        """A request got 429: halve the pace, not below the floor.

        A `ticket` from before the latest decrease is ignored: that request was paced at the
        old rate and its 429 reports congestion that has already been answered.
        """
        if ticket is not None and ticket != self._generation:
            return
        self._rate = max(self._floor, self._rate * DECREASE_FACTOR)
        self._generation += 1

    def on_success(self) -> None:
        """A request went through: climb back towards the ceiling."""
        self._rate = min(self._ceiling, self._rate + self._ceiling / INCREASE_STEPS)
