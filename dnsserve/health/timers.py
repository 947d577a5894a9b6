"""The monitor's timers: one trio task wakes every member whose check is due.

Owns when a member's task resumes: at its due time rounded up to the next
multiple of ``tick`` of trio's clock (``tick_for``: 2 % of the shortest
interval, at most 50 ms), so that the checks due within one tick start
together, in one pass of trio's loop (one wake-up of the thread for them all,
not one per member, and no cancel scope per member per check; their replies
then come back together too), or
at once when ``trigger`` asks (``Monitor.check_now``; a trigger that comes
while the member is not waiting is kept for its next wait). Also owns how many
phases the monitor spreads the members of one interval over
(``phase_slots``: about ``BATCH`` members share one, so that their checks
share a wake-up too). Holds a heap of
due times and the parked task of each member; a parked task that is
cancelled (a reload, ``stop``) is forgotten, and its heap entry is skipped.

Must not: run, count or log checks (the monitor does), decide a schedule
(the monitor computes each due time), or wake a task before its due time.
Used from the monitor's trio thread only.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable

import trio

from dnsserve.health.model import MemberId

TICK_SHARE = 0.02  # of the shortest interval: how late a check may start, at most
TICK_MAX = 0.05  # seconds
# Members that share a phase of their schedule, as many as there are: their checks
# start in one wake-up of the thread, whose cost (a pass of trio's loop on cold
# caches) is then shared by several checks instead of paid by each.
BATCH = 8


def tick_for(intervals: Iterable[float]) -> float:
    """The tick for members checked at these intervals (``TICK_MAX`` when there are none)."""
    return min(TICK_MAX, TICK_SHARE * min(intervals, default=TICK_MAX / TICK_SHARE))


def phase_slots(members: int, interval: float, tick: float) -> int:
    """In how many phases ``members`` checked every ``interval`` start: about ``BATCH``
    members each, and the phases at least a tick apart (at most interval / tick)."""
    return max(1, min(math.ceil(members / BATCH), math.floor(interval / tick)))


class Timers:
    """Every member's next wake-up, and the one task (``run``) that delivers them."""

    __slots__ = ("_changed", "_heap", "_next", "_parked", "_pending", "_seq", "tick")

    def __init__(self, tick: float = TICK_MAX) -> None:
        self.tick = tick
        self._heap: list[tuple[float, int, MemberId]] = []
        self._parked: dict[MemberId, tuple[int, trio.lowlevel.Task]] = {}
        self._pending: set[MemberId] = set()  # triggered while not waiting
        self._seq = itertools.count()
        self._changed = trio.Event()
        self._next = math.inf  # when ``run`` wakes next

    def _round(self, due: float) -> float:
        return math.ceil(due / self.tick) * self.tick

    async def run(self) -> None:
        """Wake members as they come due; runs until cancelled (the monitor's nursery)."""
        heap, parked = self._heap, self._parked
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, seq, member = heapq.heappop(heap)
                waiting = parked.get(member)
                if waiting is not None and waiting[0] == seq:  # not cancelled since
                    del parked[member]
                    trio.lowlevel.reschedule(waiting[1])
            self._next = self._round(heap[0][0]) if heap else math.inf
            changed = self._changed = trio.Event()
            with trio.move_on_at(self._next):
                await changed.wait()

    async def sleep_until(self, member: MemberId, due: float) -> bool:
        """Wait until ``due`` (or the next tick after it); True when triggered instead.

        One task per member may wait at a time.
        """
        if member in self._pending:
            self._pending.discard(member)
            await trio.lowlevel.checkpoint()
            return True
        seq = next(self._seq)
        heapq.heappush(self._heap, (due, seq, member))
        if self._round(due) < self._next:
            self._changed.set()  # ``run`` sleeps past this one: it looks again
        self._parked[member] = (seq, trio.lowlevel.current_task())

        def abort(_: object) -> trio.lowlevel.Abort:
            waiting = self._parked.get(member)
            if waiting is not None and waiting[0] == seq:
                del self._parked[member]
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        if member in self._pending:
            self._pending.discard(member)
            return True
        return False

    def trigger(self, member: MemberId) -> None:
        """Wake ``member`` now if it waits; else at its next wait."""
        self._pending.add(member)
        waiting = self._parked.pop(member, None)
        if waiting is not None:
            trio.lowlevel.reschedule(waiting[1])

    def forget(self, member: MemberId) -> None:
        """Drop a trigger kept for ``member`` (its task is cancelled: a reload, a removal)."""
        self._pending.discard(member)
