"""An asyncio (uvloop) event loop in a daemon thread, for servers a test runs in its own process.

Owns ``LoopThread``: ``run(coro)`` runs a coroutine on the loop from the
test's thread and returns its result; ``stop()`` stops the loop and joins
the thread. Must not: outlive its test (every ``LoopThread`` is stopped by
the fixture that made it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


class LoopThread:
    """A uvloop event loop running in a daemon thread; stopped by stop()."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.loop.close()
