"""Planner: duplicates, conflicts, grouping into the fewest mutations, removal counting.

Properties compare the planner with a naive model written here from SPEC.md: pairwise
conflict checks and per-email call signatures over plain `Intent` objects.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_share.models import (
    ACTIONS,
    Action,
    IntArray,
    Intent,
    Lines,
    Mutation,
    Plan,
    ServiceChange,
    Status,
)
from batch_share.plan.grouping import (
    IntentKey,
    combine_devices,
    duplicate_message,
    expand,
    plan_lines,
    removal_count,
)

ADD, REMOVE, LEAVE = Action.ADD, Action.REMOVE, Action.LEAVE
DEVICES = ("80:00:00:00:00:00:00:0A", "80:00:00:00:00:00:00:0B", "80:00:00:00:00:00:01:00")
SERVICES = ("80:00:00:00:00:00:0A:01", "80:00:00:00:00:00:0A:02", "80:00:00:00:00:00:0A:03")
EMAILS = (
    "ann@example.com",
    "Ann@Example.com",
    "bob@example.com",
    "BOB@EXAMPLE.COM",
    "cat@example.com",
    "dan@example.com",
)
D1, D2 = "D1", "D2"
S1, S2 = "S1", "S2"

# Mostly-default options and mostly ADD, so that a fair share of examples has few conflicts.
intent_strategy = st.builds(
    Intent,
    device_id=st.sampled_from(DEVICES),
    service_id=st.sampled_from((None, None, *SERVICES)),
    email=st.sampled_from(EMAILS),
    action=st.sampled_from((ADD, ADD, ADD, REMOVE, REMOVE, LEAVE)),
    scripting=st.sampled_from((False, False, True)),
    notify=st.sampled_from((True, True, False)),
)
# Service requests, notify left at its default: long service lists shared by several emails.
service_intent_strategy = st.builds(
    Intent,
    device_id=st.sampled_from(DEVICES[:2]),
    service_id=st.sampled_from(SERVICES),
    email=st.sampled_from(EMAILS),
    action=st.sampled_from((ADD, ADD, REMOVE)),
    scripting=st.sampled_from((False, False, False, True)),
)


@st.composite
def lines_strategy(
    draw: st.DrawFn, intent: st.SearchStrategy[Intent]
) -> tuple[list[Intent], Lines]:
    """Intents, and their Lines with some marked invalid as validation would."""
    intents = draw(st.lists(intent, max_size=24))
    valid = draw(st.lists(st.sampled_from((True, True, True, False)), min_size=len(intents)))
    lines = Lines.from_intents(intents)
    mask = np.asarray(valid[: len(intents)], dtype=np.bool_)
    return intents, dataclasses.replace(lines, valid=mask)


any_lines = st.one_of(lines_strategy(intent_strategy), lines_strategy(service_intent_strategy))
# Tests never assert on wall-clock time; a loaded machine must not fail them.
no_deadline = settings(deadline=None)


def rows_for(lines: Lines) -> IntArray:
    """Spreadsheet row numbers of data rows 0, 1, ...: the header is on row 1."""
    return np.arange(2, len(lines) + 2)


def plan_of(lines: Lines) -> Plan:
    return plan_lines(lines, row_numbers=rows_for(lines))


# ---------------------------------------------------------------------------- naive model


def key(intent: Intent) -> IntentKey:
    return (
        intent.device_id,
        intent.service_id,
        intent.email_key,
        intent.action,
        intent.scripting,
        intent.notify,
    )


def clash(a: Intent, b: Intent) -> bool:
    """SPEC: same device and email, overlapping scope, and not the same request."""
    overlap = a.service_id is None or b.service_id is None or a.service_id == b.service_id
    same_call = (a.action, a.scripting, a.notify) == (b.action, b.scripting, b.notify)
    return a.device_id == b.device_id and a.email_key == b.email_key and overlap and not same_call


def valid_indices(lines: Lines) -> list[int]:
    return [int(i) for i in np.flatnonzero(lines.valid)]


def clashing_lines(intents: Sequence[Intent], lines: Lines) -> dict[int, set[int]]:
    """Each valid line that clashes, with the valid lines it clashes with."""
    valid = valid_indices(lines)
    partners: dict[int, set[int]] = {}
    for i in valid:
        others = {j for j in valid if clash(intents[i], intents[j])}
        if others:
            partners[i] = others
    return partners


def sent_intents(intents: Sequence[Intent], lines: Lines) -> set[IntentKey]:
    clashing = clashing_lines(intents, lines)
    return {key(intents[i]) for i in valid_indices(lines) if i not in clashing}


def signatures_by_device(keys: set[IntentKey]) -> dict[str, set[object]]:
    """Per device, the distinct per-email call signatures (planner docstring, rule 4)."""
    per_email: dict[tuple[str, str, bool, bool], set[tuple[str, Action]]] = defaultdict(set)
    signatures: dict[str, set[object]] = defaultdict(set)
    for device, service, email, action, scripting, notify in keys:
        if service is None:
            signatures[device].add(("device", action, scripting, notify))
        else:
            per_email[device, email, scripting, notify].add((service, action))
    for (device, _, scripting, notify), services in per_email.items():
        signatures[device].add(("services", frozenset(services), scripting, notify))
    return signatures


def mutation_intents(mutation: Mutation) -> set[IntentKey]:
    plan = Plan((mutation,), np.zeros(0, np.int64), np.zeros(0, np.int64), {})
    return set(expand(plan))


def conflicted(plan: Plan) -> set[int]:
    """Lines reported as conflicts: marked, or duplicates of a marked line."""
    marked = {i for i, (status, _, _) in plan.problems.items() if status is Status.CONFLICT}
    repeats = {int(i) for i in np.flatnonzero(plan.duplicate_of >= 0)}
    return marked | {i for i in repeats if int(plan.duplicate_of[i]) in marked}


def assert_same_plan(a: Plan, b: Plan) -> None:
    assert a.mutations == b.mutations
    assert a.line_mutation.tolist() == b.line_mutation.tolist()
    assert a.duplicate_of.tolist() == b.duplicate_of.tolist()
    assert a.problems == b.problems


# ------------------------------------------------------------------------------ properties


@no_deadline
@given(any_lines)
def test_no_intent_is_lost_or_invented(case: tuple[list[Intent], Lines]) -> None:
    intents, lines = case
    expanded = expand(plan_of(lines))
    assert len(expanded) == len(set(expanded)), "an intent is sent twice"
    assert set(expanded) == sent_intents(intents, lines)


@no_deadline
@given(any_lines)
def test_every_sent_line_rides_on_a_mutation_that_carries_it(
    case: tuple[list[Intent], Lines],
) -> None:
    intents, lines = case
    plan = plan_of(lines)
    clashing = clashing_lines(intents, lines)
    first_seen: dict[IntentKey, int] = {}
    for i, intent in enumerate(intents):
        mutation = int(plan.line_mutation[i])
        duplicate_of = int(plan.duplicate_of[i])
        if not lines.valid[i]:
            assert (mutation, duplicate_of) == (-1, -1)
            continue
        expected_first = first_seen.setdefault(key(intent), i)
        assert duplicate_of == (-1 if expected_first == i else expected_first)
        if i in clashing:
            assert mutation == -1
        else:
            assert mutation >= 0
            assert key(intent) in mutation_intents(plan.mutations[mutation])
        if duplicate_of >= 0:
            assert mutation == plan.line_mutation[duplicate_of]


@no_deadline
@given(any_lines)
def test_a_mutation_asks_the_same_of_every_email_it_names(
    case: tuple[list[Intent], Lines],
) -> None:
    intents, lines = case
    plan = plan_of(lines)
    assert [m.id for m in plan.mutations] == [
        f"M{n:04d}" for n in range(1, len(plan.mutations) + 1)
    ]
    # Sorted by device, and on each device whole-device calls before services calls.
    order = [(m.device_ids[0], m.services is not None) for m in plan.mutations]
    assert order == sorted(order)
    sent = sent_intents(intents, lines)
    for mutation in plan.mutations:
        assert len(mutation.device_ids) == 1
        keys = [e.casefold() for e in mutation.emails]
        assert keys == sorted(set(keys)), "emails are sorted by key and named once"
        (device,) = mutation.device_ids
        carried = {(service, action) for _, service, _, action, _, _ in mutation_intents(mutation)}
        for email in keys:
            # Everything this email asks on this device with these options, in this call's
            # scope, is exactly what the call carries: nothing mixed in, nothing left out.
            asked = {
                (service, action)
                for d, service, e, action, scripting, notify in sent
                if (d, e, scripting, notify) == (device, email, mutation.scripting, mutation.notify)
                and (service is None) == (mutation.services is None)
            }
            assert asked == carried
        if mutation.services is not None:
            service_ids = [s.service_id for s in mutation.services]
            assert service_ids == sorted(set(service_ids))
            actions = {s.action for s in mutation.services}
            assert mutation.action == (actions.pop() if len(actions) == 1 else ADD)


@no_deadline
@given(any_lines)
def test_each_device_gets_one_mutation_per_distinct_signature(
    case: tuple[list[Intent], Lines],
) -> None:
    intents, lines = case
    plan = plan_of(lines)
    per_device: dict[str, int] = defaultdict(int)
    for mutation in plan.mutations:
        per_device[mutation.device_ids[0]] += 1
    expected = signatures_by_device(sent_intents(intents, lines))
    assert per_device == {device: len(sigs) for device, sigs in expected.items()}


@no_deadline
@given(any_lines)
def test_conflicts_are_marked_never_sent_and_name_the_other_rows(
    case: tuple[list[Intent], Lines],
) -> None:
    intents, lines = case
    plan = plan_of(lines)
    clashing = clashing_lines(intents, lines)
    assert conflicted(plan) == set(clashing)
    for line, (status, code, message) in plan.problems.items():
        assert (status, code) == (Status.CONFLICT, "conflict")
        assert plan.duplicate_of[line] == -1, "duplicates never enter problems"
        assert plan.line_mutation[line] == -1
        named = re.fullmatch(r"conflicts with rows? ([\d, ]+?)(?: and (\d+) more)?: .+", message)
        assert named is not None, message
        listed = [int(r) for r in named.group(1).split(", ")]
        more = int(named.group(2) or 0)
        expected = sorted({j + 2 for j in clashing[line]})
        assert (listed, more) == (expected[:10], len(expected[10:]))


@no_deadline
@given(any_lines)
def test_same_input_gives_the_same_plan(case: tuple[list[Intent], Lines]) -> None:
    _, lines = case
    assert_same_plan(plan_of(lines), plan_of(lines))


@no_deadline
@given(
    st.one_of(
        st.lists(intent_strategy, max_size=24), st.lists(service_intent_strategy, max_size=24)
    ).flatmap(lambda xs: st.tuples(st.just(xs), st.permutations(range(len(xs)))))
)
def test_row_order_does_not_change_the_mutations(
    case: tuple[list[Intent], list[int]],
) -> None:
    written, permutation = case
    # Lower case: the one thing row order may change is which spelling of an address is sent.
    intents = [dataclasses.replace(i, email=i.email_key) for i in written]
    shuffled = [intents[p] for p in permutation]
    plan = plan_of(Lines.from_intents(intents))
    shuffled_plan = plan_of(Lines.from_intents(shuffled))
    assert shuffled_plan.mutations == plan.mutations
    assert [int(plan.line_mutation[p]) for p in permutation] == shuffled_plan.line_mutation.tolist()
    assert {permutation[j] for j in conflicted(shuffled_plan)} == conflicted(plan)


@no_deadline
@given(any_lines, st.data())
def test_repeating_a_line_changes_no_mutation(
    case: tuple[list[Intent], Lines], data: st.DataObject
) -> None:
    """Also pits the shortcut for sheets without repeats against the general path."""
    intents, lines = case
    valid = valid_indices(lines)
    if not valid:
        return
    repeated = data.draw(st.sampled_from(valid))
    longer = Lines.from_intents([*intents, intents[repeated]])
    longer = dataclasses.replace(longer, valid=np.append(lines.valid, True))
    plan, longer_plan = plan_of(lines), plan_of(longer)
    assert longer_plan.mutations == plan.mutations
    assert longer_plan.line_mutation.tolist() == [
        *plan.line_mutation.tolist(),
        plan.line_mutation[repeated],
    ]
    first = repeated if plan.duplicate_of[repeated] < 0 else int(plan.duplicate_of[repeated])
    assert longer_plan.duplicate_of[-1] == first


@no_deadline
@given(any_lines)
def test_combining_devices_keeps_every_intent_and_one_option_set_per_call(
    case: tuple[list[Intent], Lines],
) -> None:
    intents, lines = case
    plan = plan_of(lines)
    combined = combine_devices(plan)
    assert Counter(expand(combined)) == Counter(expand(plan))
    assert {m.id for m in combined.mutations} <= {m.id for m in plan.mutations}
    assert [m.id for m in combined.mutations] == sorted(m.id for m in combined.mutations)
    whole_device_calls = set()
    for mutation in combined.mutations:
        assert list(mutation.device_ids) == sorted(set(mutation.device_ids))
        if mutation.services is not None:
            assert len(mutation.device_ids) == 1
            continue
        call = (
            tuple(e.casefold() for e in mutation.emails),
            mutation.action,
            mutation.scripting,
            mutation.notify,
        )
        assert call not in whole_device_calls, "two whole-device calls left unmerged"
        whole_device_calls.add(call)
    for i in np.flatnonzero(combined.line_mutation >= 0).tolist():
        carried = mutation_intents(combined.mutations[int(combined.line_mutation[i])])
        assert key(intents[i]) in carried
    assert (combined.line_mutation >= 0).tolist() == (plan.line_mutation >= 0).tolist()
    assert_same_plan(combined, combine_devices(plan))


# -------------------------------------------------------------------------------- examples


WORKED_EXAMPLE = [
    Intent(D1, None, "ann@x", ADD),  # row 2
    Intent(D1, None, "bob@x", ADD),  # row 3
    Intent(D1, None, "cat@x", ADD, scripting=True),  # row 4
    Intent(D1, S1, "dan@x", ADD),  # row 5
    Intent(D1, S2, "dan@x", REMOVE),  # row 6
    Intent(D1, S1, "eve@x", ADD),  # row 7
    Intent(D1, S2, "eve@x", REMOVE),  # row 8
    Intent(D2, None, "ann@x", REMOVE),  # row 9
    Intent(D1, None, "Bob@x", ADD),  # row 10
    Intent(D2, None, "ann@x", ADD),  # row 11
]


def test_the_worked_example_of_the_module_docstring() -> None:
    lines = Lines.from_intents(WORKED_EXAMPLE)
    plan = plan_of(lines)
    assert plan.mutations == (
        Mutation("M0001", (D1,), ("ann@x", "bob@x"), ADD, scripting=False, notify=True),
        Mutation("M0002", (D1,), ("cat@x",), ADD, scripting=True, notify=True),
        Mutation(
            "M0003",
            (D1,),
            ("dan@x", "eve@x"),
            ADD,
            scripting=False,
            notify=True,
            services=(ServiceChange(S1, ADD), ServiceChange(S2, REMOVE)),
        ),
    )
    assert plan.line_mutation.tolist() == [0, 0, 1, 2, 2, 2, 2, -1, 0, -1]
    assert plan.duplicate_of.tolist() == [-1] * 8 + [1, -1]
    assert plan.problems == {
        7: (Status.CONFLICT, "conflict", "conflicts with row 11: REMOVE vs ADD"),
        9: (Status.CONFLICT, "conflict", "conflicts with row 9: ADD vs REMOVE"),
    }
    assert removal_count(lines, plan) == 2


def test_a_services_call_carries_each_service_with_its_own_action() -> None:
    lines = Lines.from_intents(
        [
            Intent(D1, S2, "ann@x", REMOVE),
            Intent(D1, S1, "ann@x", ADD),
            Intent(D1, S1, "bob@x", REMOVE),
        ]
    )
    # Shorter service lists come first (module docstring, rule 5).
    (removal, mixed) = plan_of(lines).mutations
    assert mixed.services == (ServiceChange(S1, ADD), ServiceChange(S2, REMOVE))
    assert mixed.action is ADD
    assert mixed.variables()["services"] == [
        {"serviceId": S1, "action": "ADD"},
        {"serviceId": S2, "action": "REMOVE"},
    ]
    assert removal.services == (ServiceChange(S1, REMOVE),)
    assert removal.action is REMOVE
    assert removal.emails == ("bob@x",)


def test_an_address_is_sent_as_written_on_its_first_line() -> None:
    lines = Lines.from_intents(
        [
            Intent(D1, S2, "Ann@X", ADD),
            Intent(D1, S1, "ann@x", ADD),
            Intent(D1, S2, "ANN@x", ADD),
            Intent(D2, None, "bob@x", ADD),
            Intent(D2, None, "Bob@x", ADD),
        ]
    )
    assert [m.emails for m in plan_of(lines).mutations] == [("Ann@X",), ("bob@x",)]


def test_whole_device_and_service_requests_of_one_email_are_separate_calls() -> None:
    plan = plan_of(
        Lines.from_intents([Intent(D1, S1, "ann@x", ADD), Intent(D1, None, "ann@x", ADD)])
    )
    assert [m.services is None for m in plan.mutations] == [True, False]
    assert plan.problems == {}


def test_conflict_messages_say_what_differs_and_where() -> None:
    lines = Lines.from_intents(
        [
            Intent(D1, None, "ann@x", REMOVE),  # row 2
            Intent(D1, S1, "ann@x", ADD),  # row 3
            Intent(D1, S2, "ann@x", REMOVE, notify=False),  # row 4
            Intent(D2, None, "bob@x", ADD, scripting=True),  # row 5
            Intent(D2, None, "BOB@x", ADD),  # row 6
            Intent(D2, None, "bob@x", ADD, scripting=True),  # row 7: repeats row 5
        ]
    )
    plan = plan_of(lines)
    assert {line: message for line, (_, _, message) in plan.problems.items()} == {
        0: "conflicts with rows 3, 4: REMOVE vs ADD (whole device vs service S1); "
        "notify true vs false (whole device vs service S2)",
        1: "conflicts with row 2: ADD vs REMOVE (service S1 vs whole device)",
        2: "conflicts with row 2: notify false vs true (service S2 vs whole device)",
        3: "conflicts with row 6: scripting true vs false",
        4: "conflicts with rows 5, 7: scripting false vs true",
    }
    assert plan.duplicate_of.tolist() == [-1, -1, -1, -1, -1, 3]
    assert plan.line_mutation.tolist() == [-1] * 6
    assert plan.mutations == ()


def test_a_conflict_with_many_rows_names_the_first_ten() -> None:
    """A report cell must stay readable (and within a spreadsheet's cell size)."""
    intents = [Intent(D1, None, "ann@x", ADD)] * 25 + [
        Intent(D1, S1, "ann@x", REMOVE),
        Intent(D1, S2, "ann@x", REMOVE),
        Intent(D1, "S3", "ann@x", REMOVE),
        Intent(D1, "S4", "ann@x", REMOVE, scripting=True),
    ]
    plan = plan_of(Lines.from_intents(intents))
    assert plan.problems[0][2] == (
        "conflicts with rows 27, 28, 29, 30: ADD vs REMOVE (whole device vs service S1); "
        "ADD vs REMOVE (whole device vs service S2); "
        "ADD vs REMOVE (whole device vs service S3); and 1 more"
    )
    assert plan.problems[25][2] == (
        "conflicts with rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 15 more: "
        "REMOVE vs ADD (service S1 vs whole device)"
    )


def test_messages_use_the_spreadsheet_rows_of_the_lines() -> None:
    # One sheet row may hold several emails, so lines map to rows through `lines.row`.
    lines = Lines.from_intents(
        [
            Intent(D1, None, "ann@x", ADD),
            Intent(D1, None, "bob@x", ADD),
            Intent(D1, None, "ann@x", REMOVE),
        ]
    )
    lines = dataclasses.replace(lines, row=np.array([0, 0, 1]))
    plan = plan_lines(lines, row_numbers=[7, 12])
    assert plan.problems[0][2] == "conflicts with row 12: ADD vs REMOVE"
    assert plan.problems[2][2] == "conflicts with row 7: REMOVE vs ADD"


def test_an_address_repeated_in_one_cell_is_a_duplicate_of_its_own_row() -> None:
    lines = Lines.from_intents([Intent(D1, None, "ann@x", ADD), Intent(D1, None, "Ann@x", ADD)])
    lines = dataclasses.replace(lines, row=np.array([0, 0]))
    plan = plan_lines(lines, row_numbers=[4])
    assert plan.duplicate_of.tolist() == [-1, 0]
    assert plan.line_mutation.tolist() == [0, 0]
    assert plan.mutations[0].emails == ("ann@x",)
    assert duplicate_message(4) == "duplicate of row 4"


def test_conflicting_lines_on_one_row_still_get_a_message() -> None:
    # A sheet cannot produce this (a row has one action), but hand-built lines can.
    lines = Lines.from_intents([Intent(D1, None, "ann@x", ADD), Intent(D1, None, "ann@x", REMOVE)])
    lines = dataclasses.replace(lines, row=np.array([0, 0]))
    plan = plan_lines(lines, row_numbers=[4])
    assert plan.problems[0][2] == "conflicts with another line of the same row: ADD vs REMOVE"


def test_invalid_lines_and_their_problems_are_left_to_the_caller() -> None:
    lines = Lines.from_intents([Intent(D1, None, "ann@x", ADD), Intent(D1, None, "ann@x", REMOVE)])
    lines = dataclasses.replace(
        lines,
        valid=np.array([True, False]),
        problems={1: (Status.INVALID, "unknown-action", "unknown action")},
    )
    plan = plan_of(lines)
    assert plan.problems == {}
    assert plan.line_mutation.tolist() == [0, -1]


def test_nothing_valid_plans_nothing() -> None:
    for lines in (
        Lines.from_intents([]),
        dataclasses.replace(
            Lines.from_intents([Intent(D1, None, "ann@x", ADD)]), valid=np.array([False])
        ),
    ):
        plan = plan_of(lines)
        assert plan.mutations == ()
        assert (plan.line_mutation == -1).all()
        assert removal_count(lines, plan) == 0


def test_a_valid_line_without_a_device_is_a_caller_bug() -> None:
    lines = Lines.from_intents([Intent(D1, None, "ann@x", ADD)])
    lines = dataclasses.replace(lines, device=np.array([-1]))
    with pytest.raises(ValueError, match="no device"):
        plan_of(lines)


def test_removal_count_counts_shares_removed_not_leave_nor_repeats() -> None:
    lines = Lines.from_intents(
        [
            Intent(D1, None, "ann@x", REMOVE),
            Intent(D1, None, "ann@x", REMOVE),  # repeat: one share
            Intent(D1, S1, "bob@x", REMOVE),
            Intent(D1, S2, "bob@x", ADD),
            Intent(D2, None, "me@x", LEAVE),
            Intent(D2, None, "cat@x", REMOVE),
            Intent(D2, None, "cat@x", ADD),  # conflict: neither is sent
            Intent(D2, None, "dan@x", REMOVE),  # invalid below
        ]
    )
    lines = dataclasses.replace(lines, valid=np.array([True] * 7 + [False]))
    plan = plan_of(lines)
    assert removal_count(lines, plan) == 2
    assert removal_count(lines, combine_devices(plan)) == 2


def test_ids_widen_past_9999_mutations() -> None:
    intents = [Intent(f"dev{n:05d}", None, "ann@x", ADD) for n in range(10_000)]
    plan = plan_of(Lines.from_intents(intents))
    assert plan.mutations[0].id == "M00001"
    assert plan.mutations[-1].id == "M10000"
    assert plan.mutations[-1].device_ids == ("dev09999",)


def test_a_large_sheet_without_repeats_groups_by_device() -> None:
    """Columns built directly, as the validator hands them over: 3000 devices x 4 emails."""
    devices, per_device = 3000, 4
    count = devices * per_device
    rng = np.random.default_rng(7)
    emails = tuple(f"User{n}@Example.com" for n in range(50))
    device = np.repeat(rng.permutation(devices), per_device)
    email = (np.tile(np.arange(per_device), devices) + device * 3) % len(emails)
    lines = Lines(
        row=np.arange(count),
        email=email,
        emails=emails,
        email_keys=tuple(e.casefold() for e in emails),
        device=device,
        device_ids=tuple(f"80:00:00:00:00:00:{n >> 8:02X}:{n & 255:02X}" for n in range(devices)),
        service=np.full(count, -1),
        service_ids=(),
        action=np.where(device % 10 == 0, ACTIONS.index(REMOVE), 0),
        scripting=device % 7 == 0,
        notify=np.ones(count, dtype=np.bool_),
        valid=np.ones(count, dtype=np.bool_),
    )
    plan = plan_of(lines)
    assert len(plan.mutations) == devices
    assert [m.device_ids[0] for m in plan.mutations] == sorted(lines.device_ids)
    for line in rng.choice(count, 200, replace=False).tolist():
        mutation = plan.mutations[int(plan.line_mutation[line])]
        assert mutation.device_ids == (lines.device_ids[int(device[line])],)
        assert lines.emails[int(email[line])] in mutation.emails
        assert mutation.scripting == bool(device[line] % 7 == 0)
    assert removal_count(lines, plan) == devices // 10 * per_device


def test_combining_devices_merges_identical_whole_device_calls_only() -> None:
    lines = Lines.from_intents(
        [
            Intent(D2, None, "ann@x", ADD),
            Intent(D2, None, "bob@x", ADD),
            Intent(D1, None, "Ann@x", ADD),
            Intent(D1, None, "bob@x", ADD),
            Intent(D1, None, "cat@x", REMOVE),
            Intent(D1, S1, "dan@x", ADD),
            Intent(D2, S1, "dan@x", ADD),
        ]
    )
    plan = plan_of(lines)
    assert [m.id for m in plan.mutations] == ["M0001", "M0002", "M0003", "M0004", "M0005"]
    combined = combine_devices(plan)
    assert combined.mutations == (
        Mutation("M0001", (D1, D2), ("Ann@x", "bob@x"), ADD, scripting=False, notify=True),
        Mutation("M0002", (D1,), ("cat@x",), REMOVE, scripting=False, notify=True),
        Mutation(
            "M0003",
            (D1,),
            ("dan@x",),
            ADD,
            scripting=False,
            notify=True,
            services=(ServiceChange(S1, ADD),),
        ),
        Mutation(
            "M0005",
            (D2,),
            ("dan@x",),
            ADD,
            scripting=False,
            notify=True,
            services=(ServiceChange(S1, ADD),),
        ),
    )
    assert combined.line_mutation.tolist() == [0, 0, 0, 0, 1, 2, 3]
    assert combined.mutations[0].variables()["deviceIds"] == [D1, D2]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(DEVICES), min_size=1), st.sampled_from(list(Action)))
def test_a_line_asking_one_thing_is_one_intent(devices: list[str], action: Action) -> None:
    lines = Lines.from_intents([Intent(d, None, "ann@x", action) for d in devices])
    plan = plan_of(lines)
    assert len(plan.mutations) == len(set(devices))
    assert sorted(m.device_ids[0] for m in plan.mutations) == sorted(set(devices))


def test_removals_differing_only_in_scripting_are_one_request_not_a_conflict() -> None:
    from batch_share.models import Sheet
    from batch_share.sheet.validate import validate

    device = "80:00:00:00:01:00:00:01"
    sheet = Sheet.from_rows(
        ["device_id", "email", "action", "scripting"],
        [[device, "d@example.com", "remove", ""], [device, "d@example.com", "remove", "x"]],
    )
    lines = validate(sheet).lines

    plan = plan_lines(lines, row_numbers=sheet.row_numbers)

    assert plan.problems == {}
    assert list(plan.duplicate_of) == [-1, 0]
    assert len(plan.mutations) == 1
