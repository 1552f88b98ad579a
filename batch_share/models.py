"""Values that flow between the stages: loader -> validate -> planner -> executor -> report.

Two shapes live here on purpose. A sheet can hold a million rows, and a Python object per
row costs seconds at that size, so the per-row data travels as columns (`Sheet`, `Lines`):
numpy arrays of small integers that index into tables of unique strings. Work is done once
per unique value and broadcast with numpy. Objects are made only where they are few or
where a reader needs one: problems, mutations and execution outcomes, plus the `Intent`
view that tests and library users use to reason about single requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np
import numpy.typing as npt

# The real API; `--api-url` (env REMOTEIT_API_URL) points elsewhere, e.g. at the emulator.
DEFAULT_API_URL = "https://api.remote.it/graphql/v1"
# Mutations packed into one HTTP request unless told otherwise; README, Performance, says why.
PER_REQUEST_DEFAULT = 20

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Action(StrEnum):
    """The three things the `share` mutation can do; values are the GraphQL enum names."""

    ADD = "ADD"
    REMOVE = "REMOVE"
    LEAVE = "LEAVE"


# Actions are stored per line as small integers; this order is the code.
ACTIONS: tuple[Action, ...] = (Action.ADD, Action.REMOVE, Action.LEAVE)


class Status(StrEnum):
    """A report line's status (SPEC.md, Report)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID = "invalid"
    CONFLICT = "conflict"
    NOT_RUN = "not-run"


class ExitCode(IntEnum):
    """Process exit codes (SPEC.md, Exit codes)."""

    OK = 0
    SOME_ROWS_NOT_DONE = 1
    USAGE = 2
    AUTH_REFUSED = 3
    SAFETY_GUARD = 4
    INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Column:
    """One sheet column, dictionary-encoded.

    `values` holds each distinct cell text once; `codes[i]` is the index of data row i's text.
    `typed[k]` is True where `values[k]` came from a cell the spreadsheet stored as a number,
    date or time rather than text: such a cell in an ID column has been mangled even when its
    text happens to look like 16 hex digits, so the information must survive loading.
    """

    name: str
    codes: IntArray
    values: tuple[str, ...]
    typed: tuple[bool, ...] | None = None

    def is_typed(self, value_index: int) -> bool:
        return self.typed is not None and self.typed[value_index]


