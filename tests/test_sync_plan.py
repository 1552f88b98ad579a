"""The pure sync difference, checked by applying it: whatever the account holds today and
whatever the roster says, sending the planned mutations (removals first, as the executor
does) to the emulator's share model leaves exactly the roster's access."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_share.emulator.faults import Faults
from batch_share.emulator.fleet import ACCOUNT_EMAIL, Fleet, device_id, service_id
from batch_share.emulator.state import SeedGrant, ShareRequest, ShareState
from batch_share.models import DeviceAccess, Mutation, Sheet
from batch_share.plan.planned import plan_loaded
from batch_share.plan.sync import device_diffs, plan_sync, roster_lines

DEVICES = (1, 2)
SERVICES = (1, 2)
EMAILS = ("ann@example.com", "bob@example.com", "cat@example.com", ACCOUNT_EMAIL)

# One share: (device number, service number or 0 for the whole device, email, scripting).
shares = st.tuples(
    st.sampled_from(DEVICES),
    st.sampled_from((0, *SERVICES)),
    st.sampled_from(EMAILS),
    st.booleans(),
)


def account_state(today: list[tuple[int, int, str, bool]]) -> ShareState:
    fleet = Fleet.build(
        devices=len(DEVICES), services_per_device=len(SERVICES), owner=ACCOUNT_EMAIL
    )
    state = ShareState(fleet, ACCOUNT_EMAIL)
    for device, service, email, scripting in today:
        sid = service_id(device, service) if service else None
        state.grant(SeedGrant(device_id(device), email, scripting and not sid, sid))
    return state


def read_back(state: ShareState) -> dict[str, DeviceAccess]:
    access = {}
    for device in DEVICES:
        grants = state.device_grants(device_id(device))
        access[device_id(device)] = DeviceAccess(
            device={email: grant.scripting for email, grant in grants.items()},
            services={
                service_id(device, s): frozenset(
                    state.effective_service_grants(service_id(device, s))
                )
                for s in SERVICES
            },
        )
    return access


def apply(state: ShareState, phases: list[list[Mutation]]) -> None:
    for phase in phases:
        for mutation in phase:
            services = (
                None
                if mutation.services is None
                else tuple((s.service_id, s.action.value) for s in mutation.services)
            )
            request = ShareRequest(
                mutation.device_ids,
                mutation.emails,
                mutation.action.value,
                mutation.scripting,
                services,
            )
            state.share(request, Faults())


@settings(max_examples=200, deadline=None)
@given(today=st.lists(shares, max_size=12), wanted=st.lists(shares, min_size=1, max_size=10))
def test_applying_the_difference_leaves_exactly_the_roster(
    today: list[tuple[int, int, str, bool]], wanted: list[tuple[int, int, str, bool]]
) -> None:
    # A roster never shares with the key's own account: the API refuses that.
    wanted = [w for w in wanted if w[2] != ACCOUNT_EMAIL] or [(1, 0, "ann@example.com", False)]
    rows = [
        [
            device_id(device),
            service_id(device, service) if service else "",
            email,
            "yes" if scripting and not service else "no",
        ]
        for device, service, email, scripting in wanted
    ]
    roster = roster_lines(
        plan_loaded(Sheet.from_rows(["device_id", "service_id", "email", "scripting"], rows))
    )
    state = account_state(today)
    planned = plan_sync(roster, read_back(state), scope={r[0] for r in rows}, account=ACCOUNT_EMAIL)
    if planned.plan.problems:
        return  # a conflicting roster (one email, two scriptings) holds its removals back
    # The executor sends a phase's mutations in any order: apply each phase back to front,
    # so a plan that leaves order to chance (no `later`) must not depend on it.
    later = planned.plan.later or len(planned.plan.mutations)
    mutations = list(planned.plan.mutations)
    apply(state, [mutations[:later][::-1], mutations[later:][::-1]])

    after = read_back(state)
    for device in {r[0] for r in rows}:
        whole = {
            email: bool(scripting)
            for number, service, email, scripting in wanted
            if device_id(number) == device and not service
        }
        mine = {e: s for e, s in after[device].device.items() if e == ACCOUNT_EMAIL}
        assert after[device].device == {**whole, **mine}
        for s in SERVICES:
            sid = service_id(int(device[-1]), s)
            listed = {
                email
                for number, service, email, _ in wanted
                if device_id(number) == device and service == s
            }
            owner = {ACCOUNT_EMAIL} & after[device].service_only(sid)
            assert after[device].service_only(sid) == (listed - set(whole)) | owner
    # A second sync of the same roster has nothing left to do.
    again = plan_sync(roster, after, scope={r[0] for r in rows}, account=ACCOUNT_EMAIL)
    assert again.plan.mutations == ()
    assert all(not d.added and not d.removed for d in device_diffs(again))
