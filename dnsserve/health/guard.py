"""The self-suspicion guard: when (nearly) everything fails at once, doubt the monitor.

Owns the decision whether the DOWN flips the tracker proposes are applied, or
held because the monitor more likely lost its own network than the world lost
every backend. Pure: times are passed in; no clock, no I/O, no logging (the
monitor logs and records the alarm from the verdict). It must not count passes
and failures (the tracker does) nor know about probes or answers.

Terms. *Monitored* members are those in at least one pool (``GuardConfig.pools``);
the guard looks at no other member. ``window`` is the longest spread one
network-wide failure can give the results: about one check interval plus the
timeouts; the monitor computes it. Each monitored member is, at ``now``, from
its published health (with the counts of the results just in):

    down      a DOWN flip proposed now, or a *recent* one: applied less than
              ``window`` ago, the member still DOWN;
    failing   UP, its last result a failure (``failures`` >= 1), less than
              ``window`` old: about to flip, not flipped yet;
    passing   UP, its last result a pass less than ``window`` old: evidence
              that the monitor's network works;
    unknown   UP, no result in the last ``window`` (never checked, or only
              the state file's): no evidence either way;
    long down DOWN before the recent flips (a backend broken since last week
              must not keep the guard from ever firing): left out;
    exempt    held when an operator forced states, and has not passed a check
              since: left out (else its next failure would suspect again).

*Candidates* are the down and failing members; *alive* are the candidates and
the passing members. The trigger:

    T1. at least ``min_members`` (4) candidates,
    T2. spanning at least ``min_pools`` (2) pools,
    T3. candidates >= ``fraction`` x alive (``suspect_fraction``, default 1.0:
        every member with fresh evidence is failing or went down).

It is checked in NORMAL mode when a DOWN flip is proposed, and at a failure
that flips nothing while recent downs stand (so a down applied because one
member's result was late is undone when that result comes in, not at the next
flip). A partial outage (a passing member left, with fraction 1.0) fails over
at the same check as without the guard. The state machine, all of it:

    mode     event                                   -> mode     effect
    -------  --------------------------------------  -------  -------------------------
    NORMAL   DOWN flips, trigger not met                NORMAL   apply; remember them
                                                                 `window`
    NORMAL   DOWN flips, trigger met                    SUSPECT  hold them; restore the
                                                                 recent downs to their
                                                                 state before the flip;
                                                                 hold every candidate
                                                                 and unknown; alarm
    NORMAL   a failure, recent downs, trigger met       SUSPECT  the same, nothing to hold
    NORMAL   a failure, otherwise                       NORMAL   nothing
    SUSPECT  DOWN flips                                 SUSPECT  hold them
    SUSPECT  a held member passes a check               NORMAL   clear; members still
                                                                 failing flip at their
                                                                 next failure
    any      an exempt member passes a check            same     no longer exempt
    any      an exempt member flips DOWN                same     apply (not the guard's)
    any      another member passes / flips UP           same     nothing (not evidence)
    any      an operator forces states                  NORMAL   clear, forget recent
                                                                 downs; the held members
                                                                 become exempt

A held member keeps its previous state, since and reason; its counts go on
(``hold``), so once suspicion clears a member still failing flips DOWN at its
next failed check, without waiting ``fall`` checks again. Holding the failing
and unknown members too means that any of them passing ends the suspicion.

Timing: seeing it coming. The trigger counts failing members, so with
``fall >= 2`` suspicion begins at the first DOWN flip and nothing is published
DOWN. Each member is checked once per interval (first checks jittered): the
first check of every member after the outage began starts within one interval,
and the first member's ``fall``-th failing check starts at least one interval
after its first, so by then every other member has failed once. With
``fall = 1`` there is no failure before the flip: the first flips apply and are
restored when the trigger is met (``fall >= 2`` for the guard to see it
coming). Only evidence decides: a flip is never held back to wait for other
results (that would slow every real failover). So a flip still goes through
briefly when another member's check of the same interval has not returned yet
(it hangs to its timeout while this one was refused at once; the check began
in the same instant; the schedule ran late), or when members run on an
interval longer than ``(fall - 1)`` x the flipping member's: that member's last
pass is younger than ``window``, still evidence against. The flip is restored
as soon as that member's failure comes in (the trigger is checked at failures
while recent downs stand), not at the next flip.
"""

from __future__ import annotations

