"""What `--verify` calls not applied, for every kind of line (pure)."""

from __future__ import annotations

import pytest

from batch_share.models import Action, DeviceAccess, Intent, Outcome, Status
from batch_share.send.verify import check, not_applied

DEVICE = "80:00:00:00:01:00:00:01"
SERVICE = "80:00:00:00:11:00:00:01"
TODAY = DeviceAccess(
    device={"ann@example.com": True, "bob@example.com": False},
    services={SERVICE: frozenset({"ann@example.com", "bob@example.com", "cat@example.com"})},
)


@pytest.mark.parametrize(
    ("intent", "reason"),
    [
        (Intent(DEVICE, None, "ann@example.com", Action.ADD, scripting=True), None),
        (Intent(DEVICE, None, "Ann@Example.com", Action.ADD, scripting=True), None),
        (Intent(DEVICE, None, "dan@example.com", Action.ADD), "has no access to device"),
        (Intent(DEVICE, None, "ann@example.com", Action.ADD), "has scripting=true"),
        (Intent(DEVICE, None, "bob@example.com", Action.REMOVE), "still has access to device"),
        (Intent(DEVICE, None, "dan@example.com", Action.REMOVE), None),
        (Intent(DEVICE, SERVICE, "cat@example.com", Action.ADD), None),
        (Intent(DEVICE, SERVICE, "dan@example.com", Action.ADD), "has no access to service"),
        (Intent(DEVICE, SERVICE, "cat@example.com", Action.REMOVE), "still has access to service"),
        (Intent(DEVICE, SERVICE, "dan@example.com", Action.REMOVE), None),
        (Intent(DEVICE, None, "me@example.com", Action.LEAVE), None),
    ],
)
def test_check_says_why_a_line_is_not_visible(intent: Intent, reason: str | None) -> None:
    found = check(intent, TODAY)
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert reason in found


def test_a_device_that_cannot_be_read_back_fails_its_lines_but_leave_is_never_checked() -> None:
    add = Intent(DEVICE, None, "ann@example.com", Action.ADD)
    leave = Intent(DEVICE, None, "me@example.com", Action.LEAVE)
    assert check(add, None) == f"device {DEVICE} could not be read back"
    assert check(leave, None) is None


def test_not_applied_replaces_only_succeeded_lines_and_keeps_their_attempts() -> None:
    intents = {
        0: Intent(DEVICE, None, "dan@example.com", Action.ADD),
        1: Intent(DEVICE, None, "eve@example.com", Action.ADD),
        2: Intent(DEVICE, None, "bob@example.com", Action.ADD),
    }
    outcomes = {
        0: Outcome(Status.SUCCEEDED, attempts=2),
        1: Outcome(Status.FAILED, "api-error", "refused", 1),
        2: Outcome(Status.SUCCEEDED, attempts=1),
    }

    replaced = not_applied(intents, outcomes, {DEVICE: TODAY})

    assert list(replaced) == [0]
    assert (replaced[0].status, replaced[0].code, replaced[0].attempts) == (
        Status.FAILED,
        "not-applied",
        2,
    )
