"""health.timers: members wake at their due time rounded up to a tick, together, or when
triggered; on trio's MockClock (autojump), so no real time passes."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from dnsserve.health.model import MemberId
from dnsserve.health.timers import BATCH, TICK_MAX, Timers, phase_slots, tick_for

A, B, C = (MemberId("web", f"192.0.2.{i}") for i in (1, 2, 3))


def run(main: object) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_wakes_at_the_due_time_rounded_up_to_the_tick_never_before() -> None:
    woke: dict[MemberId, tuple[float, bool]] = {}

    async def main() -> None:
        timers = Timers(tick=0.01)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timers.run)

            async def wait(member: MemberId, due: float) -> None:
                triggered = await timers.sleep_until(member, due)
                woke[member] = (trio.current_time(), triggered)

            nursery.start_soon(wait, A, 1.003)
            nursery.start_soon(wait, B, 1.007)
            nursery.start_soon(wait, C, 0.5)  # earlier than what run sleeps until
            await trio.sleep(2)
            nursery.cancel_scope.cancel()

    run(main)
    assert woke[A] == (pytest.approx(1.01), False)
    assert woke[B] == (pytest.approx(1.01), False)  # the same tick: one pass wakes both
    assert woke[C] == (pytest.approx(0.5), False)
    assert woke[A][0] >= 1.003 and woke[B][0] >= 1.007 and woke[C][0] >= 0.5


def test_a_trigger_wakes_a_waiting_member_at_once_and_is_kept_otherwise() -> None:
    seen: list[tuple[float, bool]] = []

    async def main() -> None:
        timers = Timers(tick=0.01)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timers.run)

            async def wait(due: float) -> None:
                triggered = await timers.sleep_until(A, due)
                seen.append((trio.current_time(), triggered))

            async def member() -> None:
                await wait(10.0)
                await trio.sleep(1.0)  # a check runs; a trigger comes meanwhile
                await wait(20.0)
                await wait(20.0)

            nursery.start_soon(member)
            await trio.sleep(2.0)
            timers.trigger(A)  # waiting: wakes now
            await trio.sleep(0.5)
            timers.trigger(A)  # running: kept for the next wait
            await trio.sleep(30)
            nursery.cancel_scope.cancel()

    run(main)
    assert seen == [(pytest.approx(2.0), True), (pytest.approx(3.0), True),
                    (pytest.approx(20.0), False)]


def test_a_cancelled_wait_is_forgotten() -> None:
    woke: list[MemberId] = []

    async def main() -> None:
        timers = Timers(tick=0.01)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timers.run)
            with trio.move_on_after(0.5):  # a reload cancels A's task
                await timers.sleep_until(A, 1.0)
                woke.append(A)
            timers.trigger(A)
            timers.forget(A)  # the reload drops a trigger that came meanwhile

            async def again() -> None:
                triggered = await timers.sleep_until(A, 2.0)
                woke.append(A if not triggered else B)

            nursery.start_soon(again)
            await trio.sleep(3)
            nursery.cancel_scope.cancel()

    run(main)
    assert woke == [A]  # the new task, at its own due time, not triggered


def test_the_tick_is_a_small_share_of_the_shortest_interval() -> None:
    assert tick_for([1.0, 0.25, 30.0]) == pytest.approx(0.005)
    assert tick_for([1.0]) == pytest.approx(0.02)
    assert tick_for([60.0]) == TICK_MAX
    assert tick_for([]) == TICK_MAX


def test_nothing_due_sleeps_until_something_is() -> None:
    async def main() -> None:
        timers = Timers(tick=0.01)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timers.run)
            await trio.sleep(100)  # run waits with nothing due (math.inf)
            assert timers._next == math.inf
            start = trio.current_time()
            assert not await timers.sleep_until(A, start + 1.0)
            assert trio.current_time() == pytest.approx(start + 1.0, abs=0.01)
            nursery.cancel_scope.cancel()

    run(main)


@pytest.mark.parametrize(
    ("members", "interval", "tick", "slots"),
    [
        (3, 1.0, 0.02, 1),  # a few members share one phase
        (60, 2.0, 0.04, math.ceil(60 / BATCH)),  # about BATCH members a phase
        (900, 1.0, 0.02, 50),  # many: phases a tick apart, no closer
        (0, 1.0, 0.02, 1),
    ],
)
def test_phase_slots(members: int, interval: float, tick: float, slots: int) -> None:
    assert phase_slots(members, interval, tick) == slots
