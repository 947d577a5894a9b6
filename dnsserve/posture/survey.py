"""What the posture rules read of the loaded zones, gathered in one pass per zone.

Pure [C]: owns ``Survey`` (per zone: the names that point elsewhere, CNAME,
DNAME, MX, NS and SRV, with their TTLs; the A/AAAA RRsets; the apex SOA and
NS; the delegations and the data hidden below them) and the name lookups the
rules share (``exists``: does a name fall in a zone we serve and exist
there). Reads ``ZoneTable``'s wire accessors and decodes only the types the
rules need. Must not: judge anything (``posture.zonerules`` and
``posture.poolrules`` do), read files or the clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
from dns.rdatatype import RdataType

from dnsserve.zones.blobs import key_offsets, name_key
from dnsserve.zones.table import ResultKind, ZoneTable, closest_origin

_POINTERS = {RdataType.CNAME, RdataType.DNAME, RdataType.MX, RdataType.NS, RdataType.SRV}
_ADDRESSES = {RdataType.A, RdataType.AAAA}
_AT_CUT = {RdataType.NS, RdataType.DS, RdataType.NSEC, RdataType.RRSIG}


@dataclass(frozen=True, slots=True)
class Pointer:
    """One record that names another: ``owner type ttl -> target``."""

    owner: dns.name.Name
    rdtype: RdataType
    ttl: int
    target: dns.name.Name


@dataclass(frozen=True, slots=True)
class AddressSet:
    owner: dns.name.Name
    rdtype: RdataType
    ttl: int
    addresses: tuple[str, ...]


@dataclass(slots=True)
class ZoneSurvey:
    origin: dns.name.Name
    file: str
    pointers: list[Pointer] = field(default_factory=list)
    addresses: list[AddressSet] = field(default_factory=list)
    soa: dns.rdata.Rdata | None = None
    apex_ns: list[dns.name.Name] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Survey:
    tables: Mapping[dns.name.Name, ZoneTable]
    zones: tuple[ZoneSurvey, ...]

    def exists(self, name: dns.name.Name) -> bool | None:
        """Whether ``name`` exists in the zone we serve that holds it (a wildcard or
        DNAME covers it too); None when no zone we serve holds it, or a delegation does."""
        origin = closest_origin(name, self.tables)
        if origin is None:
            return None
        kind = self.tables[origin].lookup(name, RdataType.CNAME).kind
        if kind is ResultKind.REFERRAL:
            return None
        return kind is not ResultKind.NXDOMAIN

    def addresses_of(self, name: dns.name.Name) -> set[str] | None:
        """The A/AAAA addresses our zones answer for ``name``; None when not ours."""
        origin = closest_origin(name, self.tables)
        if origin is None:
            return None
        table = self.tables[origin]
        found: set[str] = set()
        for rdtype in _ADDRESSES:
            result = table.lookup(name, rdtype)
            rrsets = [*result.answer, *result.additional]
            if result.kind is ResultKind.REFERRAL:  # glue, if we hold it
                rrsets = [r for r in result.additional if r.name == name]
            found.update(rd.to_text() for r in rrsets if r.rdtype == rdtype for rd in r)
        return found

    def cname_target(self, name: dns.name.Name) -> dns.name.Name | None:
        """The target of the static CNAME at ``name`` in our zones, or None."""
        origin = closest_origin(name, self.tables)
        if origin is None:
            return None
        rrset = self.tables[origin].rrset(name, RdataType.CNAME)
        return _target(rrset[0]) if rrset is not None else None


def survey(
    tables: Mapping[dns.name.Name, ZoneTable],
    files: Mapping[dns.name.Name, str],
    *,
    addresses: bool = True,
) -> Survey:
    """Every zone of ``tables`` surveyed, in origin order. Without ``addresses`` (no
    ``[[region]]`` to judge them by) the A/AAAA RRsets are not decoded: a big zone's
    addresses are most of it."""
    return Survey(tables, tuple(_zone(origin, tables[origin], files.get(origin, ""), addresses)
                                for origin in sorted(tables)))


def _zone(origin: dns.name.Name, table: ZoneTable, file: str, addresses: bool) -> ZoneSurvey:
    out = ZoneSurvey(origin, file)
    apex = name_key(origin)
    cuts, dnames = set(), set()
    for key in table.loaded_keys():
        node = table.wire_node(key)
        types = {t for t, _, _ in node[1]} if node is not None else set()
        if key != apex and RdataType.NS in types:
            cuts.add(key)
        if RdataType.DNAME in types:
            dnames.add(key)
    glue = _glue(table, apex, cuts)
    for key in table.loaded_keys():
        node = table.wire_node(key)
        if node is None or _below(key, apex, dnames) is not None:
            continue  # below a DNAME: occluded (zones.compile warns), never served
        wire_owner, rrsets = node
        owner = dns.name.from_wire(wire_owner, 0)[0]
        cut = _cut_above(key, apex, cuts)
        for rdtype, ttl, rdatas in rrsets:
            rdt = RdataType(rdtype)
            if cut is not None and (cut != key or _hidden(key, rdt, cut, glue)):
                continue  # glue, or occluded (zones.compile warns): not ours to judge
            if rdt in _POINTERS:
                for rd in _decoded(rdt, rdatas):
                    out.pointers.append(Pointer(owner, rdt, ttl, _target(rd)))
                    if rdt == RdataType.NS and key == apex:
                        out.apex_ns.append(_target(rd))
            elif rdt in _ADDRESSES and addresses:
                out.addresses.append(AddressSet(owner, rdt, ttl, tuple(
                    rd.to_text() for rd in _decoded(rdt, rdatas))))
            elif rdt == RdataType.SOA and key == apex:
                out.soa = next(iter(_decoded(rdt, rdatas)))
    return out


def _decoded(rdtype: RdataType, rdatas: list[bytes]) -> Iterator[dns.rdata.Rdata]:
    for rd in rdatas:
        yield dns.rdata.from_wire(dns.rdataclass.IN, rdtype, rd, 0, len(rd))


def _target(rd: dns.rdata.Rdata) -> dns.name.Name:
    name = getattr(rd, "target", None)
    if name is None:
        name = getattr(rd, "exchange", None)
    assert isinstance(name, dns.name.Name)
    return name


def _cut_above(key: bytes, apex: bytes, cuts: set[bytes]) -> bytes | None:
    """The delegation nearest the apex at or above ``key``, or None."""
    if not cuts:
        return None
    found = None
    for at in key_offsets(key):
        above = key[at:]
        if len(above) <= len(apex):
            break
        if above in cuts:
            found = above
    return found


def _below(key: bytes, apex: bytes, owners: set[bytes]) -> bytes | None:
    """The nearest of ``owners`` strictly above ``key`` (inside the zone), or None."""
    if not owners:
        return None
    for at in key_offsets(key)[1:]:
        above = key[at:]
        if len(above) < len(apex):
            break
        if above in owners:
            return above
    return None


def _glue(table: ZoneTable, apex: bytes, cuts: set[bytes]) -> set[bytes]:
    """Every NS target of the apex and of every delegation (lower-cased wire names)."""
    out: set[bytes] = set()
    for key in (apex, *cuts):
        node = table.wire_node(key)
        for rdtype, _, rdatas in node[1] if node is not None else ():
            if rdtype == RdataType.NS:
                out.update(rd.lower() for rd in rdatas)
    return out


def _hidden(key: bytes, rdtype: RdataType, cut: bytes, glue: set[bytes]) -> bool:
    """Data at or below a delegation that is not the cut's own or glue."""
    if key == cut:
        return rdtype not in _AT_CUT
    return not (rdtype in _ADDRESSES and key in glue)
