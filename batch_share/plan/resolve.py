"""Devices and services by name: turn the names a sheet uses into IDs (SPEC: Devices and
services by name). Pure: the caller lists the account (`send/account.list_devices`).

- Names match trimmed and case-insensitively, exactly: no fuzzy matching, because a near
  match that picks the wrong device shares it with the wrong people. An unknown name's
  message suggests the closest existing names instead; an ambiguous one lists the IDs.
- ADD and REMOVE rows look among the devices the key owns (only its owner can change a
  device's sharing); LEAVE rows among the devices shared with it.
- A service name is looked up among the services of the row's device.
- Each distinct (name, pool) is looked up once, so ten thousand rows naming one device cost
  one dictionary probe each.

Lines waiting for a lookup (`name-not-resolved`) become ordinary valid lines with the IDs
filled in, or invalid lines with `unknown-device-name`, `ambiguous-device-name`,
`unknown-service-name` or `ambiguous-service-name`. The typed names stay on the lines for
the report, so a report reruns without another lookup.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from batch_share.models import ACTIONS, Action, DeviceInfo, Problem, Status
from batch_share.plan.planned import PlannedSheet, plan_loaded_lines
from batch_share.sheet.validate import NAME_NOT_RESOLVED

_LEAVE = ACTIONS.index(Action.LEAVE)
_SUGGESTIONS = 3


@dataclass(frozen=True, slots=True)
class Directory:
    """The account's devices by case-folded name, split by who owns them."""

    owned: dict[str, list[DeviceInfo]]
    shared: dict[str, list[DeviceInfo]]
    by_id: dict[str, DeviceInfo]

    @classmethod
    def of(cls, devices: Iterable[DeviceInfo], account: str) -> Directory:
        owned: defaultdict[str, list[DeviceInfo]] = defaultdict(list)
        shared: defaultdict[str, list[DeviceInfo]] = defaultdict(list)
        by_id = {}
        for device in devices:
            pool = owned if device.owner == account.casefold() else shared
            pool[_key(device.name)].append(device)
            by_id[device.id] = device
        return cls(dict(owned), dict(shared), by_id)


def _key(name: str) -> str:
    return name.strip().casefold()


def resolve_names(
    planned: PlannedSheet, directory: Directory, *, cross_device: bool = False
) -> PlannedSheet:
    """The sheet with every waiting line resolved or refused, planned again."""
    lines, sheet = planned.lines, planned.sheet
    names = lines.names
    device_ids = list(lines.device_ids)
    service_ids = list(lines.service_ids)
    device_index = {device: i for i, device in enumerate(device_ids)}
    service_index = {service: i for i, service in enumerate(service_ids)}
    device = lines.device.copy()
    service = lines.service.copy()
    valid = lines.valid.copy()
    problems = dict(lines.problems)
    found: list[Problem] = list(planned.validated.problems)
    seen_rows: set[tuple[int, str]] = set()
    memo: dict[tuple[str, bool], str | tuple[str, str]] = {}
    service_memo: dict[tuple[str, str], str | tuple[str, str]] = {}

    for line in [i for i, p in problems.items() if p[1] == NAME_NOT_RESOLVED]:
        row = int(lines.row[line])
        leave = int(lines.action[line]) == _LEAVE
        outcome: str | tuple[str, str]
        column = "device_id"
        if device[line] < 0:
            name = names[int(_at(lines.device_name, line))]
            key = (_key(name), leave)
            outcome = memo.get(key) or memo.setdefault(key, _find_device(directory, name, leave))
            if isinstance(outcome, str):
                device[line] = _index(device_ids, device_index, outcome)
        else:
            outcome = device_ids[int(device[line])]
        if isinstance(outcome, str) and service[line] < 0 and _at(lines.service_name, line) >= 0:
            column = "service_id"
            name = names[int(_at(lines.service_name, line))]
            key2 = (outcome, _key(name))
            outcome = service_memo.get(key2) or service_memo.setdefault(
                key2, _find_service(directory, outcome, name)
            )
            if isinstance(outcome, str):
                service[line] = _index(service_ids, service_index, outcome)
        if isinstance(outcome, str):
            del problems[line]
            valid[line] = True
            continue
        code, message = outcome
        problems[line] = (Status.INVALID, code, message)
        row_number = int(sheet.row_numbers[row])
        if (row_number, message) not in seen_rows:
            seen_rows.add((row_number, message))
            found.append(Problem(row_number, column, code, message))

    resolved = replace(
        lines,
        device=device,
        device_ids=tuple(device_ids),
        service=service,
        service_ids=tuple(service_ids),
        valid=valid,
        problems=problems,
    )
    validated = replace(
        planned.validated, lines=resolved, problems=tuple(sorted(found, key=lambda p: p.row))
    )
    return plan_loaded_lines(planned, validated, cross_device=cross_device)


def _at(column: np.ndarray | None, line: int) -> int:
    return -1 if column is None else int(column[line])


def _index(table: list[str], where: dict[str, int], value: str) -> int:
    if value not in where:
        where[value] = len(table)
        table.append(value)
    return where[value]


def _find_device(directory: Directory, name: str, leave: bool) -> str | tuple[str, str]:
    """The device ID a name stands for, or (code, message)."""
    pool = directory.shared if leave else directory.owned
    whose = "shared with you" if leave else "you own"
    matches = pool.get(_key(name), [])
    if len(matches) == 1:
        return matches[0].id
    if matches:
        ids = ", ".join(sorted(device.id for device in matches))
        return (
            "ambiguous-device-name",
            (
                f"{len(matches)} devices {whose} are named '{name.strip()}' ({ids}); "
                "give the device_id instead"
            ),
        )
    return (
        "unknown-device-name",
        f"no device {whose} is named '{name.strip()}'"
        + _closest(name, [d.name for devices in pool.values() for d in devices]),
    )


def _find_service(directory: Directory, device_id: str, name: str) -> str | tuple[str, str]:
    device = directory.by_id.get(device_id)
    services = device.services if device is not None else ()
    matches = [s for s in services if _key(s.name) == _key(name)]
    if len(matches) == 1:
        return matches[0].id
    if matches:
        ids = ", ".join(sorted(service.id for service in matches))
        return (
            "ambiguous-service-name",
            (
                f"device {device_id} has {len(matches)} services named '{name.strip()}' "
                f"({ids}); give the service_id instead"
            ),
        )
    known = (
        f"device {device_id}" if device is not None else f"device {device_id} (not in the account)"
    )
    return (
        "unknown-service-name",
        f"{known} has no service named '{name.strip()}'"
        + _closest(name, [service.name for service in services]),
    )


def _closest(name: str, candidates: Sequence[str]) -> str:
    """`; did you mean ...?` with the nearest existing names, or nothing."""
    folded: dict[str, str] = {}
    for candidate in candidates:
        folded.setdefault(candidate.casefold(), candidate)
    near = difflib.get_close_matches(name.strip().casefold(), folded, n=_SUGGESTIONS, cutoff=0.5)
    if not near:
        return ""
    return "; did you mean " + " or ".join(f"'{folded[n]}'" for n in near) + "?"
