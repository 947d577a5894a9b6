"""Checks that could not run on this host: counted, logged now and then.

A check whose ``ProbeResult.local_error`` is set (out of file descriptors,
buffers or memory, a fork that failed) is no verdict on the member: the
monitor feeds it neither to the tracker nor to the guard and does not report
it through ``on_result``, so the member keeps its state. Owns what happens
to such a check instead: it is counted (``local_errors`` in the monitor's
``health.checklog``) and logged at most once per ``LOCAL_ERROR_LOG_EVERY``
seconds, with how many came since the last line.

Must not: touch a member's health, the tracker or the guard, or read the
clock (``at`` is the check's end, passed in).
"""

from __future__ import annotations

import logging

from dnsserve.health.checklog import CheckLog
from dnsserve.health.model import MemberId
from dnsserve.health.probes import ProbeResult

# The monitor's logger: these lines are the monitor's, wherever they are written.
log = logging.getLogger("dnsserve.health.monitor")

LOCAL_ERROR_LOG_EVERY = 10.0  # seconds between two log lines about local errors


class LocalErrors:
    """The local errors of one monitor, and when they were last logged."""

    __slots__ = ("_checks", "_logged")

    def __init__(self, checks: CheckLog) -> None:
        self._checks = checks
        self._logged: tuple[float, int] | None = None  # (when, local_errors then)

    def note(self, member: MemberId, result: ProbeResult, at: float) -> None:
        """A check that could not run here: count it, and log now and then; no verdict."""
        self._checks.count("local_errors")
        total = self._checks.counters()["local_errors"]
        last = self._logged
        if last is not None and at - last[0] < LOCAL_ERROR_LOG_EVERY:
            return
        since = total - (last[1] if last is not None else 0)
        self._logged = (at, total)
        log.warning(
            "check of %s could not run on this host (%s: %s); the member keeps its state"
            " (%d such checks since the last report, %d in all)",
            member.to_text(), result.reason, result.detail, since, total,
        )
