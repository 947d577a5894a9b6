"""A pre-signed zone's DNSSEC data, read from its table: the denial chain and expiry.

Owns what a ``ZoneTable`` of a zone signed beforehand holds for DNSSEC,
read through the table's wire accessors: whether the zone is signed (DNSKEYs
and RRSIGs at its apex), its denial chain (``Chain``: the NSEC owners in the
canonical order of RFC 4034 §6.1, or the NSEC3 hashes of RFC 5155 with the
zone's NSEC3PARAM salt and iterations) with the records matching or
covering a name, and the signatures that expire soon (``expiring``, RFC
4034 §3.1.5 serial arithmetic; ``dnsserve check`` warns three days ahead).

The RRSIGs themselves are kept in the table beside the data they cover (one
stored RRset per covered type, ``zones.compile``); the answers built from
them are ``answer.dnssec``'s.

Must not: sign anything, read the clock (``now`` is given), or change a table.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from dataclasses import dataclass

import dns.name
from dns.rdatatype import RdataType

from dnsserve.zones.blobs import name_key
from dnsserve.zones.table import ZoneTable

_RRSIG, _NSEC, _NSEC3, _DNSKEY, _NSEC3PARAM = (
    int(t) for t in (RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3, RdataType.DNSKEY,
                     RdataType.NSEC3PARAM))
_B32HEX = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUV", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


class Chain:
    """A signed zone's denial chain: NSEC owners in canonical order, or NSEC3 hashes."""

    __slots__ = ("_hashes", "_keys", "_order", "iterations", "nsec3", "salt")

    def __init__(self, table: ZoneTable) -> None:
        apex = table.wire_node(name_key(table.origin))
        params = None
        for rdtype, _, rdatas in apex[1] if apex is not None else ():
            if rdtype == _NSEC3PARAM and rdatas:
                params = rdatas[0]
        self.nsec3 = params is not None
        self.salt = b""
        self.iterations = 0
        found: list[tuple[tuple[bytes, ...], bytes]] = []
        for key, rdtype in table.wire_rrset_keys():
            if params is None and rdtype == _NSEC:
                found.append((_canonical(key), key))
            elif params is not None and rdtype == _NSEC3:
                label = key[1 : 1 + key[0]].upper().translate(_B32HEX)
                found.append(((base64.b32decode(label),), key))
        if params is not None:
            self.iterations = (params[2] << 8) | params[3]
            self.salt = params[5 : 5 + params[4]]
        found.sort()
        self._order = [point for point, _ in found]
        self._keys = [key for _, key in found]

    def _hash(self, key: bytes) -> bytes:
        """RFC 5155 §5: SHA-1 of the canonical (lower-cased) name and salt, iterated."""
        digest = hashlib.sha1(key + self.salt).digest()
        for _ in range(self.iterations):
            digest = hashlib.sha1(digest + self.salt).digest()
        return digest

    def _point(self, key: bytes) -> tuple[bytes, ...]:
        """Where ``key`` sorts in the chain (an NSEC3 hash as a 1-tuple)."""
        return (self._hash(key),) if self.nsec3 else _canonical(key)

    def match(self, key: bytes) -> bytes | None:
        """The owner of the NSEC/NSEC3 record of name ``key`` itself, if there is one."""
        point = self._point(key)
        i = bisect.bisect_left(self._order, point)
        if i < len(self._order) and self._order[i] == point:
            return self._keys[i]
        return None

    def cover(self, key: bytes) -> bytes | None:
        """The owner of the record whose span holds ``key`` (the last one wraps around)."""
        if not self._keys:
            return None
        i = bisect.bisect_right(self._order, self._point(key)) - 1
        return self._keys[i]  # i = -1: the last record covers names before the first


def _canonical(key: bytes) -> tuple[bytes, ...]:
    """RFC 4034 §6.1 order of a lower-cased wire name: its labels, rightmost first."""
    labels = []
    at = 0
    while key[at]:
        labels.append(key[at + 1 : at + 1 + key[at]])
        at += key[at] + 1
    labels.reverse()
    return tuple(labels)


def is_signed(table: ZoneTable) -> bool:
    """A zone signed beforehand: DNSKEYs and RRSIGs at its apex."""
    apex = table.wire_node(name_key(table.origin))
    types = {rdtype for rdtype, _, _ in apex[1]} if apex is not None else set()
    return _DNSKEY in types and _RRSIG in types


EXPIRY_WARNING = 3 * 86400  # ``dnsserve check`` warns of signatures expiring this soon
_SERIAL = 1 << 32


@dataclass(frozen=True, slots=True)
class Expiring:
    """The signatures of a zone that expire within a window: how many, and the first."""

    count: int
    owner: dns.name.Name
    covered: RdataType
    seconds: int  # from ``now`` to the first expiry (negative: expired already)


def expiring(table: ZoneTable, now: float, within: int = EXPIRY_WARNING) -> Expiring | None:
    """The RRSIGs of ``table`` whose expiration is less than ``within`` seconds
    after ``now`` (RFC 4034 §3.1.5: 32-bit times, serial arithmetic), or None."""
    clock = int(now) % _SERIAL
    count = 0
    first: tuple[int, bytes, int] | None = None
    for key in table.loaded_keys():
        stored = table.wire_node(key)
        if stored is None:
            continue
        for rdtype, _, rdatas in stored[1]:
            if rdtype != _RRSIG:
                continue
            for rdata in rdatas:
                delta = (int.from_bytes(rdata[8:12], "big") - clock) % _SERIAL
                seconds = delta - _SERIAL if delta >= _SERIAL // 2 else delta
                if seconds < within:
                    count += 1
                    if first is None or seconds < first[0]:
                        first = (seconds, stored[0], int.from_bytes(rdata[:2], "big"))
    if first is None:
        return None
    seconds, owner, covered = first
    return Expiring(count, dns.name.from_wire(owner, 0)[0], RdataType.make(covered), seconds)
