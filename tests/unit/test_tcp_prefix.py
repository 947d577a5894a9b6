"""net.prefix_of: what one client is for the per-prefix TCP limit (no sockets)."""

from __future__ import annotations

import ipaddress

from dnsserve.net import prefix_of


def test_prefix_of() -> None:
    assert prefix_of("192.0.2.77") == ipaddress.ip_network("192.0.2.0/24")
    assert prefix_of("2001:db8:1:2ff::1") == ipaddress.ip_network("2001:db8:1:200::/56")
    assert prefix_of("fe80::1%eth0", (32, 64)) == ipaddress.ip_network("fe80::/64")
    assert prefix_of("127.0.0.2", (32, 128)) != prefix_of("127.0.0.3", (32, 128))
