"""Fault injection: the ways a real API misbehaves, switched on by CLI flags or by tests.

`Faults` is deliberately a plain mutable dataclass: a test flips a field on a running server
(`emulator.faults.p503 = 1.0`) and the next request sees it, because every request reads the
fields afresh. Probabilities are per request, drawn from the emulator's seeded RNG.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields


@dataclass
class Faults:
    """What the server does wrong. The order a request meets them in: latency, dropped
    connection, redirect, HTML page, rate limit, 503, 429, then signature checking and
    execution, after which the answer may be truncated, padded huge or trickled out."""

    latency: float = 0.0
    """Seconds every request waits before anything else happens."""
    p503: float = 0.0
    p429: float = 0.0
    retry_after: float = 1.0
    """Retry-After sent with `p429` answers (the rate limit computes its own)."""
    p_drop: float = 0.0
    """Close the connection without answering, before doing anything."""
    rate_limit: float | None = None
    """Requests per second (token bucket, bursts up to one second's worth); beyond it 429."""
    failing_devices: set[str] = field(default_factory=set)
    """A share naming one of these devices fails with an internal error, every time."""
    unregistered_emails: set[str] = field(default_factory=set)
    """Addresses treated as having no remote.it account, besides `@unregistered.example`."""
    alias_cap: int | None = None
    """Most root fields one document may hold; beyond it HTTP 400 "query too complex"."""
    p_apply_then_drop: float = 0.0
    """Execute the document, keep its effects, then close the connection without answering:
    the client cannot know what happened and must read back before resending."""
    silent_drop_devices: set[str] = field(default_factory=set)
    """A share on one of these devices answers true but stores nothing."""
    redirect_to: str | None = None
    """Answer every request 307 to this URL, as a moved API or a hijacked name would."""
    html_200: bool = False
    """Answer every request 200 with an HTML page, as a captive portal or a proxy does."""
    truncate_body: bool = False
    """Execute, then send only the first half of the JSON answer (with a matching length):
    a proxy that cut the answer short."""
    huge_body_bytes: int = 0
    """Execute, then stream the answer padded with whitespace to this many bytes, chunked,
    with no Content-Length: still valid JSON, only far too large."""
    trickle_seconds: float = 0.0
    """Execute, then send the answer one byte at a time, this many seconds apart: each read
    is quick, the whole answer is not."""

    def reset(self) -> None:
        """Back to no faults, in place, so references held elsewhere stay live."""
        for default_field in fields(Faults):
            setattr(self, default_field.name, getattr(Faults(), default_field.name))

    def validate(self) -> None:
        """Raise ValueError naming the first setting that makes no sense."""
        for name in ("p503", "p429", "p_drop", "p_apply_then_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability between 0 and 1, got {value}")
        for name in ("latency", "retry_after", "trickle_seconds", "huge_body_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive, got {self.rate_limit}")
        if self.alias_cap is not None and self.alias_cap < 1:
            raise ValueError(f"alias_cap must be at least 1, got {self.alias_cap}")
        if self.redirect_to is not None and not self.redirect_to.strip():
            raise ValueError("redirect_to must be a URL")

    def reshapes_answers(self) -> bool:
        """Whether answers are sent other than as the app wrote them."""
        return self.truncate_body or self.huge_body_bytes > 0 or self.trickle_seconds > 0

    def is_failing(self, device_id: str) -> bool:
        return device_id.upper() in {d.upper() for d in self.failing_devices}

    def is_silently_dropped(self, device_id: str) -> bool:
        return device_id.upper() in {d.upper() for d in self.silent_drop_devices}

    def is_unregistered(self, email: str) -> bool:
        return email.casefold() in {e.casefold() for e in self.unregistered_emails}


class RateLimiter:
    """Token bucket: `rate` tokens a second, holding at most one second's worth (at least 1),
    so a burst of `rate` requests passes and the rest are paced."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one will be available."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def retry_after_header(seconds: float, *, whole_seconds: bool) -> str:
    """Retry-After text. HTTP only allows whole seconds, and the rate limit sends those
    (rounded up, at least 1); the `retry_after` fault is sent as given so tests can ask for
    a fraction of a second and stay fast."""
    if whole_seconds:
        return str(max(1, math.ceil(seconds)))
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
