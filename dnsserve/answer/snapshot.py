"""Frozen snapshots: everything one query reads, built whole and swapped.

Owns the merge of all served zones into one table of prebuilt answers keyed
by (lower-cased qname wire, qtype, qclass), the choice of zone for a qname
(the deepest, except DS which the parent answers), the CHAOS identity
answers, and the slow path that computes an answer on a miss.

A snapshot is never changed after it is built: a reload or a health change
builds a new one (sharing unchanged prebuilt answers) and the edge swaps the
reference. Pure: no I/O, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import dns.name
import dns.rdataclass
import dns.rdtypes.ANY.TXT
import dns.rrset
from dns.rcode import Rcode
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.answer.prebuilt import Prebuilt, Variants, empty, render
from dnsserve.health.model import HealthView
from dnsserve.zones.table import Kind, Result, ZoneTable

_TYPE_CLASS = struct.Struct("!HH")

# Names answered in class CHAOS, and which configured text each carries.
CHAOS_VERSION = ("version.bind.", "version.server.")
CHAOS_IDENTITY = ("id.server.", "hostname.bind.")

# Query types answered without a lookup (transfers are not offered here).
_REFUSED_TYPES = frozenset({RdataType.AXFR, RdataType.IXFR})
_NOTIMP_TYPES = frozenset({RdataType.MAILA, RdataType.MAILB})

Entry = Prebuilt | Variants


def answer_key(qname: dns.name.Name, qtype: int, qclass: int) -> bytes:
    """The key the engine computes from a query's bytes, from dnspython values."""
    return qname.to_wire().lower() + _TYPE_CLASS.pack(qtype, qclass)


def key_parts(key: bytes) -> tuple[dns.name.Name, int, int]:
    qname, used = dns.name.from_wire(key, 0)
    qtype, qclass = _TYPE_CLASS.unpack_from(key, used)
    return qname, qtype, qclass


@dataclass(frozen=True, slots=True)
class Snapshot:
    zones: Mapping[dns.name.Name, ZoneTable]
    answers: Mapping[bytes, Entry]
    health: HealthView = field(default_factory=HealthView)
    generation: int = 0

    def find_zone(self, qname: dns.name.Name, qtype: int) -> ZoneTable | None:
        return find_zone(self.zones, qname, qtype)

    def compute(self, qname: dns.name.Name, qtype: int, qclass: int) -> Prebuilt:
        """The slow path: an answer not prebuilt (NXDOMAIN, wildcard, referral, …)."""
        return compute(self.zones, qname, qtype, qclass)


def find_zone(
    zones: Mapping[dns.name.Name, ZoneTable], qname: dns.name.Name, qtype: int
) -> ZoneTable | None:
    """The deepest zone containing ``qname``; for DS at a zone apex, its parent's."""
    name = qname
    if qtype == RdataType.DS and name in zones and name != dns.name.root:
        name = name.parent()
    while True:
        table = zones.get(name)
        if table is not None:
            return table
        if name == dns.name.root:
            return None
        name = name.parent()


def compute(
    zones: Mapping[dns.name.Name, ZoneTable], qname: dns.name.Name, qtype: int, qclass: int
) -> Prebuilt:
    if qclass != RdataClass.IN:
        return empty(Rcode.REFUSED)
    if qtype in _NOTIMP_TYPES:
        return empty(Rcode.NOTIMP)
    if qtype in _REFUSED_TYPES:
        return empty(Rcode.REFUSED)
    table = find_zone(zones, qname, qtype)
    if table is None:
        return empty(Rcode.REFUSED)
    return render(qname, qtype, qclass, table.lookup(qname, RdataType(qtype)))


def chaos_answers(version: str | None, identity: str | None) -> dict[bytes, Prebuilt]:
    """CHAOS TXT answers for version.bind and friends; a name left out is REFUSED."""
    out: dict[bytes, Prebuilt] = {}
    for names, text in ((CHAOS_VERSION, version), (CHAOS_IDENTITY, identity)):
        if not text:
            continue
        for name_text in names:
            name = dns.name.from_text(name_text)
            rrset = dns.rrset.RRset(name, RdataClass.CH, RdataType.TXT)
            rrset.add(dns.rdtypes.ANY.TXT.TXT(RdataClass.CH, RdataType.TXT, [text.encode()]), 0)
            result = Result(Kind.ANSWER, Rcode.NOERROR, True, (rrset,))
            out[answer_key(name, RdataType.TXT, RdataClass.CH)] = render(
                name, RdataType.TXT, RdataClass.CH, result
            )
    return out


def prebuild(zones: Mapping[dns.name.Name, ZoneTable]) -> dict[bytes, Prebuilt]:
    """Prebuilt answers for every (owner, type) the zones hold, plus A/AAAA at CNAMEs."""
    out: dict[bytes, Prebuilt] = {}
    for table in zones.values():
        for qname, qtype in _candidates(table):
            key = answer_key(qname, qtype, RdataClass.IN)
            if key not in out:
                out[key] = compute(zones, qname, qtype, RdataClass.IN)
    return out


def _candidates(table: ZoneTable) -> Iterable[tuple[dns.name.Name, int]]:
    for qname, qtype in table.rrset_keys():
        yield qname, qtype
        if qtype == RdataType.CNAME:
            yield qname, RdataType.A
            yield qname, RdataType.AAAA


def build_snapshot(
    zones: Mapping[dns.name.Name, ZoneTable],
    *,
    version: str | None = None,
    identity: str | None = None,
    generation: int = 0,
    health: HealthView | None = None,
) -> Snapshot:
    answers: dict[bytes, Entry] = {}
    answers.update(prebuild(zones))
    answers.update(chaos_answers(version, identity))
    return Snapshot(
        MappingProxyType(dict(zones)),
        answers,
        health if health is not None else HealthView(),
        generation,
    )
