"""`run --verify`: read the devices back and fail any line whose effect is not visible.

An API that answers `true` has accepted the call; only reading the access lists back shows
the share really is (or is no longer) there. LEAVE is not checked: after leaving, the device
is no longer visible to the account, so there is nothing to read.
"""

from __future__ import annotations

from collections.abc import Mapping

from batch_share.models import Action, DeviceAccess, Intent, Outcome, Status
from batch_share.send.account import read_access

__all__ = ["check", "not_applied", "read_access"]


def check(intent: Intent, access: DeviceAccess | None) -> str | None:
    """Why `intent` is not visible in `access`, or None when it is (or cannot be checked)."""
    if intent.action is Action.LEAVE:
        return None
    if access is None:
        return f"device {intent.device_id} could not be read back"
    key = intent.email_key
    if intent.service_id is None:
        present = key in access.device
        if intent.action is Action.ADD and not present:
            return f"{intent.email} has no access to device {intent.device_id} on read-back"
        if intent.action is Action.ADD and access.device[key] != intent.scripting:
            return f"{intent.email} has scripting={str(access.device[key]).lower()} on read-back"
        if intent.action is Action.REMOVE and present:
            return f"{intent.email} still has access to device {intent.device_id} on read-back"
        return None
    present = key in access.services.get(intent.service_id, frozenset())
    if intent.action is Action.ADD and not present:
        return f"{intent.email} has no access to service {intent.service_id} on read-back"
    if intent.action is Action.REMOVE and present:
        return f"{intent.email} still has access to service {intent.service_id} on read-back"
    return None


def not_applied(
    intents: Mapping[int, Intent],
    outcomes: Mapping[int, Outcome],
    access: Mapping[str, DeviceAccess],
) -> dict[int, Outcome]:
    """Replacement outcomes for succeeded lines whose effect is not visible."""
    failed: dict[int, Outcome] = {}
    for line, intent in intents.items():
        outcome = outcomes.get(line)
        if outcome is None or outcome.status is not Status.SUCCEEDED:
            continue
        reason = check(intent, access.get(intent.device_id))
        if reason is not None:
            failed[line] = Outcome(Status.FAILED, "not-applied", reason, outcome.attempts)
    return failed
