"""Turn validated lines into the fewest `share` mutations (SPEC.md, Validation and Grouping).

Pure: no I/O. The sheet may hold a million lines, so every per-line step is a numpy pass over
integer columns; Python loops run only over mutations, over conflicting lines and over the
levels of the service-list encoding described below.

Rules, in order:

1. Only lines that validation accepted (`Lines.valid`) take part.
2. Exact duplicates: a line asking exactly what an earlier line asks (same device, service,
   email key, action, scripting, notify) rides on that earlier line. `duplicate_of` names the
   earlier line and `line_mutation` repeats its mutation (or -1 if it is not sent). Duplicates
   never enter `Plan.problems`: SPEC reports them "with the status and code of the row it
   repeats", which is only known after execution, so the caller copies them from the first
   line and writes `duplicate_message(row)` as the message. A duplicate of a conflicting line
   is therefore reported as a conflict too.
3. Conflicts: two distinct requests for the same (device, email key) whose scopes overlap (the
   same service, or either is whole-device) and whose action, scripting or notify differ.
   Every such line is marked `conflict`, names the other rows (the first ten) and why, and is
   not sent: guessing which row the admin meant would be worse than doing neither.
4. Grouping, per device. For each email, its whole-device request is one call signature
   ("device", action, scripting, notify); its service requests with the same scripting and
   notify form one signature (services with their own actions, scripting, notify), because a
   single call carries several services each with its own action. All emails of a device
   with the same signature share one mutation, so a device gets exactly as many mutations as
   it has distinct per-email signatures: the minimum, since two different signatures can
   never be one call. The top-level `action` of a services call is their common action, or
   ADD when they mix: the server applies each service's own action, so the top-level one
   only has to be a legal value.
5. Order: mutations sort by device id, then signature (whole-device calls by action,
   scripting, notify; then services calls, fewer services first, then by service id and
   action, then scripting, notify); emails within a mutation sort by key, each written as on
   its first line. Ids count up in that order: M0001, M0002, ... (wider past M9999).
   Nothing depends on row order except which spelling of an address written two ways is
   sent.

Worked example (IDs shortened; blank options take the defaults scripting=false, notify=true):

    row  device  service  email    action  scripting
    2    D1               ann@x    ADD
    3    D1               bob@x    ADD
    4    D1               cat@x    ADD     true
    5    D1      S1       dan@x    ADD
    6    D1      S2       dan@x    REMOVE
    7    D1      S1       eve@x    ADD
    8    D1      S2       eve@x    REMOVE
    9    D2               ann@x    REMOVE
    10   D1               Bob@x    ADD            -> duplicate of row 3, rides on M0001
    11   D2               ann@x    ADD            -> conflicts with row 9 (and 9 with 11)

    M0001  D1  [ann@x, bob@x]  ADD  scripting=false                      rows 2, 3, 10
    M0002  D1  [cat@x]         ADD  scripting=true                       row 4
    M0003  D1  [dan@x, eve@x]  ADD  services=[S1 ADD, S2 REMOVE]         rows 5-8
    (nothing is sent for D2)

`combine_devices` is the opt-in next step: whole-device mutations asking the same of the same
emails on different devices become one mutation naming several devices.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from batch_share.models import (
    ACTIONS,
    Action,
    BoolArray,
    IntArray,
    Lines,
    Mutation,
    Plan,
    ServiceChange,
    Status,
    distinct,
)
from batch_share.sheet.arrowtext import arrow_if_worth_it, to_bools, to_ints

# (device, service or None, email key, action, scripting, notify): one request, comparable.
IntentKey = tuple[str, str | None, str, Action, bool, bool]
StrArray = npt.NDArray[np.object_]  # Python strings, for fancy indexing without a loop

_REMOVE = ACTIONS.index(Action.REMOVE)
_N_ACTIONS = len(ACTIONS)
# scripting and notify travel together as one small integer: scripting * 2 + notify.
_N_OPTIONS = 4
# Packed keys stay below this so that one more multiplication cannot overflow int64.
_PACK_LIMIT = 2**62


def duplicate_message(row: int) -> str:
    """The report message of a line that repeats the line on spreadsheet row `row`."""
    return f"duplicate of row {row}"


def plan_lines(lines: Lines, *, row_numbers: Sequence[int] | IntArray) -> Plan:
    """Plan the mutations for the valid lines; see the module docstring for the rules.

    `row_numbers[lines.row[i]]` is the spreadsheet row of line i, used in conflict messages.
    `Plan.problems` holds only the conflicts found here; `lines.problems` is not copied.
    """
    rows = np.asarray(row_numbers, dtype=np.int64)
    valid_lines = np.flatnonzero(np.asarray(lines.valid, dtype=np.bool_))
    encoded = _encode(lines, valid_lines)
    entries = _merge_duplicates(encoded)
    conflicted = _find_conflicts(encoded, entries)
    problems = _conflict_problems(lines, rows, encoded, entries, conflicted)
    calls = _call_groups(encoded, entries, ~conflicted)
    mutations, call_mutation = _build_mutations(lines, encoded, entries, calls)

    entry_mutation = np.full(len(entries.first), -1, dtype=np.int64)
    entry_mutation[calls.entries] = call_mutation[calls.of_entry]
    line_mutation = np.full(len(lines), -1, dtype=np.int64)
    line_mutation[valid_lines] = entry_mutation[entries.of_line]
    duplicate_of = np.full(len(lines), -1, dtype=np.int64)
    first = entries.first[entries.of_line]
    repeats = first != np.arange(len(valid_lines))
    duplicate_of[valid_lines[repeats]] = valid_lines[first[repeats]]
    return Plan(
        mutations=mutations,
        line_mutation=line_mutation,
        duplicate_of=duplicate_of,
        problems=problems,
    )


def removal_count(lines: Lines, plan: Plan) -> int:
    """How many shares the plan removes, for the safety guard.

    Counts REMOVE lines that are sent, once each: a duplicate rides on its first line and
    removes nothing more. LEAVE gives up the caller's own access and does not count.
    """
    return int(np.count_nonzero(plan.sent_mask & (lines.action == _REMOVE)))


def expand(plan: Plan) -> list[IntentKey]:
    """Every request the mutations carry, one key per (device, service, email)."""
    keys: list[IntentKey] = []
    for mutation in plan.mutations:
        scopes: Sequence[tuple[str | None, Action]] = (
            [(None, mutation.action)]
            if mutation.services is None
            else [(s.service_id, s.action) for s in mutation.services]
        )
        keys.extend(
            (device, service, email.casefold(), action, mutation.scripting, mutation.notify)
            for device in mutation.device_ids
            for service, action in scopes
            for email in mutation.emails
        )
    return keys


def combine_devices(plan: Plan) -> Plan:
    """Merge whole-device mutations that ask the same of the same emails on several devices.

    Opt-in (the API's behaviour when one of several devices fails is undocumented). The merged
    mutation sits where its first member was and keeps that member's id and email spellings;
    its devices are sorted. Services calls never merge: service ids belong to one device.
    """
    merged: list[Mutation] = []
    devices: list[set[str]] = []
    new_index = np.empty(len(plan.mutations), dtype=np.int64)
    slot_of: dict[tuple[tuple[str, ...], Action, bool, bool], int] = {}
    for index, mutation in enumerate(plan.mutations):
        slot = len(merged)
        if mutation.services is None:
            same_call = (
                tuple(e.casefold() for e in mutation.emails),
                mutation.action,
                mutation.scripting,
                mutation.notify,
            )
            slot = slot_of.setdefault(same_call, slot)
        if slot == len(merged):
            merged.append(mutation)
            devices.append(set(mutation.device_ids))
        else:
            devices[slot].update(mutation.device_ids)
        new_index[index] = slot
    mutations = tuple(
        Mutation(
            id=m.id,
            device_ids=tuple(sorted(d)),
            emails=m.emails,
            action=m.action,
            scripting=m.scripting,
            notify=m.notify,
            services=m.services,
        )
        for m, d in zip(merged, devices, strict=True)
    )
    sent = plan.line_mutation >= 0
    line_mutation = plan.line_mutation.copy()
    line_mutation[sent] = new_index[plan.line_mutation[sent]]
    return Plan(
        mutations=mutations,
        line_mutation=line_mutation,
        duplicate_of=plan.duplicate_of,
        problems=plan.problems,
    )


@dataclass(frozen=True, slots=True)
class _Encoded:
    """The valid lines as integer columns whose order is the order of the strings they stand
    for, so that sorting integers sorts ids and emails and the plan ignores row order."""

    line: IntArray  # index into Lines
    device: IntArray  # rank in device_ids
    email: IntArray  # rank of the email key
    service: IntArray  # 0 = whole device, else 1 + rank in service_ids
    action: IntArray  # index into ACTIONS
    options: IntArray  # scripting * 2 + notify
    device_ids: StrArray  # distinct, sorted
    service_ids: StrArray  # distinct, sorted
    email_count: int  # distinct email keys

    @property
    def service_count(self) -> int:
        """Distinct values of `service`, whole device included."""
        return len(self.service_ids) + 1


@dataclass(frozen=True, slots=True)
class _Entries:
    """Distinct requests. Entry j's lines (valid-line positions) are
    `order[starts[j]:starts[j + 1]]`, the first of them `first[j]`.

    `simple` means every (device, email) has exactly one request and it is whole-device: the
    usual sheet, where there is nothing to merge, nothing to conflict and one call per email.
    """

    first: IntArray
    of_line: IntArray  # entry of each valid line
    order: IntArray
    starts: IntArray
    simple: bool


@dataclass(frozen=True, slots=True)
class _Calls:
    """Per-(device, email) call groups: the requests of one email that travel in one call.

    `entries` are the sent entries, `of_entry[i]` the group of `entries[i]`; `members` lists the
    sent entries grouped by call, `bounds` delimits each group within it.
    """

    entries: IntArray
    of_entry: IntArray
    device: IntArray
    email: IntArray
    options: IntArray
    signature: IntArray  # the service list with its actions; < _N_ACTIONS is whole-device
    signature_count: int
    first_line: IntArray  # earliest line of the group: whose spelling of the email is sent
    members: IntArray
    bounds: IntArray


def _encode(lines: Lines, valid_lines: IntArray) -> _Encoded:
    device_rank, device_ids = _string_ranks(lines.device_ids)
    service_rank, service_ids = _string_ranks(lines.service_ids)
    email_rank, email_keys = _string_ranks(lines.email_keys)
    device = lines.device[valid_lines]
    email = lines.email[valid_lines]
    if len(valid_lines) and (device.min() < 0 or email.min() < 0):
        raise ValueError("a line marked valid has no device or no email")
    service = lines.service[valid_lines]
    scripting = lines.scripting[valid_lines].astype(np.int64)
    notify = lines.notify[valid_lines].astype(np.int64)
    return _Encoded(
        line=valid_lines,
        device=device_rank[device],
        email=email_rank[email],
        # -1 (whole device) reads the padding slot, then becomes 0 anyway.
        service=np.where(service < 0, 0, np.append(service_rank, 0)[service] + 1),
        action=lines.action[valid_lines].astype(np.int64),
        options=scripting * 2 + notify,
        device_ids=device_ids,
        service_ids=service_ids,
        email_count=len(email_keys),
    )


def _string_ranks(table: Sequence[str]) -> tuple[IntArray, StrArray]:
    """Each string's rank among the distinct strings sorted; equal strings share a rank, so a
    table that lists one value twice (two spellings normalised alike) cannot split a group.

    Sorted by arrow in C++, several times faster than numpy on a million email keys. Arrow
    compares UTF-8 bytes, and UTF-8 byte order is code point order, which is how Python
    compares strings: the ranks are those of `_string_ranks_in_numpy`, the fallback for
    strings arrow cannot take.
    """
    if not table:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    texts = arrow_if_worth_it(table)
    if texts is None:
        return _string_ranks_in_numpy(table)
    import pyarrow.compute as pc  # noqa: PLC0415 - only big tables come this way

    sort_indices = pc.array_sort_indices(texts)
    order = to_ints(sort_indices)
    ordered = texts.take(sort_indices)  # an arrow argument: a numpy one would import pandas
    new = np.ones(len(table), dtype=np.bool_)
    new[1:] = to_bools(pc.not_equal(ordered[1:], ordered[:-1]))
    ranks = np.empty(len(table), dtype=np.int64)
    ranks[order] = np.cumsum(new) - 1
    distinct: StrArray = np.asarray(table, dtype=object)[order[new]]
    return ranks, distinct


def _string_ranks_in_numpy(table: Sequence[str]) -> tuple[IntArray, StrArray]:
    """`_string_ranks` for any Python strings, lone surrogates included."""
    width = max(map(len, table)) or 1
    # A fixed-width array converts and sorts in half the time of sorted() plus a dict, and
    # orders strings by code point exactly as Python does.
    text = np.fromiter(table, dtype=f"<U{width}", count=len(table))
    order = np.argsort(text)  # ties are equal strings: stability would change nothing
    ordered = text[order]
    new = np.ones(len(ordered), dtype=np.bool_)
    new[1:] = ordered[1:] != ordered[:-1]
    ranks = np.empty(len(table), dtype=np.int64)
    ranks[order] = np.cumsum(new) - 1
    distinct: StrArray = np.asarray(table, dtype=object)[order[new]]
    return ranks, distinct


def _pack(*columns: tuple[IntArray, int]) -> tuple[IntArray, int]:
    """Fold integer columns, each given with its exclusive bound, into one int64 key that sorts
    like the columns in order; returns the key and its bound. Re-numbers the partial key
    densely when the next column would overflow."""
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    bound = 1
    for values, size in columns:
        if bound * size >= _PACK_LIMIT:
            distinct, key = np.unique(key, return_inverse=True)
            bound = len(distinct)
        key = key * size + values
        bound *= size
    return key, bound


def _run_heads(sorted_key: IntArray) -> BoolArray:
    """True where a run of equal values begins in a sorted array."""
    heads = np.ones(len(sorted_key), dtype=np.bool_)
    heads[1:] = sorted_key[1:] != sorted_key[:-1]
    return heads


def _pair_key(encoded: _Encoded, device: IntArray, email: IntArray) -> tuple[IntArray, int]:
    """One integer per (device, email key): the unit conflicts and call groups live in."""
    return _pack((device, len(encoded.device_ids)), (email, encoded.email_count))


def _merge_duplicates(encoded: _Encoded) -> _Entries:
    count = len(encoded.line)
    pair, pair_bound = _pair_key(encoded, encoded.device, encoded.email)
    if not encoded.service.any():
        sorted_pair = np.sort(pair)
        if not (sorted_pair[1:] == sorted_pair[:-1]).any():
            identity = np.arange(count, dtype=np.int64)
            return _Entries(identity, identity, identity, np.arange(count + 1), simple=True)
    key, _ = _pack(
        (pair, pair_bound),
        (encoded.service, encoded.service_count),
        (encoded.action, _N_ACTIONS),
        (encoded.options, _N_OPTIONS),
    )
    # Stable, so each run starts with its earliest line: the one the others duplicate.
    order = np.argsort(key, kind="stable")
    heads = _run_heads(key[order])
    of_line = np.empty(count, dtype=np.int64)
    of_line[order] = np.cumsum(heads) - 1
    starts = np.flatnonzero(heads)
    return _Entries(
        first=order[starts],
        of_line=of_line,
        order=order,
        starts=np.append(starts, count),
        simple=False,
    )


def _pair_groups(encoded: _Encoded, entries: _Entries) -> tuple[IntArray, IntArray]:
    """For entries sorted by (device, email, ...): each entry's pair group and where each
    group starts."""
    first = entries.first
    pair, _ = _pair_key(encoded, encoded.device[first], encoded.email[first])
    heads = _run_heads(pair)
    return np.cumsum(heads) - 1, np.flatnonzero(heads)


def _find_conflicts(encoded: _Encoded, entries: _Entries) -> BoolArray:
    """Entries that clash with another entry of the same (device, email).

    Entries are sorted by (device, email, service, action, options). Each entry's (action,
    options) is one bit of a 12-bit mask; OR-ing the masks of whatever overlaps an entry and
    clearing its own bit leaves something exactly when an overlapping entry asks differently.
    """
    if entries.simple or len(entries.first) == 0:
        return np.zeros(len(entries.first), dtype=np.bool_)
    first = entries.first
    service = encoded.service[first]
    bit = np.left_shift(1, encoded.action[first] * _N_OPTIONS + encoded.options[first])
    whole = service == 0
    group, group_starts = _pair_groups(encoded, entries)
    everything = np.bitwise_or.reduceat(bit, group_starts)[group]
    whole_bits = np.bitwise_or.reduceat(np.where(whole, bit, 0), group_starts)[group]
    scope_heads = np.zeros(len(first), dtype=np.bool_)
    scope_heads[group_starts] = True
    scope_heads[1:] |= service[1:] != service[:-1]
    scope = np.cumsum(scope_heads) - 1
    same_service = np.bitwise_or.reduceat(bit, np.flatnonzero(scope_heads))[scope]
    overlapping = np.where(whole, everything, same_service | whole_bits)
    conflicted: BoolArray = (overlapping & ~bit) != 0
    return conflicted


def _conflict_problems(
    lines: Lines,
    rows: IntArray,
    encoded: _Encoded,
    entries: _Entries,
    conflicted: BoolArray,
) -> dict[int, tuple[Status, str, str]]:
    """One problem per conflicting entry, on its first line, naming every row (duplicates
    included) of the entries it clashes with. Runs only over groups that hold a conflict."""
    problems: dict[int, tuple[Status, str, str]] = {}
    if not conflicted.any():
        return problems
    first = entries.first
    service = encoded.service[first].tolist()
    action = encoded.action[first].tolist()
    options = encoded.options[first].tolist()
    line_rows = rows[lines.row[encoded.line]].tolist()
    group, group_starts = _pair_groups(encoded, entries)
    group_ends = np.append(group_starts[1:], len(first))

    def rows_of(entry: int) -> list[int]:
        positions = entries.order[entries.starts[entry] : entries.starts[entry + 1]]
        return [line_rows[p] for p in positions.tolist()]

    def why(x: int, y: int) -> str:
        reason = _difference(action[x], options[x], action[y], options[y])
        if service[x] != service[y]:
            reason += f" ({_scope(encoded, service[x])} vs {_scope(encoded, service[y])})"
        return reason

    for g in distinct(group[conflicted]).tolist():
        members = range(int(group_starts[g]), int(group_ends[g]))
        for x in members:
            if not conflicted[x]:
                continue
            partners = [
                y
                for y in members
                if y != x
                and (service[x] == 0 or service[y] in (0, service[x]))
                and (action[y], options[y]) != (action[x], options[x])
            ]
            own_row = line_rows[int(first[x])]
            other_rows = sorted({r for y in partners for r in rows_of(y)} - {own_row})
            reasons = list(dict.fromkeys(why(x, y) for y in partners))
            line = int(encoded.line[first[x]])
            problems[line] = (Status.CONFLICT, "conflict", _conflict_message(other_rows, reasons))
    return problems


# A message lists this many rows and reasons at most: a row repeated thousands of times must
# not make a report cell longer than a spreadsheet cell can hold.
_LISTED_ROWS = 10
_LISTED_REASONS = 3


def _conflict_message(other_rows: list[int], reasons: list[str]) -> str:
    why = "; ".join(reasons[:_LISTED_REASONS])
    if len(reasons) > _LISTED_REASONS:
        why += f"; and {len(reasons) - _LISTED_REASONS} more"
    if not other_rows:
        # Only possible when one cell names the same address twice with different requests,
        # which a sheet cannot express; say something true rather than list no rows.
        return f"conflicts with another line of the same row: {why}"
    label = "row" if len(other_rows) == 1 else "rows"
    listed = ", ".join(map(str, other_rows[:_LISTED_ROWS]))
    if len(other_rows) > _LISTED_ROWS:
        listed += f" and {len(other_rows) - _LISTED_ROWS} more"
    return f"conflicts with {label} {listed}: {why}"


def _difference(action: int, options: int, other_action: int, other_options: int) -> str:
    if action != other_action:
        return f"{ACTIONS[action].value} vs {ACTIONS[other_action].value}"
    parts = []
    for name, mask in (("scripting", 2), ("notify", 1)):
        if (options ^ other_options) & mask:
            parts.append(f"{name} {_flag(options & mask)} vs {_flag(other_options & mask)}")
    return ", ".join(parts)


def _flag(value: int) -> str:
    return "true" if value else "false"


def _scope(encoded: _Encoded, service: int) -> str:
    return "whole device" if service == 0 else f"service {encoded.service_ids[service - 1]}"


def _call_groups(encoded: _Encoded, entries: _Entries, sent: BoolArray) -> _Calls:
    """Gather the sent entries into call groups: per (device, email), the whole-device request,
    and the service requests sharing scripting and notify. Conflicts are already gone, so a
    whole-device group holds one entry and a services group names each service once."""
    sent_entries = np.flatnonzero(sent)
    first = entries.first[sent_entries]
    device = encoded.device[first]
    email = encoded.email[first]
    service = encoded.service[first]
    action = encoded.action[first]
    options = encoded.options[first]
    line = encoded.line[first]
    if entries.simple:
        each = np.arange(len(sent_entries), dtype=np.int64)
        return _Calls(
            entries=sent_entries,
            of_entry=each,
            device=device,
            email=email,
            options=options,
            signature=action,
            signature_count=_N_ACTIONS,
            first_line=line,
            members=sent_entries,
            bounds=np.arange(len(sent_entries) + 1),
        )
    call_key, call_bound = _pack(
        (device, len(encoded.device_ids)),
        (email, encoded.email_count),
        ((service > 0).astype(np.int64), 2),
        (options, _N_OPTIONS),
    )
    key, _ = _pack((call_key, call_bound), (service, encoded.service_count))
    order = np.argsort(key, kind="stable")
    heads = _run_heads(call_key[order])
    starts = np.flatnonzero(heads)
    of_sorted = np.cumsum(heads) - 1
    of_entry = np.empty(len(sent_entries), dtype=np.int64)
    of_entry[order] = of_sorted
    position = np.arange(len(order)) - starts[of_sorted]
    code = service[order] * _N_ACTIONS + action[order]
    prefix, signature_count = _sequence_ids(code, position, encoded.service_count * _N_ACTIONS)
    bounds = np.append(starts, len(order))
    head = order[starts]
    return _Calls(
        entries=sent_entries,
        of_entry=of_entry,
        device=device[head],
        email=email[head],
        options=options[head],
        signature=prefix[bounds[1:] - 1],
        signature_count=signature_count,
        first_line=np.minimum.reduceat(line[order], starts) if len(starts) else starts,
        members=sent_entries[order],
        bounds=bounds,
    )


def _sequence_ids(code: IntArray, position: IntArray, alphabet: int) -> tuple[IntArray, int]:
    """Number every prefix of the code sequences, exactly and without Python per sequence.

    `code[i]` is element `position[i]` of its sequence, and element p - 1 sits at i - 1. The
    one-element prefix's id is its code; a longer prefix's id is the dense rank of (id of the
    prefix one shorter, last code) among prefixes of its length, offset past every id handed
    out before. Equal sequences get equal ids; shorter sequences get smaller ids, and equal
    lengths compare element-wise. The loop runs as often as the longest service list is long.
    """
    ids = code.copy()
    next_free = alphabet
    by_position = np.argsort(position, kind="stable")
    level_starts = np.searchsorted(
        position[by_position], np.arange(int(position.max(initial=0)) + 2)
    )
    for level in range(1, len(level_starts) - 1):
        at = by_position[level_starts[level] : level_starts[level + 1]]
        extended, _ = _pack((ids[at - 1], next_free), (code[at], alphabet))
        distinct, rank = np.unique(extended, return_inverse=True)
        ids[at] = next_free + rank
        next_free += len(distinct)
    return ids, next_free


def _build_mutations(
    lines: Lines, encoded: _Encoded, entries: _Entries, calls: _Calls
) -> tuple[tuple[Mutation, ...], IntArray]:
    """One mutation per distinct (device, signature, options); returns them in id order and
    the mutation of each call group."""
    if len(calls.device) == 0:
        return (), np.zeros(0, dtype=np.int64)
    mutation_key, mutation_bound = _pack(
        (calls.device, len(encoded.device_ids)),
        (calls.signature, calls.signature_count),
        (calls.options, _N_OPTIONS),
    )
    by_email, _ = _pack((mutation_key, mutation_bound), (calls.email, encoded.email_count))
    # Unique keys (an email has one call group per signature), so any sort is deterministic.
    order = np.argsort(by_email)
    heads = _run_heads(mutation_key[order])
    call_mutation = np.empty(len(order), dtype=np.int64)
    call_mutation[order] = np.cumsum(heads) - 1
    starts = np.flatnonzero(heads)
    count = len(starts)
    bounds = np.append(starts, len(order))
    head = order[starts]
    spelling = np.asarray(lines.emails, dtype=object)
    # A tuple, so that slicing it makes each mutation's email tuple in one step.
    spelled = tuple(spelling[lines.email[calls.first_line[order]]].tolist())
    limits = bounds.tolist()
    actions, services = _call_shapes(encoded, entries, calls, calls.signature[head], head)
    device_ids = encoded.device_ids[calls.device[head]].tolist()
    width = max(4, len(str(count)))
    # map() over prepared lists: at 200k mutations a Python-level loop costs more than the
    # rest of the plan together.
    with _collector_paused():
        mutations = tuple(
            map(
                Mutation,
                map(f"M%0{width}d".__mod__, range(1, count + 1)),
                zip(device_ids),
                map(spelled.__getitem__, map(slice, limits[:-1], limits[1:])),
                actions,
                (calls.options[head] >> 1).astype(np.bool_).tolist(),
                (calls.options[head] & 1).astype(np.bool_).tolist(),
                services,
            )
        )
    return mutations, call_mutation


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    Hundreds of thousands of fresh tuples and mutations (none in a cycle) make the collector
    sweep the growing heap again and again for nothing, which costs a third of the plan at a
    million lines. Its previous state is restored, so a caller that turned it off keeps it off.

    On the way out the new objects are moved straight to the oldest generation (freeze, then
    unfreeze, which only relinks lists): otherwise the first young collection after the pause
    walks all of them at once, a tenth of a second at 200,000 mutations, to learn what is
    known already: they are long-lived. They stay collectable by full collections.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def _call_shapes(
    encoded: _Encoded, entries: _Entries, calls: _Calls, signature: IntArray, head: IntArray
) -> tuple[list[Action], list[tuple[ServiceChange, ...] | None]]:
    """Each mutation's top-level action and service list, worked out once per distinct
    signature from one call group that has it."""
    distinct, where, inverse = np.unique(signature, return_index=True, return_inverse=True)
    actions = np.empty(len(distinct), dtype=object)
    services = np.empty(len(distinct), dtype=object)
    for index, (value, call) in enumerate(
        zip(distinct.tolist(), head[where].tolist(), strict=True)
    ):
        if value < _N_ACTIONS:
            actions[index] = ACTIONS[value]
            continue
        members = entries.first[calls.members[calls.bounds[call] : calls.bounds[call + 1]]]
        changes = tuple(
            ServiceChange(encoded.service_ids[s - 1], ACTIONS[a])
            for s, a in zip(
                encoded.service[members].tolist(), encoded.action[members].tolist(), strict=True
            )
        )
        common = {change.action for change in changes}
        actions[index] = common.pop() if len(common) == 1 else Action.ADD
        services[index] = changes
    return actions[inverse].tolist(), services[inverse].tolist()
