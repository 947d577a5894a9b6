"""health.monitor refuses a schedule it cannot keep, before any thread or check starts."""

from __future__ import annotations

import pytest

from dnsserve.health.model import MemberId
from dnsserve.health.monitor import Monitor
from dnsserve.health.probes import CheckKind, CheckSpec
from dnsserve.health.targets import (
    MAX_CONCURRENCY,
    MIN_CONCURRENCY,
    Target,
    concurrency_needed,
)


def http_target(address: str, port: int, *, interval: float = 0.2, timeout: float = 0.15,
                rise: int = 2, fall: int = 2) -> Target:
    spec = CheckSpec(kind=CheckKind.HTTP, port=port, path="/health", timeout=timeout)
    return Target(MemberId("web", address), spec, interval, rise, fall)


def test_bad_schedules_are_rejected() -> None:
    target = http_target("127.0.0.49", 80, interval=0.2, timeout=0.2)
    with pytest.raises(ValueError, match="timeout < interval"):
        Monitor([target], {}, lambda *a: None)


def test_the_default_concurrency_bound_follows_the_schedules() -> None:
    few = [http_target(f"192.0.2.{i}", 80, interval=1.0, timeout=0.5) for i in range(10)]
    many = [http_target(f"198.51.100.{i}", 80, interval=1.0, timeout=0.5) for i in range(250)]
    huge = [Target(MemberId("web", f"10.0.{i // 250}.{i % 250}"), t.spec, t.interval, 2, 2)
            for i, t in enumerate(many * 4)]
    assert concurrency_needed(few) == MIN_CONCURRENCY  # 5 needed
    assert concurrency_needed(many) == 125  # 250 checks of 0.5 s every 1 s
    assert concurrency_needed(huge) == MAX_CONCURRENCY  # 500 needed: capped
