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
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

_T = TypeVar("_T")

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


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """`asyncio.run`, with the result kept out of the main task.

    On Python 3.11, `asyncio.run` ends by asking `signal.getsignal` for its own Ctrl-C
    handler, which formats that handler into an error message it then discards; the
    handler's text includes the main task's, and so the task's whole result. For an export
    of 10,000 devices that text took half a second to build.
    """
    result: list[_T] = []

    async def main() -> None:
        result.append(await coroutine)

    asyncio.run(main())
    return result[0]


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
