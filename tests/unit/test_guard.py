"""The self-suspicion guard as a pure state machine: explicit times, no clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest

from dnsserve.health.guard import (
    Down,
    GuardConfig,
    GuardState,
    Mode,
    Outcome,
    Verdict,
    forced,
    hold,
    passed,
    propose,
    settle,
)
from dnsserve.health.model import MemberHealth, MemberId, State
from dnsserve.health.tracker import never_seen, observe


def up(at: float | None) -> MemberHealth:
    """A member that passed its last check at ``at`` (None: never checked)."""
    return MemberHealth(State.UP, since=0.0, reason="HTTP 200", passes=5, checked=at)


def failing(at: float, failures: int = 1) -> MemberHealth:
    """UP, its last ``failures`` checks failed, the last at ``at``."""
    return MemberHealth(State.UP, since=0.0, reason="HTTP 200", failures=failures, checked=at)


def members(n: int, monitor: str = "web") -> list[MemberId]:
    return [MemberId(monitor, f"127.0.0.{10 + i}") for i in range(n)]


def pools_of(*groups: list[MemberId]) -> dict[MemberId, frozenset[str]]:
    """Pool i holds the members of groups[i]."""
    out: dict[MemberId, set[str]] = {}
    for i, group in enumerate(groups):
        for m in group:
            out.setdefault(m, set()).add(f"pool{i}")
    return {m: frozenset(p) for m, p in out.items()}


def passing(ms: Iterable[MemberId], at: float) -> dict[MemberId, MemberHealth]:
    return {m: up(at) for m in ms}


def drive(
    flips: list[tuple[MemberId, float]],
    config: GuardConfig,
    health: Mapping[MemberId, MemberHealth],
    *,
    guard: GuardState | None = None,
) -> tuple[GuardState, dict[MemberId, MemberHealth], list[Verdict]]:
    """Propose each DOWN flip in turn, as the monitor does; apply the verdicts.

    Members not flipping keep the health given (the caller says what evidence
    they give); a flip's member goes DOWN unless held.
    """
    current = dict(health)
    guard = guard or GuardState()
    verdicts = []
    for member, at in flips:
        before = current.get(member, up(at))
        guard, verdict = propose(
            guard, {member: Down(at, before)}, members=current, config=config, now=at
        )
        for m in verdict.apply:
            current[m] = MemberHealth(State.DOWN, since=at, reason="HTTP 503", failures=2,
                                      checked=at)
        for m, prev in verdict.restore.items():
            current[m] = prev
        if member in verdict.hold:
            current[member] = hold(before, failing(at, 2))
        verdicts.append(verdict)
    return guard, current, verdicts


def states(health: Mapping[MemberId, MemberHealth], ms: list[MemberId]) -> list[State]:
    return [health[m].state for m in ms]


# -- the trigger over downs only (what fall = 1 gives: no failure before the flip) --


def test_four_members_in_two_pools_down_within_one_interval_are_held() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.5)
    flips = [(m, 100.0 + 0.3 * i) for i, m in enumerate(ms)]
    guard, health, verdicts = drive(flips, config, passing(ms, 99.9))
    assert guard.suspect and guard.mode is Mode.SUSPECT
    assert guard.since == pytest.approx(100.9)
    assert guard.held == frozenset(ms)
    # The first three were applied as they came, the fourth entered suspicion,
    # held itself and restored the three.
    assert [v.apply for v in verdicts[:3]] == [frozenset({m}) for m in ms[:3]]
    last = verdicts[3]
    assert last.entered and last.hold == {ms[3]} and not last.apply
    assert set(last.restore) == set(ms[:3])
    assert all(h == up(99.9) for h in last.restore.values())
    assert states(health, ms) == [State.UP] * 4
    assert last.reason == "4 of 4 members failing or down within 1.5 s"


def test_more_downs_while_suspect_are_held_without_a_new_alarm() -> None:
    ms = members(5)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0, fraction=0.75)
    guard, _, verdicts = drive([(m, 10.0) for m in ms[:4]], config, passing(ms, 9.9))
    assert guard.suspect and verdicts[-1].entered
    guard, _, verdicts = drive([(ms[4], 50.0)], config, passing(ms, 49.9), guard=guard)
    assert verdicts == [Verdict(hold=frozenset({ms[4]}))]
    assert guard.held == frozenset(ms) and guard.since == 10.0


def test_half_of_six_going_down_fails_over() -> None:
    ms = members(6)
    config = GuardConfig(pools=pools_of(ms[:3], ms[3:]), window=2.0)
    guard, health, verdicts = drive([(ms[0], 5.0), (ms[3], 5.1), (ms[4], 5.2)], config,
                                    passing(ms, 4.9))
    assert not guard.suspect
    assert all(v.apply and not v.hold and not v.entered for v in verdicts)
    down, up_ = State.DOWN, State.UP
    assert states(health, ms) == [down, up_, up_, down, down, up_]


def test_a_held_member_passing_clears_suspicion() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, _, _ = drive([(m, 1.0) for m in ms], config, passing(ms, 0.9))
    assert guard.suspect
    stranger = MemberId("web", "127.0.0.99")
    still, cleared = passed(guard, stranger)  # not held: not evidence either way
    assert still.suspect and not cleared
    guard, cleared = passed(guard, ms[2])
    assert cleared and not guard.suspect and guard.held == frozenset() and not guard.recent
    # Members still failing now fail over: one member passes again, so three
    # failing members are too few to suspect anything.
    health = {**{m: failing(8.5, 3) for m in ms}, ms[2]: up(8.6)}
    guard, health, verdicts = drive([(ms[0], 9.0), (ms[1], 9.1), (ms[3], 9.2)], config,
                                    health, guard=guard)
    assert not guard.suspect and all(v.apply for v in verdicts)


def test_an_operator_forcing_states_clears_suspicion() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, _, _ = drive([(m, 1.0) for m in ms], config, passing(ms, 0.9))
    guard, was_on = forced(guard)
    assert was_on and guard == GuardState(exempt=frozenset(ms))
    assert forced(guard) == (GuardState(exempt=frozenset(ms)), False)
    assert forced(GuardState()) == (GuardState(), False)


@pytest.mark.parametrize(
    ("name", "groups"),
    [
        ("three members in two pools", [[0, 1], [2]]),
        ("five members in one pool", [[0, 1, 2, 3, 4]]),
    ],
)
def test_small_or_single_pool_setups_never_suspect(name: str, groups: list[list[int]]) -> None:
    ms = members(max(i for g in groups for i in g) + 1)
    config = GuardConfig(pools=pools_of(*[[ms[i] for i in g] for g in groups]), window=5.0)
    everyone_failing = {m: failing(0.9) for m in ms}
    guard, health, verdicts = drive([(m, 1.0) for m in ms], config, everyone_failing)
    assert not guard.suspect, name
    assert all(health[m].state is State.DOWN for m in ms)
    assert not any(v.entered or v.hold for v in verdicts)


@pytest.mark.parametrize(("down", "suspect"), [(5, False), (6, True), (8, True)])
def test_fraction_three_quarters(down: int, suspect: bool) -> None:
    ms = members(8)
    config = GuardConfig(pools=pools_of(ms[:4], ms[4:]), window=1.0, fraction=0.75)
    order = [ms[0], ms[4], ms[1], ms[5], ms[2], ms[6], ms[3], ms[7]][:down]
    guard, _, verdicts = drive([(m, 3.0 + 0.01 * i) for i, m in enumerate(order)], config,
                               passing(ms, 2.9))
    assert guard.suspect is suspect
    # Suspicion begins with the sixth down, once; later downs are held.
    assert [i for i, v in enumerate(verdicts) if v.entered] == ([5] if suspect else [])
    assert all(v.hold and not v.apply for v in verdicts[6:])


def test_downs_spread_wider_than_the_window_fail_over() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    health: dict[MemberId, MemberHealth] = {}
    guard = GuardState()
    for i, m in enumerate(ms):  # the others keep passing until their own failure
        at = 10.0 * i
        health = {**passing(ms, at - 0.1), **{k: h for k, h in health.items()
                                              if h.state is State.DOWN}}
        guard, health, _ = drive([(m, at)], config, health, guard=guard)
    assert not guard.suspect
    assert states(health, ms) == [State.DOWN] * 4


def test_a_member_down_for_long_does_not_disarm_the_guard() -> None:
    ms = members(5)
    config = GuardConfig(pools=pools_of(ms[:3], ms[3:]), window=1.0)
    broken_since_last_week = MemberHealth(State.DOWN, since=-1e6, failures=999, checked=99.9)
    health = {**passing(ms, 99.9), ms[0]: broken_since_last_week}
    guard, _, verdicts = drive([(m, 100.0) for m in ms[1:]], config, health)
    assert guard.suspect and verdicts[-1].entered
    assert ms[0] not in guard.held


def test_a_recent_down_that_came_back_up_no_longer_counts() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=5.0)
    guard, health, _ = drive([(m, 1.0) for m in ms[:3]], config, passing(ms, 0.9))
    health[ms[0]] = up(1.9)  # rose again
    guard, _, verdicts = drive([(ms[3], 2.0)], config, health, guard=guard)
    assert not guard.suspect and verdicts[0].apply == {ms[3]}


def test_members_outside_every_pool_are_ignored() -> None:
    ms = members(4)
    lone = [MemberId("tcp", f"127.0.1.{i}") for i in range(4)]
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, _, _ = drive([(m, 1.0) for m in lone], config,
                        {**passing(ms, 0.9), **{m: failing(0.9) for m in lone}})
    assert not guard.suspect


def test_hold_keeps_the_state_and_takes_the_counts() -> None:
    before = MemberHealth(State.UP, since=3.0, reason="HTTP 200", passes=7, checked=9.0)
    proposed = MemberHealth(State.DOWN, since=10.0, reason="timeout", failures=2, checked=10.0)
    assert hold(before, proposed) == MemberHealth(
        State.UP, since=3.0, reason="HTTP 200", passes=0, failures=2, checked=10.0
    )


def test_no_downs_changes_nothing() -> None:
    config = GuardConfig(pools={}, window=1.0)
    guard = GuardState()
    assert propose(guard, {}, members={}, config=config, now=1.0) == (guard, Verdict())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"window": 0.0}, "window"),
        ({"min_members": 0}, "min_members"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, object] = {"pools": {}, "window": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        GuardConfig(**args)  # type: ignore[arg-type]


# -- failing members: the guard sees it coming (end to end: test_health_e2e.py,
#    test_guard_publishes_no_down_flip_before_suspicion) --


def test_every_member_failing_suspects_at_the_first_flip_and_publishes_no_down() -> None:
    ms = members(6)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:4], ms[4:]), window=1.5)
    # fall = 2: each member failed once over the last interval; the first to
    # fail a second time proposes the first DOWN flip.
    health = {m: failing(10.0 + 0.08 * i) for i, m in enumerate(ms)}
    guard, after, verdicts = drive([(ms[2], 10.5)], config, health)
    assert verdicts == [Verdict(hold=frozenset({ms[2]}), entered=True,
                                reason="6 of 6 members failing or down within 1.5 s")]
    assert guard.suspect and guard.since == 10.5
    assert guard.held == frozenset(ms)  # the failing ones too: any of them passing clears it
    assert states(after, ms) == [State.UP] * 6
    # The others' flips that follow are held as well.
    guard, after, verdicts = drive([(m, 10.6 + 0.01 * i) for i, m in enumerate(ms) if m != ms[2]],
                                   config, after, guard=guard)
    assert all(v.hold and not v.apply and not v.entered for v in verdicts)
    assert states(after, ms) == [State.UP] * 6


def test_a_partial_outage_fails_over_at_the_same_checks_as_without_a_guard() -> None:
    ms = members(6)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:4], ms[4:]), window=1.5)
    # Five members failing, one passing all along: every flip applies as it comes.
    health = {**{m: failing(10.0 + 0.08 * i) for i, m in enumerate(ms[:5])}, ms[5]: up(10.3)}
    guard, after, verdicts = drive([(m, 10.5 + 0.05 * i) for i, m in enumerate(ms[:5])],
                                   config, health)
    assert not guard.suspect
    assert [v.apply for v in verdicts] == [frozenset({m}) for m in ms[:5]]
    assert states(after, ms) == [State.DOWN] * 5 + [State.UP]


def test_a_failure_older_than_the_window_is_no_evidence() -> None:
    ms = members(5)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    # ms[4] failed once long ago and has not been checked since: it does not
    # count as failing, nor as passing. Four failing members still suspect.
    health = {**{m: failing(10.0) for m in ms[:4]}, ms[4]: failing(2.0)}
    guard, _, verdicts = drive([(ms[0], 10.5)], config, health)
    assert verdicts[0].entered and verdicts[0].reason.startswith("4 of 4 ")
    assert guard.held == frozenset(ms)  # held: its first pass ends the suspicion
    guard, cleared = passed(guard, ms[4])
    assert cleared and not guard.suspect


def test_a_member_never_checked_is_no_evidence_but_is_held() -> None:
    ms = members(5)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    health = {m: failing(10.0) for m in ms[:4]}  # ms[4]: not in the view at all
    guard, _, verdicts = drive([(ms[0], 10.5)], config, {**health, ms[3]: failing(10.1)})
    assert verdicts[0].entered and ms[4] in guard.held
    # Too few failing members with evidence: one failing + one never-checked
    # member are not four.
    few = {ms[0]: failing(10.0), ms[1]: failing(10.0), ms[2]: failing(10.0), ms[3]: up(None)}
    guard, _, verdicts = drive([(ms[0], 10.5)], config, few)
    assert not guard.suspect and verdicts[0].apply == {ms[0]}


def test_a_member_still_passing_within_the_window_keeps_the_first_flip_applied() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.5)
    # ms[3]'s check of this interval has not returned: its last pass is fresh.
    health = {**{m: failing(10.0 + 0.1 * i) for i, m in enumerate(ms[:3])}, ms[3]: up(9.6)}
    guard, after, verdicts = drive([(ms[0], 10.5)], config, health)
    assert not guard.suspect and verdicts[0].apply == {ms[0]}
    # Its failure comes in: the trigger is checked again and the flip undone.
    out = settle(guard, config, ms[3], ok=False, reason="HTTP 503", before=after[ms[3]],
                 proposed=failing(10.52), flipped=False, members=after, now=10.52)
    assert out.event is not None and out.event.suspect
    assert out.guard.held == frozenset(ms)
    assert set(out.restored) == {ms[0]} and out.restored[ms[0]].state is State.UP
    assert (out.health, out.flipped) == (failing(10.52), False)


def test_a_failure_without_recent_downs_changes_nothing() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    health = {m: failing(10.0) for m in ms}  # all failing, none flipped yet: no alarm
    out = settle(GuardState(), config, ms[0], ok=False, reason="HTTP 503", before=health[ms[0]],
                 proposed=failing(10.5, 1), flipped=False, members=health, now=10.5)
    assert out == Outcome(GuardState(), failing(10.5, 1), False)


# -- an operator's force (end to end: test_health_e2e.py, test_operator_force_ends_suspicion) --


def test_after_a_force_the_held_members_fail_over_until_they_pass() -> None:
    ms = members(6)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:4], ms[4:]), window=1.5)
    guard, after, _ = drive([(ms[0], 10.5)], config, {m: failing(10.2) for m in ms})
    assert guard.suspect and guard.held == frozenset(ms)
    guard, was_on = forced(guard)
    assert was_on and not guard.suspect and guard.exempt == frozenset(ms)
    # The held members keep failing: each flip now applies, no new alarm.
    still = {m: failing(11.0, 3) for m in ms}
    guard, after, verdicts = drive([(m, 11.5 + 0.05 * i) for i, m in enumerate(ms)], config,
                                   still, guard=guard)
    assert [v.apply for v in verdicts] == [frozenset({m}) for m in ms]
    assert not any(v.entered or v.hold or v.restore for v in verdicts)
    assert states(after, ms) == [State.DOWN] * 6 and not guard.recent
    # Failures of exempt members do not check the trigger either.
    out = settle(guard, config, ms[0], ok=False, reason="HTTP 503", before=after[ms[0]],
                 proposed=after[ms[0]], flipped=False, members=after, now=12.0)
    assert out.event is None and out.guard == guard


def test_an_exempt_member_counts_again_once_it_passes() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, _ = forced(GuardState(Mode.SUSPECT, since=1.0, held=frozenset(ms)))
    guard, cleared = passed(guard, ms[1])
    assert not cleared and guard.exempt == frozenset({ms[0], ms[2], ms[3]})
    for m in (ms[0], ms[2], ms[3]):
        guard, _ = passed(guard, m)
    assert guard == GuardState()
    # Back to normal: the whole set failing at once is suspected again.
    guard, _, verdicts = drive([(ms[0], 20.5)], config, {m: failing(20.2) for m in ms},
                               guard=guard)
    assert guard.suspect and verdicts[0].entered


def test_exempt_members_are_left_out_of_the_trigger_and_of_later_suspicions() -> None:
    ms = members(8)
    config = GuardConfig(pools=pools_of(ms[:4], ms[4:]), window=1.0)
    guard = GuardState(exempt=frozenset(ms[:2]))
    # The six others all failing: suspected without the two exempt ones, which
    # are neither counted as alive nor held.
    health = {**{m: up(30.0) for m in ms[:2]}, **{m: failing(30.2) for m in ms[2:]}}
    guard, _, verdicts = drive([(ms[2], 30.5)], config, health, guard=guard)
    assert verdicts[0].entered and verdicts[0].reason.startswith("6 of 6 ")
    assert guard.held == frozenset(ms[2:]) and guard.exempt == frozenset(ms[:2])
    # An exempt member's flip during the suspicion applies; an exempt member
    # passing is no held member passing.
    guard, _, verdicts = drive([(ms[0], 30.6)], config, health, guard=guard)
    assert verdicts == [Verdict(apply=frozenset({ms[0]}))] and guard.suspect
    guard, cleared = passed(guard, ms[1])
    assert not cleared and guard.suspect and guard.exempt == frozenset({ms[0]})
    # A force keeps the earlier exemptions and adds the held members.
    guard, was_on = forced(guard)
    assert was_on and guard.exempt == frozenset(ms) - {ms[1]}


# -- settle: one tracker result through the guard, as the monitor uses it --


def down_health(at: float, failures: int = 2) -> MemberHealth:
    return MemberHealth(State.DOWN, since=at, reason="connect refused", failures=failures,
                        checked=at)


def test_settle_holds_the_flip_that_enters_suspicion_and_restores_the_rest() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    published = passing(ms, 0.95)
    guard = GuardState()
    outcomes = []
    for i, m in enumerate(ms):
        out = settle(guard, config, m, ok=False, reason="connect refused",
                     before=published[m], proposed=down_health(1.0 + i / 10), flipped=True,
                     members=published, now=1.0 + i / 10)
        guard = out.guard
        published = {**published, **out.restored, m: out.health}
        outcomes.append(out)
    assert [o.flipped for o in outcomes] == [True, True, True, False]
    last = outcomes[-1]
    assert last.event is not None and last.event.suspect
    assert last.event.members == frozenset(ms) and last.event.restored == last.restored
    assert last.event.reason == "4 of 4 members failing or down within 1.0 s"
    assert set(last.restored) == set(ms[:3])
    # Restored and held members show their old state with the tracker's counts.
    for m in ms:
        assert published[m].state is State.UP and published[m].since == 0.0
        assert published[m].failures == 2
    # A held member passing ends it, naming the member and the held set.
    ok = MemberHealth(State.UP, since=0.0, passes=1, checked=5.0)
    out = settle(guard, config, ms[1], ok=True, reason="HTTP 200", before=published[ms[1]],
                 proposed=ok, flipped=False, members=published, now=5.0)
    assert out.event is not None and not out.event.suspect
    assert out.event.members == frozenset(ms)
    assert out.event.reason == "web/127.0.0.11 passed: HTTP 200"
    assert not out.guard.suspect and out.health == ok


def test_settle_passes_results_through_when_nothing_is_at_stake() -> None:
    m = members(1)[0]
    proposed = down_health(1.0)
    common = {"ok": False, "reason": "timeout", "before": up(0.5), "proposed": proposed,
              "members": {}, "now": 1.0}
    # No pools known: the guard is off.
    out = settle(GuardState(), None, m, flipped=True, **common)  # type: ignore[arg-type]
    assert (out.health, out.flipped, out.event) == (proposed, True, None)
    # A failure that does not flip is not the guard's business.
    config = GuardConfig(pools={m: frozenset({"p"})}, window=1.0)
    out = settle(GuardState(), config, m, flipped=False, **common)  # type: ignore[arg-type]
    assert (out.health, out.flipped, out.event) == (proposed, False, None)


# -- a schedule of results through tracker and guard, as the monitor runs them --


@dataclass
class Run:
    """Published health and what was published, for results fed as the monitor does."""

    config: GuardConfig | None
    fall: int = 2
    rise: int = 2
    guard: GuardState = field(default_factory=GuardState)
    health: dict[MemberId, MemberHealth] = field(default_factory=dict)
    published_downs: list[tuple[float, MemberId]] = field(default_factory=list)
    alarms: list[tuple[float, bool]] = field(default_factory=list)

    def result(self, member: MemberId, ok: bool, at: float) -> Outcome:
        before = self.health.get(member)
        proposed, flipped = observe(before, ok, "HTTP 200" if ok else "HTTP 503", at,
                                    rise=self.rise, fall=self.fall)
        out = settle(self.guard, self.config, member, ok=ok, reason="r",
                     before=before or never_seen(at), proposed=proposed, flipped=flipped,
                     members=self.health, now=at)
        self.guard = out.guard
        self.health.update(out.restored)
        self.health[member] = out.health
        if out.flipped and out.health.state is State.DOWN:
            self.published_downs.append((at, member))
        if out.event is not None:
            self.alarms.append((at, out.event.suspect))
        return out


def schedule(phases: dict[MemberId, float], interval: float, start: float, end: float,
             bad: Mapping[MemberId, float]) -> list[tuple[float, MemberId, bool]]:
    """Every member checked each interval at its phase; fails from its ``bad`` time."""
    out = []
    for m, phase in phases.items():
        at = start + phase
        while at < end:
            out.append((at, m, at < bad.get(m, float("inf"))))
            at += interval
    return sorted(out)


SIX = members(6)
JITTERED = [  # phases of the six members over a 1 s interval (first checks spread)
    [0.05, 0.21, 0.33, 0.52, 0.74, 0.93],
    [0.90, 0.10, 0.11, 0.12, 0.13, 0.14],
    [0.01, 0.02, 0.03, 0.04, 0.05, 0.999],
]


@pytest.mark.parametrize("phases", JITTERED)
@pytest.mark.parametrize("cut", [10.0, 10.5, 10.95])
def test_a_network_cut_on_a_jittered_schedule_publishes_no_down(
    phases: list[float], cut: float
) -> None:
    config = GuardConfig(pools=pools_of(SIX[:2], SIX[2:4], SIX[4:]), window=1.5)
    run = Run(config)
    for at, m, ok in schedule(dict(zip(SIX, phases, strict=True)), 1.0, 0.0, 16.0,
                              dict.fromkeys(SIX, cut)):
        run.result(m, ok, at)
    assert run.published_downs == []
    assert [s for _, s in run.alarms] == [True]
    assert all(h.state is State.UP and h.failures >= 4 for h in run.health.values())


@pytest.mark.parametrize("phases", JITTERED)
def test_a_partial_outage_on_a_jittered_schedule_flips_as_without_a_guard(
    phases: list[float],
) -> None:
    results = schedule(dict(zip(SIX, phases, strict=True)), 1.0, 0.0, 16.0,
                       dict.fromkeys(SIX[:5], 10.3))  # SIX[5] stays up
    guarded, bare = Run(GuardConfig(pools=pools_of(SIX[:2], SIX[2:4], SIX[4:]), window=1.5)),\
        Run(None)
    for at, m, ok in results:
        guarded.result(m, ok, at)
        bare.result(m, ok, at)
    assert guarded.published_downs == bare.published_downs
    assert len(guarded.published_downs) == 5 and not guarded.alarms


def test_with_fall_one_the_first_downs_apply_and_are_restored() -> None:
    config = GuardConfig(pools=pools_of(SIX[:2], SIX[2:4], SIX[4:]), window=1.5)
    run = Run(config, fall=1)
    for at, m, ok in schedule(dict(zip(SIX, JITTERED[0], strict=True)), 1.0, 0.0, 14.0,
                              dict.fromkeys(SIX, 10.0)):
        run.result(m, ok, at)
    # No failure before the flip to see: five flips publish, the sixth suspects.
    assert len(run.published_downs) == 5 and [s for _, s in run.alarms] == [True]
    assert all(h.state is State.UP for h in run.health.values())
