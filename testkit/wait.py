"""One bounded poll: call a probe until its result is what we wait for, or give up.

Every wait in the tests and the benchmarks' set-up goes through ``wait_for``.
It is bounded twice, by a deadline and by a number of polls, so a probe that
returns at once and a clock that misbehaves both end. It checks behaviour,
never speed: the deadline is generous, and nothing asserts how long a wait
took (that is the benchmarks' business, measured, not waited for).

A probe may raise to end the wait early (a server process that exited, say);
the exception goes to the caller unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

WAIT = 15.0  # seconds a condition may take before the wait fails
POLL = 0.05  # seconds between two polls
MAX_POLLS = 2000  # the second bound, besides the deadline


class WaitTimeout(AssertionError):
    """What was awaited did not happen within the bounds (a test failure, not an error)."""


def _truthy(value: object) -> bool:
    return bool(value)


def wait_for(
    what: str,
    probe: Callable[[], T],
    ok: Callable[[T], bool] = _truthy,
    *,
    seconds: float = WAIT,
    poll: float = POLL,
    max_polls: int = MAX_POLLS,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Call ``probe`` until ``ok`` holds for its result; return that result.

    ``what`` names the awaited condition for the failure message, which also
    shows the last result seen. ``sleep`` waits between polls (a test may
    pass one that wakes early, on a condition variable).
    """
    deadline = time.monotonic() + seconds
    last: T | None = None
    polls = 0
    while polls < max_polls:
        polls += 1
        last = probe()
        if ok(last):
            return last
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sleep(min(poll, left))
    raise WaitTimeout(f"waited {seconds:g} s ({polls} polls) for {what}; last seen: {last!r}")