import enum
import math
from collections import ChainMap
from collections.abc import Mapping, MutableMapping, Set
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import cast

from dnsserve.health.model import MemberHealth, MemberId, State


class Mode(enum.Enum):
    NORMAL = "normal"
    SUSPECT = "suspect"


@dataclass(frozen=True, slots=True)
class GuardConfig:
    pools: Mapping[MemberId, Set[str]]  # member -> keys of the pools it serves
    window: float                       # seconds in which results count as simultaneous
    fraction: float = 1.0               # suspect_fraction
    min_members: int = 4
    min_pools: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"suspect fraction must be in (0, 1], got {self.fraction}")
        if self.window <= 0:
            raise ValueError(f"guard window must be positive, got {self.window}")
        if self.min_members < 1 or self.min_pools < 1:
            raise ValueError("min_members and min_pools must be at least 1")


@dataclass(frozen=True, slots=True)
class Down:
    """A DOWN flip: when it happened and the member's health just before it."""

    at: float
    before: MemberHealth


@dataclass(frozen=True, slots=True)
class GuardState:
    mode: Mode = Mode.NORMAL
    since: float | None = None  # when the current suspicion began
    recent: Mapping[MemberId, Down] = field(
        default_factory=lambda: MappingProxyType({})
    )  # NORMAL only
    held: frozenset[MemberId] = frozenset()  # SUSPECT only
    exempt: frozenset[MemberId] = frozenset()  # held at an operator's force, not passed since

    @property
    def suspect(self) -> bool:
        return self.mode is Mode.SUSPECT


@dataclass(frozen=True, slots=True)
class Verdict:
    apply: frozenset[MemberId] = frozenset()  # let these flip DOWN
    hold: frozenset[MemberId] = frozenset()   # keep these at their health before the flip
    restore: Mapping[MemberId, MemberHealth] = field(
        default_factory=lambda: MappingProxyType({})
    )  # already applied downs to undo: the health before their flip
    entered: bool = False  # suspicion began with this verdict: log and record the alarm
    reason: str = ""  # on entry: what the trigger saw


@dataclass(frozen=True, slots=True)
class _Census:
    """The monitored, non-exempt members sorted by the evidence they give."""

    candidates: frozenset[MemberId]  # down or failing
    unknown: frozenset[MemberId]
    passing: int


def propose(
    guard: GuardState,
    downs: Mapping[MemberId, Down],
    *,
    members: Mapping[MemberId, MemberHealth],
    config: GuardConfig,
    now: float,
) -> tuple[GuardState, Verdict]:
    """Decide on this round's DOWN flips (none: a failure while recent downs stand).

    ``members`` is the published health of every member before these flips,
    with this round's counts (a member missing from it was never checked).
    """
    ignored = frozenset(m for m in downs if m in guard.exempt)
    own = {m: d for m, d in downs.items() if m not in guard.exempt}
    if guard.mode is Mode.SUSPECT:
        held = frozenset(own)
        return replace(guard, held=guard.held | held), Verdict(apply=ignored, hold=held)
    if not own and not guard.recent:
        return guard, Verdict(apply=ignored)
    recent = {
        member: down
        for member, down in guard.recent.items()
        if member not in guard.exempt
        and _state(members, member) is State.DOWN
        and now - down.at < config.window
    }
    candidates = {**recent, **own}
    census = _census(candidates, members, config, guard.exempt, now)
    if not candidates or not _triggered(census, config):
        state = replace(guard, recent=MappingProxyType(candidates))
        return state, Verdict(apply=frozenset(downs))
    restore = {m: d.before for m, d in recent.items() if m not in own}
    held = frozenset(own) | census.candidates | census.unknown
    alive = len(census.candidates) + census.passing
    why = (f"{len(census.candidates)} of {alive} members failing or down "
           f"within {config.window:.1f} s")
    state = GuardState(Mode.SUSPECT, since=now, held=held, exempt=guard.exempt)
    return state, Verdict(
        apply=ignored, hold=frozenset(own), restore=MappingProxyType(restore),
        entered=True, reason=why,
    )


def passed(guard: GuardState, member: MemberId) -> tuple[GuardState, bool]:
    """A member passed a check; return the new state and whether suspicion cleared."""
    if guard.mode is Mode.SUSPECT and member in guard.held:
        return GuardState(exempt=guard.exempt - {member}), True
    if member in guard.exempt:
        return replace(guard, exempt=guard.exempt - {member}), False
    return guard, False  # the common case: nothing to change, nothing built


