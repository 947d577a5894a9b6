"""A secondary zone's refresh timers and decisions (RFC 1034 §4.3.5, RFC 1996, RFC 1982).

Pure [C]: owns the rules below as functions of a frozen ``RefreshState`` and
``now``. It must not read the clock, draw random numbers (the jitter is an
argument), touch the network or files, or log: ``secondary`` does all that
and asks here what to do and when.

Rules:

1. The timers come from the SOA of the copy we hold, clamped (``Timers.from_soa``):
   refresh and retry to [MIN_INTERVAL, MAX_REFRESH] and [MIN_INTERVAL, MAX_RETRY],
   expire to [refresh + retry, MAX_EXPIRE]. Before any copy, ``NO_COPY_TIMERS``.
2. A refresh checks the primaries' SOA serial. The copy is current when the
   primary's serial is not later than ours (RFC 1982 ``serial_gt``): a serial
   that went backwards is never taken (``Action.BEHIND``, reported).
3. A later serial is transferred: IXFR when we hold a version, else AXFR.
4. A successful check or transfer sets ``last_success`` and schedules the next
   refresh ``refresh`` seconds on; a failure schedules it ``retry`` seconds on.
   Both are shortened by the jitter (a fraction in [0, MAX_JITTER]) so
   secondaries of one primary spread out.
   A transfer the deletion guard holds back keeps our version; the primary
   answered, so it counts as a success for expiry, and is tried again after
   ``retry`` (``held``).
5. A NOTIFY (allowed by the edge) makes the refresh due now.
6. The zone is expired when we hold no copy, or ``expire`` seconds have passed
   since ``last_success``: it answers SERVFAIL until a later success.
   ``remaining`` is the RFC 7314 EXPIRE value: seconds left, 0 once expired.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from dnsserve.zones.versions import serial_gt

MIN_INTERVAL = 1
MAX_REFRESH = 4 * 7 * 86400
MAX_RETRY = 2 * 7 * 86400
MAX_EXPIRE = 8 * 7 * 86400
MAX_JITTER = 0.1


@dataclass(frozen=True, slots=True)
class Timers:
    """The SOA's refresh, retry and expire, in seconds, within sane bounds (rule 1)."""

    refresh: int
    retry: int
    expire: int

    @classmethod
    def from_soa(cls, refresh: int, retry: int, expire: int) -> Timers:
        refresh = min(max(refresh, MIN_INTERVAL), MAX_REFRESH)
        retry = min(max(retry, MIN_INTERVAL), MAX_RETRY)
        expire = min(max(expire, refresh + retry), MAX_EXPIRE)
        return cls(refresh, retry, expire)


# Before the first copy: retry often, so a primary that comes up is seen soon.
NO_COPY_TIMERS = Timers(refresh=60, retry=5, expire=60 + 5)


class Action(enum.Enum):
    """What a refresh does once it knows the primary's serial (rules 2 and 3)."""

    CURRENT = "current"  # ours is the primary's serial (or later by one that wrapped the same)
    BEHIND = "behind"  # the primary's serial is older than ours: never go backwards
    IXFR = "ixfr"
    AXFR = "axfr"


def action(ours: int | None, theirs: int) -> Action:
    """Rules 2 and 3: ``ours`` is the serial of the copy we hold (None: no copy)."""
    if ours is None:
        return Action.AXFR
    if ours == theirs:
        return Action.CURRENT
    if serial_gt(theirs, ours):
        return Action.IXFR
    return Action.BEHIND


@dataclass(frozen=True, slots=True)
class RefreshState:
    """One secondary zone's refresh state: what status shows, what timers follow."""

    serial: int | None = None  # of the copy we hold; None: no copy yet
    timers: Timers = NO_COPY_TIMERS
    last_success: float | None = None  # a check or transfer that left us current
    last_refresh: float | None = None  # the last attempt, whatever its outcome
    next_refresh: float = 0.0
    last_error: str = ""

    def expires_at(self) -> float | None:
        """When the copy expires (rule 6); None with no copy."""
        if self.serial is None or self.last_success is None:
            return None
        return self.last_success + self.timers.expire

    def expired(self, now: float) -> bool:
        at = self.expires_at()
        return at is None or now >= at

    def remaining(self, now: float) -> int:
        """RFC 7314's EXPIRE: whole seconds until the copy expires, 0 once expired."""
        at = self.expires_at()
        return 0 if at is None else max(0, int(at - now))


def loaded(serial: int, timers: Timers, written_at: float, now: float) -> RefreshState:
    """The state at start from the copy on disk (written, or last confirmed, at
    ``written_at``): served at once, refreshed at once."""
    return RefreshState(serial=serial, timers=timers, last_success=min(written_at, now),
                        next_refresh=now)


def succeeded(
    state: RefreshState, serial: int, timers: Timers, now: float, jitter: float = 0.0
) -> RefreshState:
    """Rule 4, success: we hold ``serial`` (with its SOA's ``timers``), current as of ``now``."""
    return replace(state, serial=serial, timers=timers, last_success=now, last_refresh=now,
                   next_refresh=now + timers.refresh * (1.0 - _jitter(jitter)), last_error="")


def failed(state: RefreshState, error: str, now: float, jitter: float = 0.0) -> RefreshState:
    """Rule 4, failure: keep the copy (and its expiry), try again after ``retry``."""
    return replace(state, last_refresh=now, last_error=error,
                   next_refresh=now + state.timers.retry * (1.0 - _jitter(jitter)))


def held(state: RefreshState, error: str, now: float, jitter: float = 0.0) -> RefreshState:
    """A transfer the deletion guard held back: the primary answered (the copy we
    serve does not expire for it), but we keep our version; try again after ``retry``."""
    return replace(state, last_success=now, last_refresh=now, last_error=error,
                   next_refresh=now + state.timers.retry * (1.0 - _jitter(jitter)))


def notified(state: RefreshState, now: float) -> RefreshState:
    """Rule 5: a NOTIFY makes the refresh due now."""
    return replace(state, next_refresh=min(state.next_refresh, now))


def _jitter(jitter: float) -> float:
    return min(max(jitter, 0.0), MAX_JITTER)
