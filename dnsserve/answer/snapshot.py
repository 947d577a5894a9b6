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

from dnsserve.answer.policies import Selection
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
PoolKey = tuple[dns.name.Name, RdataType]  # (owner, type) a pool answers for


def answer_key(qname: dns.name.Name, qtype: int, qclass: int) -> bytes:
    """The key the engine computes from a query's bytes, from dnspython values."""
    return qname.to_wire().lower() + _TYPE_CLASS.pack(qtype, qclass)


def key_parts(key: bytes) -> tuple[dns.name.Name, int, int]:
    qname, used = dns.name.from_wire(key, 0)
    qtype, qclass = _TYPE_CLASS.unpack_from(key, used)
    return qname, qtype, qclass


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the engine reads: prebuilt answers and the zones for misses.

    ``base`` holds the zones as loaded; ``zones`` the same with every pool's
    rrset replaced by its current first variant (the slow path reads these).
    ``depends`` maps each pool to the answer keys that use its rrset, so a
    health change rebuilds only those.
    """

    zones: Mapping[dns.name.Name, ZoneTable]
    answers: Mapping[bytes, Entry]
    health: HealthView = field(default_factory=HealthView)
    generation: int = 0
    base: Mapping[dns.name.Name, ZoneTable] = field(default_factory=dict)
    selections: Mapping[PoolKey, Selection] = field(default_factory=dict)
    depends: Mapping[PoolKey, frozenset[bytes]] = field(default_factory=dict)

    def find_zone(self, qname: dns.name.Name, qtype: int) -> ZoneTable | None:
        return find_zone(self.zones, qname, qtype)

    def compute(self, qname: dns.name.Name, qtype: int, qclass: int) -> Prebuilt:
        """The slow path: an answer not prebuilt (NXDOMAIN, wildcard, referral, …)."""
        return compute(self.zones, qname, qtype, qclass)

    def with_selections(
        self,
        changed: Mapping[PoolKey, Selection],
        *,
        health: HealthView | None = None,
        generation: int | None = None,
    ) -> Snapshot:
        """A new snapshot where the pools in ``changed`` answer their new selection.

        Only the answers that use a changed pool are rebuilt; every other
        prebuilt answer is shared with this snapshot.
        """
        selections = {**self.selections, **changed}
        zones = _with_pools(self.base, selections, {})
        answers = dict(self.answers)
        for key in set().union(*(self.depends.get(pool, frozenset()) for pool in changed)):
            answers[key] = _dynamic_entry(self.base, selections, key)
        return Snapshot(
            zones,
            answers,
            health if health is not None else self.health,
            self.generation + 1 if generation is None else generation,
            self.base,
            selections,
            self.depends,
        )


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


def _candidates(table: ZoneTable) -> Iterable[tuple[dns.name.Name, int]]:
    for qname, qtype in table.rrset_keys():
        yield qname, qtype
        if qtype == RdataType.CNAME:
            yield qname, RdataType.A
            yield qname, RdataType.AAAA


def pool_rrset(pool: PoolKey, selection: Selection, k: int) -> dns.rrset.RRset | None:
    """The rrset a pool answers with in variant ``k`` (None: NODATA, fail closed)."""
    values = selection.values_variants[k] if selection.values_variants else ()
    if not values:
        return None
    owner, rdtype = pool
    return dns.rrset.from_text_list(owner, selection.ttl, RdataClass.IN, rdtype, list(values))


def _with_pools(
    base: Mapping[dns.name.Name, ZoneTable],
    selections: Mapping[PoolKey, Selection],
    variant: Mapping[PoolKey, int],
) -> Mapping[dns.name.Name, ZoneTable]:
    """The zones with each pool's rrset set to its variant (0 unless given)."""
    by_zone: dict[dns.name.Name, dict[PoolKey, dns.rrset.RRset | None]] = {}
    for pool, selection in selections.items():
        table = find_zone(base, pool[0], pool[1])
        if table is not None:
            rrset = pool_rrset(pool, selection, variant.get(pool, 0))
            by_zone.setdefault(table.origin, {})[pool] = rrset
    zones = dict(base)
    for origin, replacements in by_zone.items():
        zones[origin] = base[origin].with_rrsets(replacements)
    return MappingProxyType(zones)


def _lookup(
    zones: Mapping[dns.name.Name, ZoneTable], qname: dns.name.Name, qtype: int
) -> Result | None:
    table = find_zone(zones, qname, qtype)
    return None if table is None else table.lookup(qname, RdataType(qtype))


def _dynamic_entry(
    base: Mapping[dns.name.Name, ZoneTable],
    selections: Mapping[PoolKey, Selection],
    key: bytes,
) -> Entry:
    """The answer for ``key`` once per variant of the first pool it uses.

    Other pools the same answer touches (an MX whose two targets are pools)
    stay at their first variant: one rotation per answer is enough.
    """
    qname, qtype, qclass = key_parts(key)
    zones = _with_pools(base, selections, {})
    result = _lookup(zones, qname, qtype)
    pools = sorted(p for p in (result.uses if result else ()) if p in selections)
    if result is None or not pools:
        return compute(zones, qname, qtype, qclass)
    pool = pools[0]
    selection = selections[pool]
    count = max(1, len(selection.values_variants))
    variants = []
    for k in range(count):
        tables = _with_pools(base, selections, {pool: k}) if k else zones
        variant = _lookup(tables, qname, qtype)
        assert variant is not None
        variants.append(render(qname, qtype, qclass, variant))
    if count == 1:
        return variants[0]
    return Variants(tuple(variants), selection.cum_weights)


def build_snapshot(
    zones: Mapping[dns.name.Name, ZoneTable],
    *,
    selections: Mapping[PoolKey, Selection] | None = None,
    version: str | None = None,
    identity: str | None = None,
    generation: int = 0,
    health: HealthView | None = None,
) -> Snapshot:
    """Prebuild every answer of ``zones`` with each pool at its selection."""
    selections = dict(selections or {})
    current = _with_pools(zones, selections, {})
    answers: dict[bytes, Entry] = {}
    depends: dict[PoolKey, set[bytes]] = {pool: set() for pool in selections}
    candidates = [c for t in current.values() for c in _candidates(t)]
    candidates += [(owner, rdtype) for owner, rdtype in selections]
    for qname, qtype in candidates:
        key = answer_key(qname, qtype, RdataClass.IN)
        if key in answers:
            continue
        result = _lookup(current, qname, qtype)
        if result is not None and result.uses:
            for pool in result.uses:
                depends.setdefault(pool, set()).add(key)
            answers[key] = _dynamic_entry(zones, selections, key)
        else:
            answers[key] = compute(current, qname, qtype, RdataClass.IN)
    answers.update(chaos_answers(version, identity))
    return Snapshot(
        current,
        answers,
        health if health is not None else HealthView(),
        generation,
        MappingProxyType(dict(zones)),
        MappingProxyType(selections),
        MappingProxyType({pool: frozenset(keys) for pool, keys in depends.items()}),
    )
