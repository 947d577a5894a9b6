"""Who may transfer a zone: default deny, address prefixes and/or TSIG keys.

Owns the rule a zone's ``allow_transfer`` and ``transfer_keys`` make, and
the decision for one request (from an address, signed by a verified key or
not). The rule, as a table (prefixes = ``allow_transfer``, keys =
``transfer_keys``)::

    prefixes  keys   a request is allowed when
    --------  -----  ------------------------------------------------
    none      none   never (default deny)
    set       none   its source address is in one of the prefixes
    none      set    it is signed with one of the keys (verified)
    set       set    both: its address matches and it is signed with one

A request signed with a key we do not have, or whose MAC does not verify,
never gets here: ``xfr.request`` answers it NOTAUTH first (RFC 8945 §5.2).

Pure: no sockets, no clock. Must not: verify signatures (``xfr.request``)
or read the config file (``transfers`` builds the rules).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import dns.name

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AccessRule:
    """A zone's transfer rule: address prefixes and key names (both empty: deny all)."""

    prefixes: tuple[Network, ...] = ()
    keys: frozenset[dns.name.Name] = frozenset()

    @classmethod
    def from_text(cls, prefixes: Iterable[str], keys: Iterable[str]) -> AccessRule:
        """From the config's spelling; ValueError for a prefix that is not one."""
        return cls(
            tuple(ipaddress.ip_network(p, strict=False) for p in prefixes),
            frozenset(dns.name.from_text(k) for k in keys),
        )

    def address_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.prefixes if net.version == ip.version)

    def allows(self, address: str, key: dns.name.Name | None) -> bool:
        """May a request from ``address``, signed with verified ``key`` (or None), transfer?"""
        if not self.prefixes and not self.keys:
            return False
        if self.prefixes and not self.address_allowed(address):
            return False
        return not self.keys or (key is not None and key in self.keys)


DENY = AccessRule()
