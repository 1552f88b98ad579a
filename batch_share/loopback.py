"""Serving an ASGI app on 127.0.0.1 with uvicorn, as the emulator and the page both do.

Needs uvicorn (the `emulator` or `web` extra); only those two import this module.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn


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
