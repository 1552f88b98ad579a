"""Who has access to what, and the rules of the `share` mutation.

Model (a simplification of remote.it, documented so clients know what they test against):
- A whole-device share gives an email the device and every service on it, with a
  scripting flag. A service share gives one service. The two are stored separately; a
  service's access list shows both (`effective_service_grants`).
- ADD of an existing share and REMOVE of an absent one answer true (idempotent); ADD on a
  whole device updates its scripting flag. A whole-device REMOVE also removes that email's
  service shares on the device. A service REMOVE leaves a whole-device share in place.
- One call is checked in two steps. Its emails are checked first, and any bad one (malformed,
  no remote.it account, yourself, not yourself for LEAVE) fails the whole call: nothing is
  applied. Then each device is checked and applied on its own, so with `deviceIds` the good
  devices ARE applied even when another one fails (partial apply; the error names every
  device that failed). A client must therefore treat a failed multi-device call as "some of
  it may have happened".
- LEAVE removes the account's own access to a device another user shared with it; it is
  not idempotent: leaving again is an error, as on the real API.
"""

from __future__ import annotations

import csv
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from batch_share.emulator.faults import Faults
from batch_share.emulator.fleet import Device, Fleet

UNREGISTERED_DOMAIN = "unregistered.example"
_EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;.]+(\.[^@\s,;.]+)+")
_SEED_TIME = "2025-01-01T00:00:00Z"


def read_seed_file(path: Path) -> list[SeedGrant]:
    """Seeded access from a CSV with columns device_id, service_id (blank: whole device),
    email and scripting (true/false), as `batch-share emulator --seed-access FILE` takes it."""
    grants = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            device, email = (row.get("device_id") or "").strip(), (row.get("email") or "").strip()
            if not device or not email:
                raise ValueError(f"{path.name}, row {number}: device_id and email are required")
            scripting = (row.get("scripting") or "").strip().casefold() in {"true", "yes", "1"}
            service = (row.get("service_id") or "").strip() or None
            grants.append(SeedGrant(device, email, scripting, service))
    return grants


class ShareError(Exception):
    """The API refuses (part of) a share call; the message is exactly what the client sees."""


@dataclass(frozen=True, slots=True)
class ShareRequest:
    """One `share` field's arguments, already checked for shape."""

    device_ids: tuple[str, ...]
    emails: tuple[str, ...]
    action: str
    scripting: bool
    services: tuple[tuple[str, str], ...] | None  # (service id, action); None = whole device


