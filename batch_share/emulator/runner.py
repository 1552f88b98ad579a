"""Running the emulator over real HTTP: in a background thread (tests) or in the
foreground (the `batch-share emulator` command)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterable
from types import TracebackType

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from batch_share.emulator.server import GRAPHQL_PATH, Emulator
from batch_share.emulator.state import SeedGrant
from batch_share.loopback import bind, run_on, start_in_thread, uvicorn_server

_STOP_TIMEOUT = 10.0


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{GRAPHQL_PATH}"


class ServerHandle:
    """A running emulator server; a context manager that stops it on exit."""

    def __init__(
        self,
        emulator: Emulator,
        url: str,
        port: int,
        server: uvicorn.Server,
        thread: threading.Thread,
    ) -> None:
        self.emulator = emulator
        self.url = url
        self.port = port
        self._server = server
        self._thread = thread

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r})"

    @property
    def key_id(self) -> str:
        return self.emulator.key_id

    @property
    def secret(self) -> str:
        return self.emulator.secret

    @property
    def state(self) -> Emulator:
        """The live emulator behind the server (faults, counters, `access()`, `reset()`)."""
        return self.emulator

    def stop(self) -> None:
        """Ask uvicorn to finish and wait for its thread; safe to call twice."""
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"the emulator on {self.url} did not stop")

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Start serving `emulator` on a background thread with its own event loop; return once
    it accepts requests. Port 0 picks a free port (see `.port` / `.url`)."""
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    # log_config=None: leave the host process's logging configuration alone.
    server = uvicorn_server(emulator.app, log_config=None)
    thread = start_in_thread(
        server,
        sock,
        name=f"batch-share-emulator-{bound_port}",
        failure=f"the emulator did not start on {_url(host, bound_port)}",
    )
    return ServerHandle(emulator, _url(host, bound_port), bound_port, server, thread)


def serve(
    port: int,
    *,
    devices: int = 1000,
    services_per_device: int = 3,
    key_id: str | None = None,
    secret: str | None = None,
    seed: int = 0,
    latency: float = 0.0,
    p503: float = 0.0,
    p429: float = 0.0,
    retry_after: float = 1.0,
    p_drop: float = 0.0,
    rate_limit: float | None = None,
    failing_devices: Iterable[str] = (),
    unregistered_emails: Iterable[str] = (),
    alias_cap: int | None = None,
    p_apply_then_drop: float = 0.0,
    silent_drop_devices: Iterable[str] = (),
    seed_access: Iterable[SeedGrant] = (),
    redirect_to: str | None = None,
    html_200: bool = False,
    truncate_body: bool = False,
    huge_body_bytes: int = 0,
    trickle_seconds: float = 0.0,
) -> None:
    """Serve on 127.0.0.1:`port` (0 = any free port) until interrupted.

    Prints, flushed, the three lines scripts parse: the URL, then the key pair as
    environment assignments. The key is the emulator's own throwaway key (or the one
    given), good for nothing but this server, which is why printing it is acceptable.
    Raises ValueError for a nonsensical setting, OSError if the port is taken.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    emulator = Emulator(
        devices=devices,
        services_per_device=services_per_device,
        key_id=key_id,
        secret=secret,
        seed=seed,
    )
    emulator.seed_access(seed_access)
    faults = emulator.faults
    faults.latency, faults.p503, faults.p429, faults.retry_after = latency, p503, p429, retry_after
    faults.p_drop, faults.rate_limit, faults.alias_cap = p_drop, rate_limit, alias_cap
    faults.p_apply_then_drop = p_apply_then_drop
    faults.failing_devices = set(failing_devices)
    faults.unregistered_emails = set(unregistered_emails)
    faults.silent_drop_devices = set(silent_drop_devices)
    faults.redirect_to, faults.html_200, faults.truncate_body = redirect_to, html_200, truncate_body
    faults.huge_body_bytes, faults.trickle_seconds = huge_body_bytes, trickle_seconds
    faults.validate()
    host = "127.0.0.1"
    sock = bind(host, port)
    lines = (
        f"batch-share emulator listening on {_url(host, sock.getsockname()[1])}",
        f"R3_ACCESS_KEY_ID={emulator.key_id}",
        f"R3_SECRET_ACCESS_KEY={emulator.secret}",
    )
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    # Ctrl-C is how this server is meant to end: uvicorn shuts down gracefully, then
    # re-raises the interrupt, which is no error here.
    with contextlib.suppress(KeyboardInterrupt):
        run_on(uvicorn_server(emulator.app, log_config=LOGGING_CONFIG), sock)
