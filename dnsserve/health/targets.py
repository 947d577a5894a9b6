"""What the monitor checks, and what one finished check reports.

Owns ``Target`` (one member, its check and its schedule), the rule a set of
targets must meet (0 < timeout < interval; one check per member), the guard's
window those schedules give (``guard_window``) and the checks in flight they
need at most (``concurrency_needed``), and ``CheckOutcome``, which
leaves the monitor thread through ``on_result``.

Must not: schedule or run checks (``health.monitor`` does) or decide health
(the tracker and the guard do).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from dnsserve.health.guard import Suspicion
from dnsserve.health.model import MemberHealth, MemberId
from dnsserve.health.probes import CheckSpec, ProbeResult


class Target(NamedTuple):
    """One member to check and its schedule."""

    member: MemberId
    spec: CheckSpec
    interval: float
    rise: int
    fall: int


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One finished check, as the monitor thread reports it.

    ``before`` is the member's health before this check (None: never seen);
    ``health`` after it, guard applied; ``flipped``: the state changed.
    ``late``: seconds the check started after its scheduled time (waiting
    for the concurrency bound, or a busy thread; a member checked at once is
    due at the monitor's start); 0 for a check asked for with ``check_now``.
    """

    member: MemberId
    result: ProbeResult
    before: MemberHealth | None
    health: MemberHealth
    flipped: bool
    at: float  # time.time() when the check ended
    took: float = 0.0  # seconds the check ran (its timeout when it timed out)
    late: float = 0.0  # seconds it started after its schedule


OnResult = Callable[[CheckOutcome], None]
OnSuspicion = Callable[[Suspicion], None]


def guard_window(targets: Iterable[Target]) -> float:
    """The spread of flips one network-wide failure gives: an interval plus timeouts."""
    return max((t.interval + 2 * t.spec.timeout for t in targets), default=0.0)


# The monitor's default bound on checks in flight: at least MIN, at most MAX, which
# with the control API's connections and the state file stays within the
# descriptors net.FD_RESERVE keeps free of DNS TCP connections.
MIN_CONCURRENCY = 64
MAX_CONCURRENCY = 256


def concurrency_needed(targets: Iterable[Target]) -> int:
    """Checks in flight when every check runs to its timeout, within MIN and MAX_CONCURRENCY.

    The monitor's default bound: it never makes a steady schedule late (up to
    MAX_CONCURRENCY), and still bounds bursts (the first checks, a reload).
    """
    needed = math.ceil(sum(t.spec.timeout / t.interval for t in targets))
    return min(MAX_CONCURRENCY, max(MIN_CONCURRENCY, needed))


def dedupe(targets: Iterable[Target | tuple]) -> dict[MemberId, Target]:
    """``targets`` by member; ValueError for a bad interval or two checks of one member."""
    found: dict[MemberId, Target] = {}
    for raw in targets:
        target = Target(*raw)
        if target.interval <= 0 or target.spec.timeout >= target.interval:
            raise ValueError(f"{target.member.to_text()}: need 0 < timeout < interval")
        seen = found.setdefault(target.member, target)
        if seen != target:
            raise ValueError(f"{target.member.to_text()}: two different checks for one member")
    return found
