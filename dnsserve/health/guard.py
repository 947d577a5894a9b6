"""The self-suspicion guard: when (nearly) everything fails at once, doubt the monitor.

Owns the decision whether the DOWN flips the tracker proposes are applied, or
held because the monitor more likely lost its own network than the world lost
every backend. Pure: times are passed in; no clock, no I/O, no logging (the
monitor logs and records the alarm from the verdict). It must not count passes
and failures (the tracker does) nor know about probes or answers.

Terms. *Monitored* members are those in at least one pool (``GuardConfig.pools``).
A *recent* down is a DOWN flip less than ``window`` seconds old whose member is
still DOWN. *Alive* members are the monitored ones minus those that were
already DOWN before the recent flips (a backend broken since last week must not
keep the guard from ever firing). ``window`` is the longest spread one
network-wide failure can give the flips: about one check interval plus the
timeouts; the monitor computes it.

The trigger, checked when a DOWN flip is proposed in NORMAL mode, over the
recent downs including the proposed ones:

    T1. at least ``min_members`` (4) recent downs among monitored members,
    T2. spanning at least ``min_pools`` (2) pools,
    T3. recent downs >= ``fraction`` x alive members (``suspect_fraction``,
        default 1.0: every member that was up went down together).

A partial outage (fewer than ``fraction`` of the alive members) fails over
normally. The state machine, all of it:

    mode     event                               -> mode     effect
    -------  ----------------------------------  -------  ------------------------------
    NORMAL   DOWN flips, trigger not met            NORMAL   apply; remember them `window`
    NORMAL   DOWN flips, trigger met                SUSPECT  hold them; restore the recent
                                                             downs to their state before
                                                             their flip; alarm (entered)
    SUSPECT  DOWN flips                             SUSPECT  hold them
    SUSPECT  a held member passes a check           NORMAL   clear; members still failing
                                                             flip at their next failure
    any      a member not held passes / flips UP    same     nothing (not evidence either way)
    any      an operator forces states              NORMAL   clear, forget recent downs

A held member keeps its previous state, since and reason; its counts go on
(``hold``), so once suspicion clears a member still failing flips DOWN at its
next failed check, without waiting ``fall`` checks again.

``propose``/``passed``/``forced`` are the machine; ``settle`` applies it to one
tracker result the way the monitor needs (health to publish, members restored,
a ``Suspicion`` event to log and record).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from dnsserve.health.model import MemberHealth, MemberId, State


class Mode(enum.Enum):
    NORMAL = "normal"
    SUSPECT = "suspect"


@dataclass(frozen=True, slots=True)
class GuardConfig:
    pools: Mapping[MemberId, Set[str]]  # member -> keys of the pools it serves
    window: float                       # seconds in which flips count as simultaneous
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


def propose(
    guard: GuardState,
    downs: Mapping[MemberId, Down],
    *,
    states: Mapping[MemberId, State],
    config: GuardConfig,
    now: float,
) -> tuple[GuardState, Verdict]:
    """Decide on this round's DOWN flips.

    ``states`` are the published states of all members before these flips
    (a member missing from it is UP: never seen).
    """
    if not downs:
        return guard, Verdict()
    if guard.mode is Mode.SUSPECT:
        held = frozenset(downs)
        return replace(guard, held=guard.held | held), Verdict(hold=held)
    recent = {
        member: down
        for member, down in guard.recent.items()
        if states.get(member) is State.DOWN and now - down.at < config.window
    }
    candidates = {**recent, **downs}
    if not _triggered(candidates, states, config):
        state = GuardState(recent=MappingProxyType(candidates))
        return state, Verdict(apply=frozenset(downs))
    restore = {m: d.before for m, d in recent.items() if m not in downs}
    state = GuardState(Mode.SUSPECT, since=now, held=frozenset(candidates))
    return state, Verdict(
        hold=frozenset(downs), restore=MappingProxyType(restore), entered=True
    )


def passed(guard: GuardState, member: MemberId) -> tuple[GuardState, bool]:
    """A member passed a check; return the new state and whether suspicion cleared."""
    if guard.mode is Mode.SUSPECT and member in guard.held:
        return GuardState(), True
    return guard, False


def forced(guard: GuardState) -> tuple[GuardState, bool]:
    """An operator forced states: leave suspicion; return whether it was on."""
    return GuardState(), guard.mode is Mode.SUSPECT


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
    if not flipped or config is None:
        return Outcome(guard, proposed, flipped)
    states = {m: h.state for m, h in members.items()}
    state, verdict = propose(
        guard, {member: Down(now, before)}, states=states, config=config, now=now
    )
    restored = MappingProxyType(
        {m: hold(prev, members[m]) for m, prev in verdict.restore.items()}
    )
    event = None
    if verdict.entered:
        why = f"{len(state.held)} members down within {config.window:.1f} s"
        event = Suspicion(True, now, state.held, restored, why)
    if member in verdict.hold:
        return Outcome(state, hold(before, proposed), False, restored, event)
    return Outcome(state, proposed, True, restored, event)


def _triggered(
    candidates: Mapping[MemberId, Down],
    states: Mapping[MemberId, State],
    config: GuardConfig,
) -> bool:
    monitored = config.pools
    involved = [m for m in candidates if m in monitored]
    if len(involved) < config.min_members:  # T1
        return False
    pools = set().union(*(monitored[m] for m in involved))
    if len(pools) < config.min_pools:  # T2
        return False
    already_down = sum(
        1 for m in monitored if states.get(m) is State.DOWN and m not in candidates
    )
    alive = len(monitored) - already_down
    # T3; the epsilon keeps 0.75 * 8 == 6 from failing on float rounding.
    return len(involved) >= math.ceil(config.fraction * alive - 1e-9)
