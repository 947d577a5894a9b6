"""The monitor's record of its own work: counters, and a ring of recent check starts.

Owns the counter names (``COUNTERS``), what one check start leaves behind
(``CheckRecord``: when it was due and when it began, to see drift), and the
lock that lets other threads read both while the monitor thread writes.

Must not: decide anything from what it counts (the tracker and the guard
decide), or keep more than ``ring_size`` records.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from dnsserve.health.model import MemberId

COUNTERS = (
    "checks", "passes", "failures", "timeouts", "skipped", "triggered", "flips",
    "held", "suspicions", "probe_errors", "callback_errors",
)


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """When one check was due and when it started (trio clock), for drift."""

    member: MemberId
    scheduled: float | None  # None: triggered by check_now
    started: float
    at: float  # time.time() at the start


class CheckLog:
    """The counters and the last ``ring_size`` check starts; any thread may read them."""

    __slots__ = ("_counters", "_lock", "_ring")

    def __init__(self, ring_size: int) -> None:
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._ring: deque[CheckRecord] = deque(maxlen=ring_size)

    def started(self, record: CheckRecord) -> None:
        """A check began: keep its record and count it."""
        with self._lock:
            self._ring.append(record)
            self._counters["checks"] += 1

    def settled(self, *, ok: bool, timeout: bool, flipped: bool, held: bool) -> None:
        """A check ended: a pass or a failure (a timeout too), a flip, or a flip held back."""
        with self._lock:
            self._counters["passes" if ok else "failures"] += 1
            self._counters["timeouts"] += timeout
            self._counters["flips"] += flipped
            self._counters["held"] += held

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def records(self) -> list[CheckRecord]:
        with self._lock:
            return list(self._ring)
