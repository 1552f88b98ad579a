"""Running the page over real HTTP on 127.0.0.1: in a thread (tests, screenshots, the bench)
or in the foreground (`batch-share serve`)."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import replace
from types import TracebackType

from batch_share import loopback
from batch_share.loopback import run_on, start_in_thread, uvicorn_server
from batch_share.web.app import ServeConfig, State, create_app

HOST = "127.0.0.1"  # never configurable: the page can spend the user's credentials


def bind(port: int) -> socket.socket:
    """Bind before starting, so port 0 yields the real port the Host check must expect."""
    return loopback.bind(HOST, port)


def page_url(config: ServeConfig) -> str:
    return f"http://{HOST}:{config.port}/?token={config.token}"


class WebServer:
    """The page served on a background thread; a context manager that stops it."""

    def __init__(self, config: ServeConfig) -> None:
        self.sock = bind(config.port)
        self.config = replace(config, port=self.sock.getsockname()[1])
        self.app = create_app(self.config)
        self._server = uvicorn_server(self.app, log_config=None)

    @property
    def url(self) -> str:
        """The page's URL with its token."""
        return page_url(self.config)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.config.port}"

    @property
    def state(self) -> State:
        found: State = self.app.state.serve
        return found

    def __enter__(self) -> WebServer:
        self._thread = start_in_thread(
            self._server,
            self.sock,
            name="batch-share-serve",
            failure="the page's server did not start",
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def serve_forever(config: ServeConfig, sock: socket.socket) -> None:
    """Serve until Ctrl-C, which is how this server is meant to end."""
    from uvicorn.config import LOGGING_CONFIG  # noqa: PLC0415

    with contextlib.suppress(KeyboardInterrupt):
        run_on(uvicorn_server(create_app(config), log_config=LOGGING_CONFIG), sock)
