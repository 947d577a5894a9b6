"""xfr.access: default deny; address prefixes, keys, or both."""

from __future__ import annotations

import dns.name
import pytest

from dnsserve.xfr.access import DENY, AccessRule

K = dns.name.from_text("xfr")
OTHER = dns.name.from_text("other")


@pytest.mark.parametrize(
    ("prefixes", "keys", "address", "key", "allowed"),
    [
        ((), (), "127.0.0.1", None, False),
        ((), (), "127.0.0.1", K, False),
        (("127.0.0.0/8",), (), "127.0.0.5", None, True),
        (("127.0.0.0/8",), (), "10.0.0.1", None, False),
        (("127.0.0.0/8",), (), "::ffff:127.0.0.9", None, True),
        (("::1/128",), (), "::1", None, True),
        (("::1/128",), (), "127.0.0.1", None, False),
        ((), ("xfr",), "10.0.0.1", K, True),
        ((), ("xfr",), "10.0.0.1", None, False),
        ((), ("xfr",), "10.0.0.1", OTHER, False),
        (("127.0.0.1/32",), ("xfr",), "127.0.0.1", K, True),
        (("127.0.0.1/32",), ("xfr",), "127.0.0.2", K, False),
        (("127.0.0.1/32",), ("xfr",), "127.0.0.1", None, False),
        (("127.0.0.1/32",), (), "not an address", None, False),
    ],
)
def test_rule_table(prefixes: tuple[str, ...], keys: tuple[str, ...], address: str,
                    key: dns.name.Name | None, allowed: bool) -> None:
    assert AccessRule.from_text(prefixes, keys).allows(address, key) is allowed


def test_default_deny() -> None:
    assert not DENY.allows("127.0.0.1", K)
