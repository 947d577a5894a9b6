"""health.checklog: the monitor's counters and its bounded ring of check starts."""

from __future__ import annotations

from dnsserve.health.checklog import COUNTERS, CheckLog, CheckRecord
from dnsserve.health.model import MemberId

WEB = MemberId("web", "127.0.0.11")


def test_counters_start_at_zero_and_settle_counts_each_outcome() -> None:
    log = CheckLog(ring_size=10)
    assert log.counters() == dict.fromkeys(COUNTERS, 0)
    log.settled(ok=True, timeout=False, flipped=True, held=False)
    log.settled(ok=False, timeout=True, flipped=False, held=True)
    log.count("skipped", 3)
    counters = log.counters()
    assert (counters["passes"], counters["failures"], counters["timeouts"]) == (1, 1, 1)
    assert (counters["flips"], counters["held"], counters["skipped"]) == (1, 1, 3)


def test_the_ring_keeps_the_last_starts_and_counts_every_one() -> None:
    log = CheckLog(ring_size=2)
    for i in range(3):
        log.started(CheckRecord(WEB, float(i), float(i), 1000.0 + i))
    assert [r.scheduled for r in log.records()] == [1.0, 2.0]
    assert log.counters()["checks"] == 3
