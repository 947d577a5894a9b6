"""testkit.health_many: the p95 the check benchmark reads from two scrapes of a histogram."""

from __future__ import annotations

import math

import pytest

from testkit.health_many import histogram, quantile

INF = math.inf


def test_quantile_of_what_came_between_two_scrapes() -> None:
    before = [(0.01, 10.0), (0.05, 10.0), (INF, 10.0)]
    # since then: 90 under 10 ms, 10 between 10 and 50 ms
    after = [(0.01, 100.0), (0.05, 110.0), (INF, 110.0)]
    p95, n = quantile(before, after, 0.95)
    assert n == 100
    assert p95 == pytest.approx(0.01 + 0.04 * (95 - 90) / 10)
    assert quantile(before, after, 0.5)[0] == pytest.approx(0.01 * 50 / 90)


def test_quantile_past_the_last_bound_and_of_nothing() -> None:
    assert quantile([], [(0.05, 1.0), (INF, 10.0)], 0.95) == (INF, 10)
    value, n = quantile([(0.05, 3.0), (INF, 3.0)], [(0.05, 3.0), (INF, 3.0)], 0.95)
    assert math.isnan(value) and n == 0


def test_histogram_reads_one_monitor_s_buckets() -> None:
    name = "dnsserve_check_lateness_seconds"
    samples = {
        (f"{name}_bucket", 'monitor="web",le="0.05"'): 4.0,
        (f"{name}_bucket", 'monitor="web",le="+Inf"'): 5.0,
        (f"{name}_bucket", 'monitor="api",le="0.05"'): 9.0,
        (f"{name}_count", 'monitor="web"'): 5.0,
    }
    assert histogram(samples, name, "web") == [(0.05, 4.0), (INF, 5.0)]
