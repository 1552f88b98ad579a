"""What the emulator saw, for tests to assert on: how many requests, how many `share` fields,
how many at once, and per request which share calls it carried.

Everything is updated on the server's event-loop thread only; tests read it from theirs
after their requests have finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ShareCall:
    """One executed `share` field. `error` is the message it failed with, None if it said true."""

    alias: str
    device_ids: tuple[str, ...]
    emails: tuple[str, ...]
    action: str
    services: tuple[tuple[str, str], ...] | None
    error: str | None = None


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request. `status` stays None while it is in flight and when it was dropped."""

    status: int | None = None
    dropped: bool = False
    share_calls: list[ShareCall] = field(default_factory=list)

    @property
    def share_fields(self) -> int:
        return len(self.share_calls)


@dataclass
class Counters:
    requests: int = 0
    share_fields: int = 0
    in_flight: int = 0
    peak_concurrency: int = 0
    dropped: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    log: list[RequestRecord] = field(default_factory=list)
    """One record per request, in arrival order."""

    @property
    def share_fields_per_request(self) -> list[int]:
        return [record.share_fields for record in self.log]

    @property
    def share_calls(self) -> list[ShareCall]:
        """Every share field executed, in order, across requests."""
        return [call for record in self.log for call in record.share_calls]

    def reset(self) -> None:
        """Zero everything in place, so references held elsewhere stay live. `in_flight` is
        kept: requests still running will decrement it when they finish."""
        self.requests = self.share_fields = self.dropped = 0
        self.peak_concurrency = self.in_flight
        self.status_counts.clear()
        self.log.clear()

    def begin(self) -> RequestRecord:
        record = RequestRecord()
        self.requests += 1
        self.in_flight += 1
        self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        self.log.append(record)
        return record

    def answered(self, record: RequestRecord, status: int) -> None:
        record.status = status
        self.status_counts[status] = self.status_counts.get(status, 0) + 1

    def dropped_connection(self, record: RequestRecord) -> None:
        record.dropped = True
        self.dropped += 1

    def share_executed(self, record: RequestRecord, call: ShareCall) -> None:
        record.share_calls.append(call)
        self.share_fields += 1

    def end(self) -> None:
        self.in_flight -= 1
