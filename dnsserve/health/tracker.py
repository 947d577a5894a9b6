"""Rise/fall hysteresis: one check result in, one member health out.

Owns the only place where raw check results become UP/DOWN states. Pure: the
time of the check is passed in, nothing here reads a clock, sleeps, logs or
knows what kind of probe produced the result. It must not decide answers
(policies do) nor hold suspicion (the guard does).

The rules, all of them:

Rule 1. A member never seen (``health is None``) is UP with both counts 0 and
        no reason; its first result is observed from there.
Rule 2. Counts are consecutive: a pass sets ``failures`` to 0 and adds one to
        ``passes``; a failure sets ``passes`` to 0 and adds one to
        ``failures``.
Rule 3. After counting, the table below says whether the member flips: UP
        flips to DOWN when ``failures`` reaches ``fall``; DOWN flips to UP when
        ``passes`` reaches ``rise``. No other transition exists.
Rule 4. A flip sets ``since`` to the time of the deciding check and
        ``reason`` to that check's reason ("HTTP 503", "timeout", ...). Without
        a flip, ``since`` and ``reason`` keep describing the current state.
Rule 5. Every observation sets ``checked`` to the time of the check.

    state  result   counts            flips when          to
    -----  -------  ----------------  ------------------  ----
    UP     pass     passes += 1       never               -
    UP     fail     failures += 1     failures >= fall    DOWN
    DOWN   fail     failures += 1     never               -
    DOWN   pass     passes += 1       passes >= rise      UP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dnsserve.health.model import MemberHealth, State


@dataclass(frozen=True, slots=True)
class _Rule:
    threshold: Literal["rise", "fall"] | None  # which limit can flip; None = stays
    to: State


_TABLE: dict[tuple[State, bool], _Rule] = {
    (State.UP, True): _Rule(None, State.UP),
    (State.UP, False): _Rule("fall", State.DOWN),
    (State.DOWN, False): _Rule(None, State.DOWN),
    (State.DOWN, True): _Rule("rise", State.UP),
}


def never_seen(now: float) -> MemberHealth:
    """Rule 1: the health of a member nothing is known about."""
    return MemberHealth(state=State.UP, since=now)


def observe(
    health: MemberHealth | None,
    ok: bool,
    reason: str,
    now: float,
    *,
    rise: int,
    fall: int,
) -> tuple[MemberHealth, bool]:
    """Apply one check result; return the new health and whether the state flipped."""
    if rise < 1 or fall < 1:
        raise ValueError(f"rise and fall must be at least 1, got rise={rise} fall={fall}")
    current = health if health is not None else never_seen(now)
    # Rule 2
    passes = current.passes + 1 if ok else 0
    failures = 0 if ok else current.failures + 1
    # Rule 3
    rule = _TABLE[(current.state, ok)]
    if rule.threshold == "rise":
        flipped = passes >= rise
    elif rule.threshold == "fall":
        flipped = failures >= fall
    else:
        flipped = False
    if flipped:  # Rule 4
        return (
            MemberHealth(rule.to, now, reason, passes=passes, failures=failures, checked=now),
            True,
        )
    return (
        MemberHealth(
            current.state,
            current.since,
            current.reason,
            passes=passes,
            failures=failures,
            checked=now,  # Rule 5
        ),
        False,
    )
