"""posture.watchdiff: what deviates, and the start/clear state machine (pure, tiny)."""

from __future__ import annotations

from dnsserve.posture.watchdiff import (
    REACH,
    Content,
    Event,
    Kind,
    Observation,
    Truth,
    compare,
    next_turn,
    step,
)

Z, S = "example.", "127.0.0.1:5301"
WWW = ("www.example.", "A")
POOL = ("api.example.", "A")
TRUTH = Truth(Z, 5, {WWW: frozenset({"192.0.2.1"})},
              {POOL: frozenset({"192.0.2.10", "192.0.2.11"})})


def kinds(obs: Observation) -> list[Kind]:
    return [d.kind for d in compare(TRUTH, obs)[0]]


def test_compare_names_each_kind() -> None:
    assert kinds(Observation(Z, S, None, "timeout")) == [Kind.UNREACHABLE]
    assert kinds(Observation(Z, S, 4)) == [Kind.SERIAL_LAG]
    same = {WWW: frozenset({"192.0.2.1"}), POOL: frozenset({"192.0.2.11"})}
    assert kinds(Observation(Z, S, 5, content=Content(same))) == []  # a pool subset is fine
    gone = Content({WWW: frozenset(), POOL: frozenset({"192.0.2.99"})},
                   frozenset({"www.example."}))
    assert kinds(Observation(Z, S, 5, content=gone)) == [Kind.POOL, Kind.VANISHED]
    nodata = Content({WWW: frozenset(), POOL: frozenset()})
    assert kinds(Observation(Z, S, 5, content=nodata)) == [Kind.EMPTY, Kind.EMPTY]
    axfr = Content({WWW: frozenset({"192.0.2.2"}), ("x.example.", "A"): frozenset({"1.2.3.4"})},
                   complete=True)
    # api is absent from the AXFR: vanished; www differs; x is only there
    assert kinds(Observation(Z, S, 5, content=axfr)) == [Kind.VANISHED, Kind.DIFFERS, Kind.DIFFERS]


def test_step_starts_once_clears_once_and_keeps_what_was_not_looked_at() -> None:
    lag, looked = compare(TRUTH, Observation(Z, S, 4))
    active, events = step({}, Z, S, lag, looked)
    assert [e for e, _ in events] == [Event.START]
    active, events = step(active, Z, S, lag, looked)
    assert events == []
    down, looked_down = compare(TRUTH, Observation(Z, S, None))
    assert looked_down == frozenset({REACH})
    active, events = step(active, Z, S, down, looked_down)  # the lag is not cleared
    assert [(e, d.kind) for e, d in events] == [(Event.START, Kind.UNREACHABLE)]
    fine, looked = compare(TRUTH, Observation(Z, S, 5))
    active, events = step(active, Z, S, fine, looked)
    assert sorted(d.kind for _, d in events) == [Kind.SERIAL_LAG, Kind.UNREACHABLE]
    assert all(e is Event.CLEAR for e, _ in events) and active == {}


def test_next_turn_covers_a_large_zone_in_turns_and_a_small_one_every_round() -> None:
    keys = [(f"n{i}.example.", "A") for i in range(5)]
    first, cursor = next_turn(keys, 0, 2)
    second, cursor = next_turn(keys, cursor, 2)
    third, cursor = next_turn(keys, cursor, 2)
    assert set(first + second + third) == set(keys) and len(third) == 2
    assert next_turn(keys, 3, 10) == (keys[3:] + keys[:3], 3)
    assert next_turn([], 7, 2) == ([], 0)
