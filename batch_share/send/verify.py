"""`run --verify`: read the devices back and fail any line whose effect is not visible.

An API that answers `true` has accepted the call; only reading the access lists back shows
the share really is (or is no longer) there. LEAVE is not checked: after leaving, the device
is no longer visible to the account, so there is nothing to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from batch_share.models import Action, Intent, Outcome, Status

READ_BATCH = 100  # device ids per `login { device(id: [...]) }` query


class AccessReader(Protocol):
    async def device_access(self, device_ids: Sequence[str]) -> list[dict[str, object]]: ...


@dataclass(frozen=True, slots=True)
class DeviceAccess:
    """Who can reach a device (email key -> scripting) and each of its services."""

    device: dict[str, bool] = field(default_factory=dict)
    services: dict[str, frozenset[str]] = field(default_factory=dict)


async def read_access(reader: AccessReader, device_ids: Iterable[str]) -> dict[str, DeviceAccess]:
    wanted = sorted(set(device_ids))
    access: dict[str, DeviceAccess] = {}
    for start in range(0, len(wanted), READ_BATCH):
        for device in await reader.device_access(wanted[start : start + READ_BATCH]):
            access[str(device.get("id"))] = _parse(device)
    return access


def _emails(entries: object) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for entry in entries if isinstance(entries, list) else []:
        user = entry.get("user") if isinstance(entry, dict) else None
        email = user.get("email") if isinstance(user, dict) else None
        if isinstance(email, str):
            found[email.casefold()] = bool(entry.get("scripting"))
    return found


def _parse(device: Mapping[str, object]) -> DeviceAccess:
    services = device.get("services")
    return DeviceAccess(
        device=_emails(device.get("access")),
        services={
            str(service.get("id")): frozenset(_emails(service.get("access")))
            for service in (services if isinstance(services, list) else [])
            if isinstance(service, dict)
        },
    )


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
