"""The self-suspicion guard as a pure state machine: explicit times, no clock."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from dnsserve.health.guard import (
    Down,
    GuardConfig,
    GuardState,
    Mode,
    Verdict,
    forced,
    hold,
    passed,
    propose,
    settle,
)
from dnsserve.health.model import MemberHealth, MemberId, State

UP_BEFORE = MemberHealth(State.UP, since=0.0, reason="", passes=5)


def members(n: int, monitor: str = "web") -> list[MemberId]:
    return [MemberId(monitor, f"127.0.0.{10 + i}") for i in range(n)]


def pools_of(*groups: list[MemberId]) -> dict[MemberId, frozenset[str]]:
    """Pool i holds the members of groups[i]."""
    out: dict[MemberId, set[str]] = {}
    for i, group in enumerate(groups):
        for m in group:
            out.setdefault(m, set()).add(f"pool{i}")
    return {m: frozenset(p) for m, p in out.items()}


def drive(
    flips: list[tuple[MemberId, float]],
    config: GuardConfig,
    *,
    states: Mapping[MemberId, State] | None = None,
    guard: GuardState | None = None,
) -> tuple[GuardState, dict[MemberId, State], list[Verdict]]:
    """Propose each DOWN flip in turn, as the monitor does; apply the verdicts."""
    current = dict(states or {})
    guard = guard or GuardState()
    verdicts = []
    for member, at in flips:
        guard, verdict = propose(
            guard, {member: Down(at, UP_BEFORE)}, states=current, config=config, now=at
        )
        for m in verdict.apply:
            current[m] = State.DOWN
        for m in verdict.restore:
            current[m] = State.UP
        verdicts.append(verdict)
    return guard, current, verdicts


def test_four_members_in_two_pools_down_within_one_interval_are_held() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.5)
    flips = [(m, 100.0 + 0.3 * i) for i, m in enumerate(ms)]
    guard, states, verdicts = drive(flips, config)
    assert guard.suspect and guard.mode is Mode.SUSPECT
    assert guard.since == pytest.approx(100.9)
    assert guard.held == frozenset(ms)
    # The first three were applied as they came, the fourth entered suspicion,
    # held itself and restored the three.
    assert [v.apply for v in verdicts[:3]] == [frozenset({m}) for m in ms[:3]]
    last = verdicts[3]
    assert last.entered and last.hold == {ms[3]} and not last.apply
    assert set(last.restore) == set(ms[:3])
    assert all(h == UP_BEFORE for h in last.restore.values())
    assert all(s is State.UP for s in states.values())


def test_more_downs_while_suspect_are_held_without_a_new_alarm() -> None:
    ms = members(5)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0, fraction=0.75)
    guard, _, verdicts = drive([(m, 10.0) for m in ms[:4]], config)
    assert guard.suspect and verdicts[-1].entered
    guard, _, verdicts = drive([(ms[4], 50.0)], config, guard=guard)
    assert verdicts == [Verdict(hold=frozenset({ms[4]}))]
    assert guard.held == frozenset(ms) and guard.since == 10.0


def test_half_of_six_going_down_fails_over() -> None:
    ms = members(6)
    config = GuardConfig(pools=pools_of(ms[:3], ms[3:]), window=2.0)
    guard, states, verdicts = drive([(ms[0], 5.0), (ms[3], 5.1), (ms[4], 5.2)], config)
    assert not guard.suspect
    assert all(v.apply and not v.hold and not v.entered for v in verdicts)
    down, up = State.DOWN, State.UP
    assert [states.get(m, up) for m in ms] == [down, up, up, down, down, up]


def test_a_held_member_passing_clears_suspicion() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, _, _ = drive([(m, 1.0) for m in ms], config)
    assert guard.suspect
    stranger = MemberId("web", "127.0.0.99")
    still, cleared = passed(guard, stranger)  # not held: not evidence either way
    assert still.suspect and not cleared
    guard, cleared = passed(guard, ms[2])
    assert cleared and not guard.suspect and guard.held == frozenset() and not guard.recent
    # Members still failing now fail over: with one member back, three downs
    # are too few to suspect anything.
    states = {ms[2]: State.UP}
    guard, states, verdicts = drive([(ms[0], 9.0), (ms[1], 9.1), (ms[3], 9.2)], config,
                                    states=states, guard=guard)
    assert not guard.suspect and all(v.apply for v in verdicts)


def test_an_operator_forcing_states_clears_suspicion() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, _, _ = drive([(m, 1.0) for m in ms], config)
    guard, was_on = forced(guard)
    assert was_on and guard == GuardState()
    assert forced(guard) == (GuardState(), False)


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
    guard, states, verdicts = drive([(m, 1.0) for m in ms], config)
    assert not guard.suspect, name
    assert all(states[m] is State.DOWN for m in ms)
    assert not any(v.entered or v.hold for v in verdicts)


@pytest.mark.parametrize(("down", "suspect"), [(5, False), (6, True), (8, True)])
def test_fraction_three_quarters(down: int, suspect: bool) -> None:
    ms = members(8)
    config = GuardConfig(pools=pools_of(ms[:4], ms[4:]), window=1.0, fraction=0.75)
    order = [ms[0], ms[4], ms[1], ms[5], ms[2], ms[6], ms[3], ms[7]][:down]
    guard, _, verdicts = drive([(m, 3.0 + 0.01 * i) for i, m in enumerate(order)], config)
    assert guard.suspect is suspect
    # Suspicion begins with the sixth down, once; later downs are held.
    assert [i for i, v in enumerate(verdicts) if v.entered] == ([5] if suspect else [])
    assert all(v.hold and not v.apply for v in verdicts[6:])


def test_downs_spread_wider_than_the_window_fail_over() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, states, _ = drive([(m, 10.0 * i) for i, m in enumerate(ms)], config)
    assert not guard.suspect
    assert all(states[m] is State.DOWN for m in ms)


def test_a_member_down_for_long_does_not_disarm_the_guard() -> None:
    ms = members(5)
    config = GuardConfig(pools=pools_of(ms[:3], ms[3:]), window=1.0)
    broken_since_last_week = {ms[0]: State.DOWN}
    guard, _, verdicts = drive([(m, 100.0) for m in ms[1:]], config,
                               states=broken_since_last_week)
    assert guard.suspect and verdicts[-1].entered
    assert ms[0] not in guard.held


def test_a_recent_down_that_came_back_up_no_longer_counts() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=5.0)
    guard, states, _ = drive([(m, 1.0) for m in ms[:3]], config)
    states[ms[0]] = State.UP  # rose again
    guard, _, verdicts = drive([(ms[3], 2.0)], config, states=states, guard=guard)
    assert not guard.suspect and verdicts[0].apply == {ms[3]}


def test_members_outside_every_pool_are_ignored() -> None:
    ms = members(4)
    lone = [MemberId("tcp", f"127.0.1.{i}") for i in range(4)]
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    guard, _, _ = drive([(m, 1.0) for m in lone], config)
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
    assert propose(guard, {}, states={}, config=config, now=1.0) == (guard, Verdict())


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


# -- settle: one tracker result through the guard, as the monitor uses it --


def down_health(at: float, failures: int = 2) -> MemberHealth:
    return MemberHealth(State.DOWN, since=at, reason="connect refused", failures=failures,
                        checked=at)


def test_settle_holds_the_flip_that_enters_suspicion_and_restores_the_rest() -> None:
    ms = members(4)
    config = GuardConfig(pools=pools_of(ms[:2], ms[2:]), window=1.0)
    published = {m: UP_BEFORE for m in ms}
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
    assert set(last.restored) == set(ms[:3])
    # Restored and held members show their old state with the tracker's counts.
    for m in ms:
        assert published[m].state is State.UP and published[m].since == 0.0
        assert published[m].failures == 2
    # A held member passing ends it, naming the member and the held set.
    up = MemberHealth(State.UP, since=0.0, passes=1, checked=5.0)
    out = settle(guard, config, ms[1], ok=True, reason="HTTP 200", before=published[ms[1]],
                 proposed=up, flipped=False, members=published, now=5.0)
    assert out.event is not None and not out.event.suspect
    assert out.event.members == frozenset(ms)
    assert out.event.reason == "web/127.0.0.11 passed: HTTP 200"
    assert not out.guard.suspect and out.health == up


def test_settle_passes_results_through_when_nothing_is_at_stake() -> None:
    m = members(1)[0]
    proposed = down_health(1.0)
    common = {"ok": False, "reason": "timeout", "before": UP_BEFORE, "proposed": proposed,
              "members": {}, "now": 1.0}
    # No pools known: the guard is off.
    out = settle(GuardState(), None, m, flipped=True, **common)  # type: ignore[arg-type]
    assert (out.health, out.flipped, out.event) == (proposed, True, None)
    # A failure that does not flip is not the guard's business.
    config = GuardConfig(pools={m: frozenset({"p"})}, window=1.0)
    out = settle(GuardState(), config, m, flipped=False, **common)  # type: ignore[arg-type]
    assert (out.health, out.flipped, out.event) == (proposed, False, None)
