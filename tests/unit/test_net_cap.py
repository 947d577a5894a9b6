"""net.tcp_cap: the TCP connection cap under the process's file descriptor limit.

The cap is ``tcp_max_connections`` unless the limit leaves less than
``FD_RESERVE`` descriptors beside it; under a small limit a quarter of it goes
to TCP. The real server under a limit: tests/integration/test_fd_limit.py.
"""

from __future__ import annotations

import pytest

from dnsserve.net import FD_RESERVE, tcp_cap


@pytest.mark.parametrize(
    ("configured", "limit", "cap"),
    [
        (1000, None, 1000),  # unlimited
        (1000, 1_048_576, 1000),  # a systemd LimitNOFILE well above: as configured
        (1000, 1000 + FD_RESERVE, 1000),  # exactly the reserve beside the configured cap
        (1000, 1024, 1024 - FD_RESERVE),  # the usual soft limit: 640
        (100, 1024, 100),  # configured below what the limit allows
        (1000, 512, 128),  # limit - reserve = 128 = a quarter
        (1000, 128, 32),  # a small limit: a quarter of it
        (1000, 0, 0),
    ],
)
def test_tcp_cap(configured: int, limit: int | None, cap: int) -> None:
    assert tcp_cap(configured, limit) == cap


def test_the_reserve_is_never_less_than_three_quarters_of_a_small_limit() -> None:
    for limit in range(0, 4 * FD_RESERVE):
        assert limit - tcp_cap(10**6, limit) >= min(FD_RESERVE, limit - limit // 4)
