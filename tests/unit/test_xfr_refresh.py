"""The secondary's refresh rules (dnsserve.xfr.refresh): timers, decisions, expiry."""

from __future__ import annotations

import pytest

from dnsserve.xfr.refresh import (
    MAX_EXPIRE,
    MAX_REFRESH,
    MIN_INTERVAL,
    NO_COPY_TIMERS,
    Action,
    RefreshState,
    Timers,
    action,
    failed,
    held,
    loaded,
    notified,
    succeeded,
)


@pytest.mark.parametrize(
    ("soa", "timers"),
    [
        ((3600, 600, 604800), Timers(3600, 600, 604800)),
        ((0, 0, 0), Timers(MIN_INTERVAL, MIN_INTERVAL, 2 * MIN_INTERVAL)),
        ((2, 1, 1), Timers(2, 1, 3)),  # expire at least refresh + retry
        ((2**32 - 1, 600, 2**32 - 1), Timers(MAX_REFRESH, 600, MAX_EXPIRE)),
    ],
)
def test_timers_are_clamped(soa: tuple[int, int, int], timers: Timers) -> None:
    assert Timers.from_soa(*soa) == timers


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        (None, 5, Action.AXFR),
        (5, 5, Action.CURRENT),
        (5, 6, Action.IXFR),
        (6, 5, Action.BEHIND),
        (2**32 - 1, 0, Action.IXFR),  # RFC 1982: 0 follows 2**32 - 1
        (0, 2**32 - 1, Action.BEHIND),
        (0, 2**31, Action.BEHIND),  # undefined (2**31 apart): never a transfer
    ],
)
def test_action_follows_serial_arithmetic(ours: int | None, theirs: int,
                                           expected: Action) -> None:
    assert action(ours, theirs) is expected


T = Timers(refresh=100, retry=10, expire=1000)


def test_success_schedules_refresh_and_pushes_expiry() -> None:
    state = succeeded(RefreshState(), 7, T, now=50.0)
    assert (state.serial, state.last_success, state.next_refresh) == (7, 50.0, 150.0)
    assert state.expires_at() == 1050.0
    assert not state.expired(1049.9) and state.expired(1050.0)
    assert state.remaining(50.0) == 1000 and state.remaining(2000.0) == 0


def test_jitter_shortens_and_is_bounded() -> None:
    assert succeeded(RefreshState(), 7, T, now=0.0, jitter=0.05).next_refresh == 95.0
    assert succeeded(RefreshState(), 7, T, now=0.0, jitter=5.0).next_refresh == 90.0
    assert succeeded(RefreshState(), 7, T, now=0.0, jitter=-1.0).next_refresh == 100.0


def test_failure_retries_and_keeps_expiry() -> None:
    state = succeeded(RefreshState(), 7, T, now=0.0)
    state = failed(state, "timed out", now=100.0)
    assert (state.serial, state.last_error, state.next_refresh) == (7, "timed out", 110.0)
    assert state.expires_at() == 1000.0
    assert succeeded(state, 8, T, now=120.0).last_error == ""


def test_held_keeps_serial_but_not_expiring() -> None:
    state = held(succeeded(RefreshState(), 7, T, now=0.0), "guard", now=500.0)
    assert (state.serial, state.last_error, state.next_refresh) == (7, "guard", 510.0)
    assert state.expires_at() == 1500.0


def test_no_copy_is_expired() -> None:
    state = RefreshState()
    assert state.expired(0.0) and state.remaining(0.0) == 0 and state.expires_at() is None
    assert state.timers == NO_COPY_TIMERS
    assert failed(state, "refused", now=1.0).next_refresh == 1.0 + NO_COPY_TIMERS.retry


def test_loaded_copy_refreshes_at_once_and_expires_from_its_write() -> None:
    state = loaded(7, T, written_at=100.0, now=400.0)
    assert state.next_refresh == 400.0 and state.expires_at() == 1100.0
    assert loaded(7, T, written_at=900.0, now=400.0).last_success == 400.0  # clock skew


def test_notify_makes_refresh_due_now() -> None:
    state = succeeded(RefreshState(), 7, T, now=0.0)
    assert notified(state, now=20.0).next_refresh == 20.0
    assert notified(state, now=200.0).next_refresh == 100.0
