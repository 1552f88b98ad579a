"""A local remote.it-compatible GraphQL API for tests and demos: signed requests, a seeded
fleet, stateful shares, fault injection and counters.

    with serve_in_thread(Emulator(devices=50)) as server:
        ...  # point the client at server.url with the emulator's key_id/secret

Needs the `emulator` extra (graphql-core, starlette, uvicorn).
"""

from batch_share.emulator.counters import Counters, RequestRecord, ShareCall
from batch_share.emulator.faults import Faults
from batch_share.emulator.fleet import (
    ACCOUNT_EMAIL,
    PARTNER_EMAIL,
    SHARED_DEVICE_COUNT,
    device_id,
    service_id,
    shared_device_id,
    shared_service_id,
)
from batch_share.emulator.runner import ServerHandle, serve, serve_in_thread
from batch_share.emulator.server import GRAPHQL_PATH, Emulator
from batch_share.emulator.state import UNREGISTERED_DOMAIN, SeedGrant, read_seed_file

__all__ = [
    "ACCOUNT_EMAIL",
    "GRAPHQL_PATH",
    "PARTNER_EMAIL",
    "SHARED_DEVICE_COUNT",
    "UNREGISTERED_DOMAIN",
    "Counters",
    "Emulator",
    "Faults",
    "RequestRecord",
    "SeedGrant",
    "ServerHandle",
    "ShareCall",
    "device_id",
    "read_seed_file",
    "serve",
    "serve_in_thread",
    "service_id",
    "shared_device_id",
    "shared_service_id",
]
