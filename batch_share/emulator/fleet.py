"""The seeded devices and services the emulator pretends the account has.

IDs are computed from small integers so tests and demo sheets can name a device without
asking the server: `device_id(7)` is the account's 7th device, `service_id(7, 2)` its
second service. The account also sees a few devices that another user owns and has shared
with it (`shared_device_id(i)`, i = 1..SHARED_DEVICE_COUNT), so LEAVE has something to leave.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT_EMAIL = "admin@example.com"
PARTNER_EMAIL = "partner@example.com"
SHARED_DEVICE_COUNT = 5
SERVICE_NAMES = ("ssh", "http", "vnc", "rdp", "https", "smb", "mqtt", "postgres")

# Byte 5 of an ID tells what it is; the low three bytes carry the number. Owned services
# use 0x11..0x1F and partner services 0x21..0x2F, so the kinds can never collide.
_OWNED_DEVICE = 0x01
_SHARED_DEVICE = 0x02
_OWNED_SERVICE_BASE = 0x10
_SHARED_SERVICE_BASE = 0x20
MAX_SERVICES_PER_DEVICE = 15
MAX_DEVICES = (1 << 24) - 1


def _make_id(kind: int, i: int) -> str:
    if not 1 <= i <= MAX_DEVICES:
        raise ValueError(f"device number must be between 1 and {MAX_DEVICES}, got {i}")
    return f"80:00:00:00:{kind:02X}:{(i >> 16) & 255:02X}:{(i >> 8) & 255:02X}:{i & 255:02X}"


def _service_kind(base: int, j: int) -> int:
    if not 1 <= j <= MAX_SERVICES_PER_DEVICE:
        raise ValueError(f"service number must be between 1 and {MAX_SERVICES_PER_DEVICE}, got {j}")
    return base + j


def device_id(i: int) -> str:
    """ID of the account's own device number i (1-based)."""
    return _make_id(_OWNED_DEVICE, i)


def service_id(i: int, j: int) -> str:
    """ID of service j (1-based) on the account's own device i."""
    return _make_id(_service_kind(_OWNED_SERVICE_BASE, j), i)


def shared_device_id(i: int) -> str:
    """ID of the partner's device i, shared with the account (whole device, no scripting)."""
    return _make_id(_SHARED_DEVICE, i)


def shared_service_id(i: int, j: int) -> str:
    """ID of service j on the partner's device i."""
    return _make_id(_service_kind(_SHARED_SERVICE_BASE, j), i)


# Names people would give, for demos and name lookups; every 25th device is a "Gateway", so
# a fleet of 25 or more has a name that is ambiguous on purpose.
FRIENDLY_NAMES = {1: "Lobby Camera", 2: "Front Desk PC", 4: "Warehouse NAS", 5: "Build Server"}
DUPLICATE_NAME = "Gateway"
DUPLICATE_EVERY = 25


def device_name(i: int) -> str:
    """The name of the account's own device number i."""
    if i % DUPLICATE_EVERY == 0:
        return DUPLICATE_NAME
    return FRIENDLY_NAMES.get(i, f"device-{i:04d}")


def service_name(j: int, *, device: int = 0) -> str:
    """Service j's name; on a "Gateway" the second service is a second "ssh", so a service
    name can be ambiguous within one device too."""
    if device and device % DUPLICATE_EVERY == 0 and j == 2:
        return SERVICE_NAMES[0]
    return SERVICE_NAMES[j - 1] if j <= len(SERVICE_NAMES) else f"service-{j}"


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    device_id: str


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    name: str
    owner: str
    services: tuple[Service, ...]


@dataclass(frozen=True, slots=True)
class Fleet:
    """Every device the emulator knows, owned or not, in listing order."""

    devices: dict[str, Device]
    services: dict[str, Service]

    @classmethod
    def build(cls, *, devices: int, services_per_device: int, owner: str) -> Fleet:
        if not 0 <= devices <= MAX_DEVICES:
            raise ValueError(f"devices must be between 0 and {MAX_DEVICES}, got {devices}")
        if not 0 <= services_per_device <= MAX_SERVICES_PER_DEVICE:
            raise ValueError(
                f"services per device must be between 0 and {MAX_SERVICES_PER_DEVICE}, "
                f"got {services_per_device}"
            )
        owned = [_owned_device(i, owner, services_per_device) for i in range(1, devices + 1)]
        shared = [
            _partner_device(i, services_per_device) for i in range(1, SHARED_DEVICE_COUNT + 1)
        ]
        all_devices = {d.id: d for d in owned + shared}
        services = {s.id: s for d in all_devices.values() for s in d.services}
        return cls(all_devices, services)


def _owned_device(i: int, owner: str, service_count: int) -> Device:
    services = tuple(
        Service(service_id(i, j), service_name(j, device=i), device_id(i))
        for j in range(1, service_count + 1)
    )
    return Device(device_id(i), device_name(i), owner, services)


def _partner_device(i: int, service_count: int) -> Device:
    services = tuple(
        Service(shared_service_id(i, j), service_name(j), shared_device_id(i))
        for j in range(1, service_count + 1)
    )
    return Device(shared_device_id(i), f"partner-device-{i}", PARTNER_EMAIL, services)
