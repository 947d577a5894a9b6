"""The rise/fall tracker, driven by lists of (ok, now) pairs: no clock, no sleeping."""

from __future__ import annotations

import pytest

from dnsserve.health.model import MemberHealth, State
from dnsserve.health.tracker import observe


def run(
    steps: list[tuple[bool, float]],
    *,
    rise: int,
    fall: int,
    start: MemberHealth | None = None,
    reasons: dict[float, str] | None = None,
) -> list[tuple[MemberHealth, bool]]:
    """Feed the steps in order; return every (health, flipped)."""
    out = []
    health = start
    for ok, now in steps:
        reason = (reasons or {}).get(now, "HTTP 200" if ok else "HTTP 503")
        health, flipped = observe(health, ok, reason, now, rise=rise, fall=fall)
        out.append((health, flipped))
    return out


def states(trace: list[tuple[MemberHealth, bool]]) -> list[str]:
    return [h.state.value + ("!" if flipped else "") for h, flipped in trace]


@pytest.mark.parametrize(
    ("name", "steps", "rise", "fall", "expected"),
    [
        ("never seen is up", [(True, 1.0)], 2, 2, ["up"]),
        (
            "fall consecutive failures flip down",
            [(False, 1.0), (False, 2.0), (False, 3.0)],
            2, 3,
            ["up", "up", "down!"],
        ),
        (
            "a pass while up resets failures",
            [(False, 1.0), (False, 2.0), (True, 3.0), (False, 4.0), (False, 5.0), (False, 6.0)],
            2, 3,
            ["up", "up", "up", "up", "up", "down!"],
        ),
        (
            "rise consecutive passes flip up, a failure restarts the count",
            [(False, 1.0), (True, 2.0), (False, 3.0), (True, 4.0), (True, 5.0), (True, 6.0)],
            2, 1,
            ["down!", "down", "down", "down", "up!", "up"],
        ),
        ("rise and fall of 1 flip on every change",
         [(False, 1.0), (True, 2.0), (False, 3.0)], 1, 1, ["down!", "up!", "down!"]),
        (
            "staying down does not flip again",
            [(False, 1.0), (False, 2.0), (False, 3.0), (False, 4.0)],
            2, 2,
            ["up", "down!", "down", "down"],
        ),
    ],
)
def test_hysteresis_table(
    name: str, steps: list[tuple[bool, float]], rise: int, fall: int, expected: list[str]
) -> None:
    assert states(run(steps, rise=rise, fall=fall)) == expected, name


def test_flip_takes_time_and_reason_of_the_deciding_check() -> None:
    trace = run(
        [(False, 10.0), (False, 11.0), (False, 12.0), (True, 13.0), (True, 14.0)],
        rise=2,
        fall=2,
        reasons={10.0: "connect refused", 11.0: "timeout", 12.0: "HTTP 503", 14.0: "HTTP 204"},
    )
    down, flipped = trace[1]
    assert flipped and down.state is State.DOWN
    assert (down.since, down.reason) == (11.0, "timeout")
    # Staying down keeps the reason and time of the flip; counts go on.
    assert (trace[2][0].since, trace[2][0].reason, trace[2][0].failures) == (11.0, "timeout", 3)
    up, flipped = trace[4]
    assert flipped and up.state is State.UP
    assert (up.since, up.reason, up.passes, up.failures) == (14.0, "HTTP 204", 2, 0)


def test_every_observation_sets_checked_and_counts() -> None:
    trace = run([(True, 1.0), (True, 2.0), (False, 3.0)], rise=2, fall=3)
    assert [(h.checked, h.passes, h.failures) for h, _ in trace] == [
        (1.0, 1, 0),
        (2.0, 2, 0),
        (3.0, 0, 1),
    ]
    # Never seen: up since the first observation, with no reason.
    assert (trace[0][0].since, trace[0][0].reason) == (1.0, "")


def test_state_from_the_state_file_is_the_starting_point() -> None:
    stored = MemberHealth(State.DOWN, since=5.0, reason="HTTP 500")
    trace = run([(True, 100.0), (True, 101.0)], rise=2, fall=2, start=stored)
    assert states(trace) == ["down", "up!"]
    assert trace[0][0].since == 5.0


@pytest.mark.parametrize(("rise", "fall"), [(0, 1), (1, 0), (-1, 2)])
def test_thresholds_below_one_are_rejected(rise: int, fall: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        observe(None, True, "ok", 0.0, rise=rise, fall=fall)
