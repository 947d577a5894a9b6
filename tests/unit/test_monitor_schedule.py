"""health.monitor refuses a schedule it cannot keep, before any thread or check starts."""

from __future__ import annotations

import pytest

from dnsserve.health.model import MemberId
from dnsserve.health.monitor import Monitor
from dnsserve.health.probes import CheckKind, CheckSpec
from dnsserve.health.targets import Target


def http_target(address: str, port: int, *, interval: float = 0.2, timeout: float = 0.15,
                rise: int = 2, fall: int = 2) -> Target:
    spec = CheckSpec(kind=CheckKind.HTTP, port=port, path="/health", timeout=timeout)
    return Target(MemberId("web", address), spec, interval, rise, fall)


def test_bad_schedules_are_rejected() -> None:
    target = http_target("127.0.0.49", 80, interval=0.2, timeout=0.2)
    with pytest.raises(ValueError, match="timeout < interval"):
        Monitor([target], {}, lambda *a: None)