@dataclass(frozen=True, slots=True)
class Sheet:
    """A sheet read losslessly: every cell as the text the user typed.

    `row_numbers[i]` is the row number the user sees for data row i (header on row 1 means
    the first data row is 2); blank rows are already dropped and counted in `blank_rows`.
    """

    source: str
    sheet_name: str | None
    header: tuple[str, ...]
    header_row: int
    row_numbers: IntArray
    columns: tuple[Column, ...]
    blank_rows: int = 0

    @property
    def row_count(self) -> int:
        return len(self.row_numbers)

    def cell(self, column: int, row: int) -> str:
        col = self.columns[column]
        return col.values[int(col.codes[row])]

    @classmethod
    def from_rows(
        cls,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        source: str = "<rows>",
        first_row: int = 2,
    ) -> Sheet:
        """Build a sheet from plain text rows (tests, library users); row numbers count up
        from `first_row` with no blank rows. Short rows are padded with empty cells."""
        columns = []
        for index, name in enumerate(header):
            table: dict[str, int] = {}
            codes = [
                table.setdefault(row[index] if index < len(row) else "", len(table)) for row in rows
            ]
            columns.append(Column(name, np.asarray(codes, dtype=np.int64), tuple(table)))
        return cls(
            source=source,
            sheet_name=None,
            header=tuple(header),
            header_row=first_row - 1,
            row_numbers=np.arange(first_row, first_row + len(rows), dtype=np.int64),
            columns=tuple(columns),
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one cell, row or the file; data, never raised (frictionless style).

    `row` is the spreadsheet row number (0 for a file-level problem such as a missing
    column); `column` is the canonical column name (`device_id`, `email`, ...).
    """

    row: int
    column: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Intent:
    """One request: give (or take) one email's access to one device or service.

    The planner works on `Lines` columns for speed; this is the same information as one
    object, for tests, library users and the handful of places that need a single line.
    """

    device_id: str
    service_id: str | None
    email: str
    action: Action
    scripting: bool = False
    notify: bool = True

    @property
    def email_key(self) -> str:
        return self.email.casefold()


@dataclass(frozen=True, slots=True)
class Lines:
    """The report's backbone: one entry per (sheet row, email), in sheet order.

    Integer columns index into the string tables (`emails`, `device_ids`, `service_ids`);
    -1 means "none" (no parsable device, or a whole-device line with no service).
    `email_keys[k]` is the case-folded comparison key of `emails[k]`.
    `status`/`code`/`message` hold what validation decided for lines that will not be sent
    (`None` status = valid so far); planning adds duplicates and conflicts.
    """

    row: IntArray  # index into the sheet's data rows
    email: IntArray  # index into emails
    emails: tuple[str, ...]
    email_keys: tuple[str, ...]
    device: IntArray
    device_ids: tuple[str, ...]
    service: IntArray
    service_ids: tuple[str, ...]
    action: IntArray  # index into ACTIONS
    scripting: BoolArray
    notify: BoolArray
    valid: BoolArray
    problems: dict[int, tuple[Status, str, str]] = field(default_factory=dict)
    # Devices and services named rather than given by ID: the names as typed, and per line
    # an index into them (-1: none). None when the sheet names nothing.
    names: tuple[str, ...] = ()
    device_name: IntArray | None = None
    service_name: IntArray | None = None

    def __len__(self) -> int:
        return len(self.row)

    @classmethod
    def from_intents(cls, intents: Sequence[Intent]) -> Lines:
        """Lines for a list of valid intents, line i on data row i (tests, library users)."""

        def encode(values: Sequence[str | None]) -> tuple[IntArray, tuple[str, ...]]:
            table: dict[str, int] = {}
            codes = [-1 if v is None else table.setdefault(v, len(table)) for v in values]
            return np.asarray(codes, dtype=np.int64), tuple(table)

        email, emails = encode([i.email for i in intents])
        device, device_ids = encode([i.device_id for i in intents])
        service, service_ids = encode([i.service_id for i in intents])
        return cls(
            row=np.arange(len(intents), dtype=np.int64),
            email=email,
            emails=emails,
            email_keys=tuple(e.casefold() for e in emails),
            device=device,
            device_ids=device_ids,
            service=service,
            service_ids=service_ids,
            action=np.asarray([ACTIONS.index(i.action) for i in intents], dtype=np.int64),
            scripting=np.asarray([i.scripting for i in intents], dtype=np.bool_),
            notify=np.asarray([i.notify for i in intents], dtype=np.bool_),
            valid=np.ones(len(intents), dtype=np.bool_),
        )

    def intent(self, line: int) -> Intent:
        service = int(self.service[line])
        return Intent(
            device_id=self.device_ids[int(self.device[line])],
            service_id=self.service_ids[service] if service >= 0 else None,
            email=self.emails[int(self.email[line])],
            action=ACTIONS[int(self.action[line])],
            scripting=bool(self.scripting[line]),
            notify=bool(self.notify[line]),
        )


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """One entry of the `services` argument: touch only this service, with its own action."""

    service_id: str
    action: Action


@dataclass(frozen=True, slots=True)
class Mutation:
    """One `share` field: the unit the API answers true or an error for.

    `device_ids` has one entry unless cross-device batching put several devices with the
    same call together. `services` is None for a whole-device call.
    """

    id: str
    device_ids: tuple[str, ...]
    emails: tuple[str, ...]
    action: Action
    scripting: bool
    notify: bool
    services: tuple[ServiceChange, ...] | None = None

    def variables(self) -> dict[str, object]:
        """The `share` arguments as GraphQL variables: sheet text never enters query text."""
        variables: dict[str, object] = {
            "email": list(self.emails),
            "action": self.action.value,
            "scripting": self.scripting,
            "notify": self.notify,
        }
        if len(self.device_ids) == 1:
            variables["deviceId"] = self.device_ids[0]
        else:
            variables["deviceIds"] = list(self.device_ids)
        if self.services is not None:
            variables["services"] = [
                {"serviceId": s.service_id, "action": s.action.value} for s in self.services
            ]
        return variables


@dataclass(frozen=True, slots=True)
class Plan:
    """What will be sent, and which line goes out in which mutation.

    `line_mutation[i]` is the index into `mutations` that carries line i, or -1 when the line
    is not sent (invalid or conflict). A duplicate carries the mutation of the line it
    repeats, and `duplicate_of[i]` names that line (-1 for every other line); the duplicate
    itself adds nothing to the mutation and takes that line's outcome.
    """

    mutations: tuple[Mutation, ...]
    line_mutation: IntArray
    duplicate_of: IntArray
    problems: dict[int, tuple[Status, str, str]]
    # Mutations from this index on are sent only once every earlier one has its answer
    # (sync removes before it adds, see plan/sync.py); None: all at once.
    later: int | None = None

    @property
    def sent_mask(self) -> BoolArray:
        """Lines that go out themselves: carried by a mutation and not a duplicate."""
        return (self.line_mutation >= 0) & (self.duplicate_of < 0)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the server said about one (device, service, email) of one mutation."""

    status: Status
    code: str = ""
    message: str = ""
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Where a run stands, after each request; `rate` is the current pace (requests/s)."""

    mutations_done: int
    mutations_total: int
    keys_succeeded: int
    keys_failed: int
    keys_total: int
    requests: int
    retries: int
    rate: float


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device as the account lists it: enough to resolve names and to tell whose it is."""

    id: str
    name: str
    owner: str  # owner email, case-folded ("" if the API gives none)
    services: tuple[ServiceInfo, ...]


@dataclass(frozen=True, slots=True)
class DeviceAccess:
    """Who can reach a device today, as the API reads it back: whole-device access (email key
    -> scripting) and each service's access list (email keys; the API lists whole-device
    users there too)."""

    device: dict[str, bool] = field(default_factory=dict)
    services: dict[str, frozenset[str]] = field(default_factory=dict)

    def service_only(self, service_id: str) -> frozenset[str]:
        """Who reaches the service through a share of that service alone."""
        return self.services.get(service_id, frozenset()) - self.device.keys()


# Key of an outcome: (mutation id, device id, service id or None, email key).
OutcomeKey = tuple[str, str, str | None, str]


def mutation_keys(mutation: Mutation) -> Sequence[OutcomeKey]:
    """Every (device, service, email) a mutation speaks for, as outcome keys."""
    services: Sequence[str | None] = (
        [None] if mutation.services is None else [s.service_id for s in mutation.services]
    )
    return [
        (mutation.id, device, service, email.casefold())
        for device in mutation.device_ids
        for service in services
        for email in mutation.emails
    ]


def distinct(values: IntArray) -> IntArray:
    """`np.unique(values)` without its first-call import of numpy.ma (numpy 2 checks for a
    masked array there, which costs a hand run on a small sheet tens of milliseconds)."""
    ordered = np.sort(values)
    keep = np.ones(len(ordered), dtype=np.bool_)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]
