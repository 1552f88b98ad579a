"""Serving an ASGI app on 127.0.0.1 with uvicorn, as the emulator and the page both do.

Needs uvicorn (the `emulator` or `web` extra); only those two import this module.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

_STARTUP_TIMEOUT = 10.0


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen before the server starts: port 0 then yields a free port with no race
    between choosing it and using it, and connections queue up even before uvicorn runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Name the protocol: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # IPPROTO_TCP, and without it every response stalls ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_server(app: Any, *, log_config: dict[str, Any] | None) -> uvicorn.Server:
    """The one way both servers run: h11 (the emulator's dropped connections reach into its
    transport), no websockets or lifespan, no access log (the page's would print its token),
    and a stop that does not hang on requests sleeping in injected latency."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="off",
            loop="asyncio",
            log_config=log_config,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
    )


def start_in_thread(
    server: uvicorn.Server, sock: socket.socket, *, name: str, failure: str
) -> threading.Thread:
    """Serve on a daemon thread with its own event loop; return once it accepts requests.
    Raises RuntimeError(failure) if it dies or is not up within ten seconds."""
    thread = threading.Thread(target=run_on, args=(server, sock), name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(_STARTUP_TIMEOUT)
            raise RuntimeError(failure)
        time.sleep(0.005)
    return thread


def run_on(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve until stopped. uvicorn closes the socket on a normal shutdown; `with` covers
    a failed startup too."""
    with sock:
        server.run(sockets=[sock])
