"""Ctrl-C and SIGTERM become a clean stop, on every platform.

asyncio's `add_signal_handler` exists only on Unix event loops; Windows' loop raises
NotImplementedError. There the stop is wired with `signal.signal`, which Windows supports
for SIGINT and SIGTERM, and `handlers_restored` puts the caller's handlers back afterwards
(on Unix the loop removes its own handlers when it closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set `stop` on SIGINT/SIGTERM; call from inside the running loop, in the main thread."""
    for signum in SIGNALS:
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:

            def handler(_signum: int, _frame: object) -> None:
                loop.call_soon_threadsafe(stop.set)

            signal.signal(signum, handler)


@contextlib.contextmanager
def handlers_restored() -> Iterator[None]:
    """Whatever `stop_on_signals` installs with `signal.signal` is undone on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = [signal.getsignal(signum) for signum in SIGNALS]
    try:
        yield
    finally:
        for signum, handler in zip(SIGNALS, previous, strict=True):
            if handler is not None:  # None: set outside Python, cannot be put back from here
                signal.signal(signum, handler)