@dataclass(frozen=True, slots=True)
class SeedGrant:
    """One share that exists before a run: whole device (no service) or one service."""

    device_id: str
    email: str
    scripting: bool = False
    service_id: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    scripting: bool
    created: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ShareState:
    """The share store. Guarded by a lock because tests read it from their own thread while
    the server thread may be writing."""

    def __init__(self, fleet: Fleet, account_email: str) -> None:
        self.fleet = fleet
        self.account = account_email.casefold()
        self._lock = threading.Lock()
        self._device_grants: dict[str, dict[str, Grant]] = {}
        self._service_grants: dict[str, dict[str, Grant]] = {}
        self.seeded: list[SeedGrant] = []
        # The fleet never changes, so `login { devices }` order (name, then id) and the
        # case-folded names it filters on are worked out once, not on every page or lookup.
        self._listing = [
            (device.name.casefold(), device)
            for device in sorted(fleet.devices.values(), key=lambda d: (d.name, d.id))
        ]
        self.reset()

    def reset(self) -> None:
        """Back to the seed: the partner's devices shared with the account, plus `seeded`."""
        with self._lock:
            self._device_grants = {
                device.id: {self.account: Grant(scripting=False, created=_SEED_TIME)}
                for device in self.fleet.devices.values()
                if device.owner != self.account
            }
            self._service_grants = {}
            for seed in self.seeded:
                self._grant(seed)

    def seed(self, grants: list[SeedGrant]) -> None:
        """Access that exists before any run, and again after every `reset()`."""
        for grant in grants:
            self._check_seed(grant)
        with self._lock:
            self.seeded.extend(grants)
            for grant in grants:
                self._grant(grant)

    def grant(self, grant: SeedGrant) -> None:
        """Give access now, as if someone had shared it by hand (gone after `reset()`)."""
        self._check_seed(grant)
        with self._lock:
            self._grant(grant)

    def _check_seed(self, grant: SeedGrant) -> None:
        device = self.find_device(grant.device_id)
        if device is None:
            raise ValueError(f"seeded access names unknown device {grant.device_id}")
        if grant.service_id is not None and grant.service_id.upper() not in {
            s.id for s in device.services
        }:
            raise ValueError(
                f"seeded access names service {grant.service_id}, "
                f"which is not a service of {device.id}"
            )

    def _grant(self, grant: SeedGrant) -> None:
        key = grant.email.strip().casefold()
        value = Grant(scripting=grant.scripting, created=_SEED_TIME)
        if grant.service_id is None:
            self._device_grants.setdefault(grant.device_id.upper(), {})[key] = value
        else:
            self._service_grants.setdefault(grant.service_id.upper(), {})[key] = value

    # -- reads -------------------------------------------------------------------------

    def find_device(self, device_id: str) -> Device | None:
        return self.fleet.devices.get(device_id.strip().upper())

    def device_grants(self, device_id: str) -> dict[str, Grant]:
        """Whole-device shares: email key -> grant."""
        with self._lock:
            return dict(self._device_grants.get(device_id.upper(), {}))

    def effective_service_grants(self, service_id: str) -> dict[str, Grant]:
        """Everyone who can reach the service: its own shares plus its device's shares."""
        service = self.fleet.services.get(service_id.upper())
        if service is None:
            return {}
        with self._lock:
            grants = dict(self._service_grants.get(service.id, {}))
            grants.update(self._device_grants.get(service.device_id, {}))
        return grants

    def device_access(self, device: Device) -> tuple[dict[str, Grant], list[dict[str, Grant]]]:
        """The device's whole-device shares, and per service (in the device's order) everyone
        who can reach it, read under one lock: a page of 1,000 devices took a lock per
        device and another per service, and looked the device's shares up again each time."""
        with self._lock:
            whole = dict(self._device_grants.get(device.id, {}))
            reach = []
            for service in device.services:
                grants = dict(self._service_grants.get(service.id, {}))
                grants.update(whole)
                reach.append(grants)
        return whole, reach

    def listing(self, name: str = "") -> list[Device]:
        """Every device `can_see` lets through whose name holds `name` (any case), by name
        then id, under one lock."""
        needle = name.casefold()
        named = [device for folded, device in self._listing if needle in folded]
        with self._lock:
            return [
                device
                for device in named
                if device.owner == self.account
                or self.account in self._device_grants.get(device.id, {})
            ]

    def can_see(self, device: Device) -> bool:
        """Owned by the account, or shared with it (so `login.device`/`devices` list it)."""
        if device.owner == self.account:
            return True
        with self._lock:
            return self.account in self._device_grants.get(device.id, {})

    # -- the share mutation ------------------------------------------------------------

    def share(self, request: ShareRequest, faults: Faults) -> None:
        """Apply one `share` call, or raise ShareError with the API's message."""
        emails = self._checked_emails(request, faults)
        failures: list[str] = []
        for device_id in request.device_ids:
            try:
                self._share_device(device_id, emails, request, faults)
            except ShareError as error:
                failures.append(str(error))
        if failures:
            raise ShareError("; ".join(failures))

    def _checked_emails(self, request: ShareRequest, faults: Faults) -> tuple[str, ...]:
        if not request.emails:
            raise ShareError("email must list at least one address")
        for email in request.emails:
            if not _EMAIL.fullmatch(email.strip()):
                raise ShareError(f"{email!r} is not a valid email address")
        keys = tuple(email.strip().casefold() for email in request.emails)
        for email, key in zip(request.emails, keys, strict=True):
            if request.action == "LEAVE":
                if key != self.account:
                    raise ShareError(
                        f"LEAVE removes your own access: email must be {self.account}, not {email}"
                    )
            elif key.rpartition("@")[2] == UNREGISTERED_DOMAIN or faults.is_unregistered(key):
                raise ShareError(f"user {email} has no remote.it account")
            elif key == self.account:
                raise ShareError("you cannot share a device with yourself")
        return keys

    def _share_device(
        self, device_id: str, emails: tuple[str, ...], request: ShareRequest, faults: Faults
    ) -> None:
        if faults.is_failing(device_id):
            raise ShareError(f"could not update sharing for device {device_id}: internal error")
        device = self.find_device(device_id)
        if device is None:
            raise ShareError(f"device {device_id} not found")
        if request.action == "LEAVE":
            self._leave(device, request)
            return
        if device.owner != self.account:
            raise ShareError(
                f"you do not own device {device_id}; only its owner can change its sharing"
            )
        services = self._checked_services(device, request.services)
        if faults.is_silently_dropped(device.id):
            return
        with self._lock:
            if services is None:
                self._apply_whole_device(device, emails, request.action, request.scripting)
            else:
                self._apply_services(services, emails)

    def _leave(self, device: Device, request: ShareRequest) -> None:
        if request.services is not None:
            raise ShareError("LEAVE takes no services: it leaves the whole device")
        with self._lock:
            grants = self._device_grants.get(device.id, {})
            if device.owner == self.account or self.account not in grants:
                raise ShareError(f"device {device.id} is not shared with you")
            del grants[self.account]

    def _checked_services(
        self, device: Device, services: tuple[tuple[str, str], ...] | None
    ) -> list[tuple[str, str]] | None:
        """Check every entry before applying any, so one device's change is all or nothing."""
        if services is None:
            return None
        if not services:
            raise ShareError("services must not be empty; leave it out to share the whole device")
        own = {service.id for service in device.services}
        checked = []
        for given_id, action in services:
            service_id = given_id.strip().upper()
            if action not in ("ADD", "REMOVE"):
                raise ShareError(f"service {given_id}: action must be ADD or REMOVE, not {action}")
            if service_id not in self.fleet.services:
                raise ShareError(f"service {given_id} not found")
            if service_id not in own:
                raise ShareError(f"service {given_id} is not a service of device {device.id}")
            checked.append((service_id, action))
        return checked

    def _apply_whole_device(
        self, device: Device, emails: tuple[str, ...], action: str, scripting: bool
    ) -> None:
        grants = self._device_grants.setdefault(device.id, {})
        for email in emails:
            if action == "ADD":
                created = grants[email].created if email in grants else _now()
                grants[email] = Grant(scripting=scripting, created=created)
            else:
                grants.pop(email, None)
                for service in device.services:
                    self._service_grants.get(service.id, {}).pop(email, None)

    def _apply_services(self, services: list[tuple[str, str]], emails: tuple[str, ...]) -> None:
        for service_id, action in services:
            grants = self._service_grants.setdefault(service_id, {})
            for email in emails:
                if action == "ADD":
                    grants.setdefault(email, Grant(scripting=False, created=_now()))
                else:
                    grants.pop(email, None)
