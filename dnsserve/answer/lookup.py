"""Answer keys, the zone for a qname, and the slow path that answers a miss.

Owns the answer key (lower-cased qname wire, qtype, qclass) the engine
computes from a query's bytes and the snapshot's table is keyed by; the
choice of zone for a qname (the deepest, except DS which the parent
answers); and ``compute``, the answer to a query no answer was prebuilt for
(other classes and transfers REFUSED, MAILA/MAILB NOTIMP, else the zone's
lookup rendered).

Must not: hold state, build or swap snapshots, or know about pools (the
snapshot overlays pools onto the zones it passes in). Pure: no I/O, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping

import dns.name
from dns.rcode import Rcode
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.answer.prebuilt import Prebuilt, empty, render
from dnsserve.zones.table import Result, ZoneTable, closest_origin

_TYPE_CLASS = struct.Struct("!HH")

# Query types answered without a lookup (transfers are not offered here).
_REFUSED_TYPES = frozenset({RdataType.AXFR, RdataType.IXFR})
_NOTIMP_TYPES = frozenset({RdataType.MAILA, RdataType.MAILB})


def answer_key(qname: dns.name.Name, qtype: int, qclass: int) -> bytes:
    """The key the engine computes from a query's bytes, from dnspython values."""
    wire = qname.to_wire()
    assert wire is not None  # None only when writing to a file
    return wire.lower() + _TYPE_CLASS.pack(qtype, qclass)


def key_parts(key: bytes) -> tuple[dns.name.Name, int, int]:
    qname, used = dns.name.from_wire(key, 0)
    qtype, qclass = _TYPE_CLASS.unpack_from(key, used)
    return qname, qtype, qclass


def find_zone(
    zones: Mapping[dns.name.Name, ZoneTable], qname: dns.name.Name, qtype: int
) -> ZoneTable | None:
    """The deepest zone containing ``qname``.

    DS at a zone apex belongs to the parent side (RFC 4035 §3.1.4.1): the
    parent zone answers it when we serve that too, else the child's own
    zone answers (NODATA with its SOA), as Knot and NSD do.
    """
    if qtype == RdataType.DS and qname in zones and qname != dns.name.root:
        parent = _deepest(zones, qname.parent())
        if parent is not None:
            return parent
    return _deepest(zones, qname)


def _deepest(
    zones: Mapping[dns.name.Name, ZoneTable], name: dns.name.Name
) -> ZoneTable | None:
    origin = closest_origin(name, zones)
    return None if origin is None else zones[origin]


def lookup(
    zones: Mapping[dns.name.Name, ZoneTable], qname: dns.name.Name, qtype: int
) -> Result | None:
    """The lookup in the zone ``find_zone`` chooses; None when no zone holds ``qname``."""
    table = find_zone(zones, qname, qtype)
    return None if table is None else table.lookup(qname, RdataType(qtype))


def in_expired(
    zones: Mapping[dns.name.Name, ZoneTable],
    qname: dns.name.Name,
    qtype: int,
    qclass: int,
    expired: Collection[dns.name.Name],
) -> bool:
    """Whether an expired secondary zone (or one with no copy yet) owns the
    query: it is the deepest zone holding ``qname``, served or not."""
    if not expired or qclass != RdataClass.IN:
        return False
    gone = closest_origin(qname, expired)
    if gone is None:
        return False
    table = find_zone(zones, qname, qtype)
    return table is None or table.origin == gone or not table.origin.is_subdomain(gone)


def compute(
    zones: Mapping[dns.name.Name, ZoneTable],
    qname: dns.name.Name,
    qtype: int,
    qclass: int,
    expired: Collection[dns.name.Name] = frozenset(),
) -> Prebuilt:
    if qclass != RdataClass.IN:
        return empty(Rcode.REFUSED)
    if qtype in _NOTIMP_TYPES:
        return empty(Rcode.NOTIMP)
    if in_expired(zones, qname, qtype, qclass, expired):
        return empty(Rcode.SERVFAIL)
    if qtype in _REFUSED_TYPES:
        return empty(Rcode.REFUSED)
    table = find_zone(zones, qname, qtype)
    if table is None:
        return empty(Rcode.REFUSED)
    return render(qname, qtype, qclass, table.lookup(qname, RdataType(qtype)))