def forced(guard: GuardState) -> tuple[GuardState, bool]:
    """An operator forced states: leave suspicion; return whether it was on."""
    return GuardState(exempt=guard.exempt | guard.held), guard.mode is Mode.SUSPECT


def hold(before: MemberHealth, proposed: MemberHealth) -> MemberHealth:
    """The health a held member shows: its old state, the tracker's new counts."""
    return replace(
        before,
        passes=proposed.passes,
        failures=proposed.failures,
        checked=proposed.checked,
    )


@dataclass(frozen=True, slots=True)
class Suspicion:
    """Suspicion began (``suspect``) or ended: for the log, the store and status."""

    suspect: bool
    at: float
    members: frozenset[MemberId]  # the members held
    restored: Mapping[MemberId, MemberHealth]  # downs undone on entry (UP again)
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """One check result after the guard: what the monitor stores and reports."""

    guard: GuardState
    health: MemberHealth  # the checked member's health to publish
    flipped: bool
    restored: Mapping[MemberId, MemberHealth] = field(
        default_factory=lambda: MappingProxyType({})
    )  # other members' health to publish
    event: Suspicion | None = None


def settle(
    guard: GuardState,
    config: GuardConfig | None,
    member: MemberId,
    *,
    ok: bool,
    reason: str,
    before: MemberHealth,
    proposed: MemberHealth,
    flipped: bool,
    members: Mapping[MemberId, MemberHealth],
    now: float,
) -> Outcome:
    """Pass one tracker result (``before`` -> ``proposed``) through the guard.

    ``members`` is the published health of every member before this result.
    ``config`` None switches the guard off (no pools known).
    """
    if ok:
        state, cleared = passed(guard, member)
        if not cleared:
            return Outcome(state, proposed, flipped)
        why = f"{member.to_text()} passed: {reason}"
        gone = Suspicion(False, now, guard.held, MappingProxyType({}), why)
        return Outcome(state, proposed, flipped, event=gone)
    if config is None or not (flipped or (guard.recent and not guard.suspect)):
        return Outcome(guard, proposed, flipped)
    downs = {member: Down(now, before)} if flipped else {}
    # this result's counts over the rest; ChainMap writes only to its first map
    # (typeshed asks MutableMapping of every one)
    current = ChainMap({member: proposed}, cast(MutableMapping[MemberId, MemberHealth], members))
    state, verdict = propose(guard, downs, members=current, config=config, now=now)
    restored = MappingProxyType(
        {m: hold(prev, members[m]) for m, prev in verdict.restore.items()}
    )
    event = None
    if verdict.entered:
        event = Suspicion(True, now, state.held, restored, verdict.reason)
    if member in verdict.hold:
        return Outcome(state, hold(before, proposed), False, restored, event)
    return Outcome(state, proposed, flipped, restored, event)


def _state(members: Mapping[MemberId, MemberHealth], member: MemberId) -> State:
    health = members.get(member)
    return State.UP if health is None else health.state


def _census(
    downs: Mapping[MemberId, Down],
    members: Mapping[MemberId, MemberHealth],
    config: GuardConfig,
    exempt: frozenset[MemberId],
    now: float,
) -> _Census:
    candidates: set[MemberId] = set()
    unknown: set[MemberId] = set()
    passing = 0
    for member in config.pools:
        if member in exempt:
            continue
        if member in downs:
            candidates.add(member)
            continue
        health = members.get(member)
        if health is not None and health.state is State.DOWN:
            continue  # long down
        if health is None or health.checked is None or now - health.checked >= config.window:
            unknown.add(member)
        elif health.failures:
            candidates.add(member)
        else:
            passing += 1
    return _Census(frozenset(candidates), frozenset(unknown), passing)


def _triggered(census: _Census, config: GuardConfig) -> bool:
    involved = census.candidates
    if len(involved) < config.min_members:  # T1
        return False
    pools = set().union(*(config.pools[m] for m in involved))
    if len(pools) < config.min_pools:  # T2
        return False
    alive = len(involved) + census.passing
    # T3; the epsilon keeps 0.75 * 8 == 6 from failing on float rounding.
    return len(involved) >= math.ceil(config.fraction * alive - 1e-9)
