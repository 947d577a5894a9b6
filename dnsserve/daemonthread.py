"""A blocking call in a daemon thread, its result as a future on the running loop.

Owns ``in_daemon_thread``: unlike ``asyncio.to_thread`` (whose executor
threads are joined when the loop closes, so a call stuck on a hung file or
peer would hold SIGTERM up), the thread is a daemon, and a result that comes
after its future was abandoned (timed out, cancelled, the loop closed) is
thrown away. ``reload`` runs zone loading this way, ``secondary`` its SOA
queries and transfers.

Must not: bound the call's time (the caller does, with its own timeouts), or
be used for work that must finish before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_daemon_thread(
    fn: Callable[..., T], *args: object, name: str = "dnsserve-reload"
) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in a new daemon thread; its result as a future on this loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return  # abandoned (timed out, or the server is stopping)
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def run() -> None:
        try:
            value = fn(*args)
        except BaseException as exc:
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, value)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
