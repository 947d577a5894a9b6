"""Misses on a fast path: the answer to a name with no prebuilt answer, from its wire bytes.

Owns the miss index of a snapshot's zones and the bodies it shares between
misses. Per query it reads only the answer key (lower-cased qname wire,
qtype, qclass): it walks up the qname's labels with one dict lookup per
label to the closest encloser, reads what was decided for that name when the
index was built, and serves a body memoized for (encloser, qtype as far as
it matters, length of the part of the qname below the encloser). No
dnspython, no name objects, per query.

Why a body can be shared. A prebuilt body is rendered with name compression
against the question at offset 12. For a qname P + E (E the closest
encloser, P labels that do not exist), the answer's records are the zone's
own (owners and rdata names of the zone, the qname itself as a wildcard's
owner), so their compression pointers point into the question only at
suffixes of the qname that are E or above (their offsets fixed by the length
of P), or at the whole qname (offset 12). A suffix of P may itself be named
in the zone's data (an rdata target, an SOA RNAME, an owner in a zone it
shadows) without existing: the index holds every such name as a name of its
own, which answers as below its encloser, so the walk stops there and a body
is shared only by qnames that run through it at the same offset. So every
qname with the same first name found, the same length below it and the same
outcome gets the same body, byte for byte, whatever its labels. The
decisions, by the rules of ``ZoneTable.lookup`` (E: the first name of the
index found walking up; a mentioned name decides as its encloser's "below"):

    walking up from the qname                outcome           template type
    no name of the index                      REFUSED (no zone) -
    qname is E, DS                            slow path         -
    qname is E, a cut/DNAME above it          referral / slow   one per name
    qname is E, a cut itself                  referral          one per name
    qname is E                                node              qtype if the node has it,
                                                                 ANY, or it has a CNAME;
                                                                 else one NODATA
    below E, a cut/DNAME at or above E        referral / slow   one per name
    below E, *.E a cut                        referral          one per name
    below E, *.E exists                       wildcard node     as "qname is E"
    below E, otherwise                        NXDOMAIN          one per name

Bodies are learnt, not predicted: the first query of a (name, type, length)
is answered by the slow path (``answer.lookup``) and its body kept. An
answer that used a pool's rrset (``Result.uses``) depends on health: its
(name, type, length) is marked, and its body is kept only as long as the
zones it was built from are the current ones (a flip makes new ones). So the
index and its other bodies stay valid across snapshots that change only
pool selections (health flips); ``answer.snapshot`` hands the same index on.

Must not: change or reach into ``zones.table`` (the index is built from
``ZoneTable``'s public reading API only), hold anything per query beyond the
bounded body memo, or decide anything the slow path would decide otherwise
(the unit tests compare both byte for byte). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import dns.name
import dns.rdata
from dns.rcode import Rcode
from dns.rdatatype import RdataType

from dnsserve.answer.lookup import find_zone, key_parts, lookup
from dnsserve.answer.prebuilt import Prebuilt, empty, render
from dnsserve.zones.table import ZoneTable

TEMPLATES = 20_000  # bodies kept at most; then the memo starts again (a flood costs relearning)

# Outcomes of a name, for the name itself ("at") or for names below it ("below").
SLOW = 0  # DNAME, DS at an existing name: the slow path answers
FIXED = 1  # one body whatever the qtype: a referral or NXDOMAIN
NODE = 2  # the answer at a node (the name's own, or a wildcard's)

_FIXED_TYPE = 0x10000  # the template type of a FIXED outcome
_NODATA_TYPE = 0x10001  # the template type of NODATA at a node, whatever the qtype
_IDENT_SHIFT = 25  # template key: ident << 25 | template type << 8 | length below E

_DS = int(RdataType.DS)
_CNAME = int(RdataType.CNAME)
_NS = int(RdataType.NS)
_DNAME = int(RdataType.DNAME)
_ANY = int(RdataType.ANY)
# qtypes at a CNAME whose bodies are kept for good (the ones prebuilt for an eager zone)
_CHASED = frozenset({int(RdataType.A), int(RdataType.AAAA), int(RdataType.CNAME), _ANY})
_NOTIMP_TYPES = frozenset({int(RdataType.MAILA), int(RdataType.MAILB)})
_WILD = b"\x01*"
# Types whose rdata is one uncompressed name at an offset (after a preference, or
# SRV's priority, weight and port), as the zone tables store them.
_NAME_AT = {
    int(RdataType.CNAME): 0, int(RdataType.NS): 0, int(RdataType.PTR): 0,
    int(RdataType.DNAME): 0, int(RdataType.MX): 2, int(RdataType.KX): 2, int(RdataType.RT): 2,
    int(RdataType.AFSDB): 2, int(RdataType.SRV): 6,
}
_SOA = int(RdataType.SOA)
# Types whose rdata holds no domain name: their records are not read for names.
_NAMELESS = frozenset({
    RdataType.A, RdataType.AAAA, RdataType.TXT, RdataType.SPF, RdataType.CAA,
    RdataType.SSHFP, RdataType.TLSA, RdataType.HINFO, RdataType.LOC, RdataType.DS,
    RdataType.DNSKEY,
})

PoolKey = tuple[dns.name.Name, RdataType]


class _Name:
    """What was decided, when the index was built, for one name of the index (one
    that exists, or one the data mentions: that answers as below its encloser)."""

    __slots__ = ("at", "at_types", "below", "below_types", "ident")

    def __init__(
        self,
        ident: int,
        at: int,
        at_types: frozenset[int] | None,
        below: int,
        below_types: frozenset[int] | None,
    ) -> None:
        self.ident = ident << _IDENT_SHIFT
        self.at = at  # SLOW | FIXED | NODE, for the name itself
        # NODE: the qtypes with an answer of their own (None: every qtype, the node has a CNAME)
        self.at_types = at_types
        self.below = below  # the same for names below it that do not exist
        self.below_types = below_types



class MissIndex:
    """The miss index of a set of zones, and the bodies learnt from it.

    ``answer(key, zones)`` gives the answer to a query not prebuilt, or None
    when the slow path must answer it. ``zones`` is the current snapshot's
    (the one whose pools are at their current selection): the slow path
    learns from it; an answer that depends on pools is never kept.
    """

    __slots__ = (
        "_kept", "_longest", "_names", "_notimp", "_pool_zones", "_pooled_bodies", "_refused",
        "_source", "_templates", "limit", "pools",
    )

    def __init__(
        self,
        names: dict[bytes, _Name] | None,
        pools: frozenset[PoolKey],
        *,
        limit: int = TEMPLATES,
        source: Mapping[dns.name.Name, ZoneTable] | None = None,
    ) -> None:
        # None: a deferred index (``build_index(defer=True)``), which declines
        # every name (the slow path answers) until ``complete`` builds it
        self._names = names
        self._source = source
        # no name of the index is longer: the walk starts at the first suffix this short
        self._longest = max(map(len, names), default=1) if names is not None else 1
        self.pools = pools  # the pools the index was built with (names they add exist)
        self.limit = limit
        self._templates: dict[int, Prebuilt | None] = {}  # bounded by ``limit``
        self._kept: dict[int, Prebuilt | None] = {}  # bounded by the zones' names and types
        # bodies that use a pool (None in the memos above), for the zones they were built from
        self._pool_zones: Mapping[dns.name.Name, ZoneTable] | None = None
        self._pooled_bodies: dict[int, Prebuilt] = {}
        self._refused = empty(Rcode.REFUSED)
        self._notimp = empty(Rcode.NOTIMP)

    @property
    def ready(self) -> bool:
        """Whether the index is built (a deferred one: once ``complete`` ran)."""
        return self._names is not None

    def complete(self) -> MissIndex:
        """Build a deferred index (at most once; harmless to call again). Returns self.

        Safe while another thread answers from it: until the names are in
        place it declines, and they are assigned last, in one step.
        """
        source = self._source
        if self._names is None and source is not None:
            built = build_index(source, self.pools, limit=self.limit)
            self._longest = built._longest
            self._names = built._names
            self._source = None
        return self

    def __len__(self) -> int:
        """Bodies in the bounded memo now (names below the index's names)."""
        return len(self._templates)

    @property
    def kept(self) -> int:
        """Bodies of the index's names themselves (a lazy zone's answers among them)."""
        return len(self._kept)

    def answer(
        self, key: bytes, zones: Mapping[dns.name.Name, ZoneTable]
    ) -> Prebuilt | None:
        names = self._names
        if names is None:
            return None  # deferred, not built yet: the slow path answers
        if key[-2] or key[-1] != 1:  # a class other than IN (CHAOS names are prebuilt)
            return self._refused
        qtype = (key[-4] << 8) | key[-3]
        if 250 < qtype < 255:  # IXFR, AXFR: REFUSED here; MAILB, MAILA: NOTIMP
            return self._notimp if qtype in _NOTIMP_TYPES else self._refused
        end = len(key) - 4
        i = 0
        start = end - self._longest
        while i < start:
            i += key[i] + 1
        while True:
            info = names.get(key[i:end])
            if info is not None:
                break
            n = key[i]
            if n == 0:
                return self._refused  # in no zone we serve
            i += n + 1
        if i:
            kind, types = info.below, info.below_types
        else:
            if qtype == _DS:
                return None  # DS: the parent side answers at cuts and apexes
            kind, types = info.at, info.at_types
        if kind == FIXED:
            t = _FIXED_TYPE
        elif kind == NODE:
            t = qtype if types is None or qtype in types else _NODATA_TYPE
        else:
            return None
        k = info.ident | (t << 8) | i
        # names of the index themselves have finitely many bodies: kept for good (in a
        # lazy zone they are its answers); below them, and any qtype after a CNAME, bounded
        memo = (
            self._templates
            if i or (t == qtype and types is None and qtype not in _CHASED)
            else self._kept
        )
        if k in memo:
            body = memo[k]
            return body if body is not None else self._pooled(k, key, zones)
        return self._learn(k, key, zones, memo)

    def _pooled(
        self, k: int, key: bytes, zones: Mapping[dns.name.Name, ZoneTable]
    ) -> Prebuilt:
        """A body that uses a pool: shared by its shape only within one snapshot's zones."""
        if zones is not self._pool_zones:  # a health flip (or a reload): pools moved
            self._pool_zones = zones
            self._pooled_bodies = {}
        body = self._pooled_bodies.get(k)
        if body is None:
            qname, qtype, qclass = key_parts(key)
            result = lookup(zones, qname, qtype)
            if result is None:
                return self._refused
            body = render(qname, qtype, qclass, result)
            if len(self._pooled_bodies) >= self.limit:
                self._pooled_bodies.clear()
            self._pooled_bodies[k] = body
        return body

    def _learn(
        self,
        k: int,
        key: bytes,
        zones: Mapping[dns.name.Name, ZoneTable],
        memo: dict[int, Prebuilt | None],
    ) -> Prebuilt:
        """Answer by the slow path; keep the body unless it depends on a pool."""
        qname, qtype, qclass = key_parts(key)
        result = lookup(zones, qname, qtype)
        if result is None:  # not expected: the index found a zone
            return self._refused
        body = render(qname, qtype, qclass, result)
        if memo is self._templates and len(memo) >= self.limit:
            memo.clear()
        memo[k] = None if result.uses else body
        return body


class Outside:
    """A miss index that declines every name at or below one of ``origins``.

    While a secondary zone is expired (``Snapshot.expired``) the slow path
    answers its names (SERVFAIL), and only it knows a zone with no copy yet;
    names in no such zone are answered by ``index`` as ever.
    """

    __slots__ = ("_index", "_origins")

    def __init__(self, index: MissIndex, origins: Iterable[dns.name.Name]) -> None:
        self._index = index
        self._origins = frozenset(_wire(origin) for origin in origins)

    @property
    def index(self) -> MissIndex:
        return self._index

    def answer(
        self, key: bytes, zones: Mapping[dns.name.Name, ZoneTable]
    ) -> Prebuilt | None:
        origins = self._origins
        end = len(key) - 4
        i = 0
        while True:
            if key[i:end] in origins:
                return None
            n = key[i]
            if n == 0:
                return self._index.answer(key, zones)
            i += n + 1


def build_index(
    zones: Mapping[dns.name.Name, ZoneTable],
    pools: Iterable[PoolKey] = (),
    *,
    limit: int = TEMPLATES,
    defer: bool = False,
) -> MissIndex:
    """The miss index of ``zones``, the pools' rrsets overlaid on them.

    ``defer``: build nothing now (a million records take seconds); the index
    declines every name, so the slow path answers, until ``complete()``.

    ``pools`` are the (owner, type) every pool answers for: a pool's owner
    exists even when its rrset is empty (NODATA), and a node holding a pool
    keeps an answer per qtype of the pool's type.
    """
    pool_set = frozenset(pools)
    if defer:
        return MissIndex(None, pool_set, limit=limit, source=zones)
    origins = {_wire(origin): origin for origin in zones}
    mentioned: set[bytes] = set()
    names: dict[bytes, _Name] = {}
    by_zone: dict[bytes, list[PoolKey]] = {}
    for pool in pool_set:
        table = find_zone(zones, pool[0], pool[1])
        if table is not None:
            by_zone.setdefault(_wire(table.origin), []).append(pool)
    for origin_wire, origin in origins.items():
        zone = _Zone(zones[origin], origin_wire, by_zone.get(origin_wire, ()), mentioned)
        inner = [o for o in origins if o != origin_wire and o.endswith(origin_wire)]
        for name in sorted(zone.names, key=len):  # parents before children
            if inner and zone.shadowed(name, origins):
                mentioned.add(name)  # a deeper zone we serve answers it
                continue
            names[name] = zone.decide(name, len(names) + 1)
    # A name the data mentions that does not exist is a name of its own: below it,
    # the answer's names may compress against it. It answers as below its encloser
    # (a name in no zone needs no entry: the walk finds nothing and answers REFUSED).
    existing = dict(names)
    for name in mentioned:
        chain: list[bytes] = []
        while name not in existing:
            if not name[0]:
                chain = []  # in no zone we serve
                break
            chain.append(name)
            name = name[name[0] + 1 :]
        if chain:
            encloser = existing[name]
            below, types = encloser.below, encloser.below_types
            for suffix in chain:
                if suffix not in names:
                    names[suffix] = _Name(len(names) + 1, below, types, below, types)
    return MissIndex(names, pool_set, limit=limit)


class _Zone:
    """One zone's names in wire form, and the decisions of ``ZoneTable.lookup`` for them."""

    def __init__(
        self,
        table: ZoneTable,
        origin: bytes,
        pools: Iterable[PoolKey],
        mentioned: set[bytes],
    ) -> None:
        self.origin = origin
        self.types: dict[bytes, set[int]] = {}
        # the table's wire accessors: keys are lower-cased wire names, as ours, and
        # nothing is decoded into dnspython objects but owners of rare name types
        last = b""
        types: set[int] = set()
        named: list[bytes] = []  # owners with rdata that may hold names
        for key, rdtype in table.wire_rrset_keys():
            if key != last:
                last = key
                types = self.types.setdefault(key, set())
            types.add(rdtype)
            if rdtype not in _NAMELESS and (not named or named[-1] != key):
                named.append(key)
        for key in named:
            mentioned.update(_names_at(table, key))
        for pool_owner, pool_type in pools:
            self.types.setdefault(_wire(pool_owner), set()).add(int(pool_type))
        self.names: set[bytes] = set()
        for owner_wire in self.types:
            for suffix in _suffixes(owner_wire):
                if len(suffix) < len(origin):
                    break
                self.names.add(suffix)
        self._shared: dict[frozenset[int], frozenset[int]] = {}
        self._cuts = {w for w, t in self.types.items() if _NS in t and w != origin}
        self._dnames = {w for w, t in self.types.items() if _DNAME in t}
        # top-most cut or DNAME at or above each name (None: none), filled parents first
        self._above: dict[bytes, int | None] = {}

    def shadowed(self, name: bytes, origins: Mapping[bytes, object]) -> bool:
        """A zone we serve below this one holds ``name``."""
        while len(name) > len(self.origin):
            if name in origins:
                return True
            name = name[name[0] + 1 :]
        return False

    def _own(self, name: bytes) -> int | None:
        """The outcome a cut (referral) or a DNAME at ``name`` gives names below it."""
        if name in self._cuts:
            return FIXED
        if name in self._dnames:
            return SLOW
        return None

    def decide(self, name: bytes, ident: int) -> _Name:
        """The outcomes for ``name`` and for names below it (its parent decided first)."""
        strict = None if name == self.origin else self._above[name[name[0] + 1 :]]
        inclusive = strict if strict is not None else self._own(name)
        self._above[name] = inclusive
        if strict is not None:
            at, at_types = strict, None
        elif name in self._cuts:
            at, at_types = FIXED, None  # DS at the cut is sent to the slow path
        else:
            at, at_types = NODE, self._node_types(name)
        if inclusive is not None:
            below, below_types = inclusive, None
        else:
            source = _WILD + name
            if source in self._cuts:
                below, below_types = FIXED, None
            elif source in self.names:
                below, below_types = NODE, self._node_types(source)
            else:
                below, below_types = FIXED, None  # NXDOMAIN
        return _Name(ident, at, at_types, below, below_types)

    def _node_types(self, name: bytes) -> frozenset[int] | None:
        types = self.types.get(name, set())
        if _CNAME in types:
            return None  # a CNAME: each qtype follows it to its own answer
        shared = frozenset(types | {_ANY})
        return self._shared.setdefault(shared, shared)  # one object per set of types


def _names_at(table: ZoneTable, key: bytes) -> Iterator[bytes]:
    """The names (lower-cased wire) in the rdata of owner ``key``, read from its stored
    wire form where the type's layout is simple, else from the decoded records."""
    stored = table.wire_node(key)
    rare = stored is None  # only in a pool's overlay: decoded
    for rdtype, _, rdatas in stored[1] if stored is not None else ():
        if rdtype in _NAMELESS:
            continue
        at = _NAME_AT.get(rdtype)
        if at is not None:
            yield from (rdata[at:].lower() for rdata in rdatas)
        elif rdtype == _SOA:
            for rdata in rdatas:
                end = _name_end(rdata, 0)
                yield rdata[:end].lower()
                yield rdata[end : _name_end(rdata, end)].lower()
        else:
            rare = True
    if rare:
        for rdtype, rrset in table.node_by_key(key).items():
            if rdtype not in _NAMELESS:
                for rdata in rrset:
                    yield from (_wire(n) for n in rdata_names(rdata))


def _name_end(wire: bytes, at: int) -> int:
    """The offset just past the uncompressed name at ``at``."""
    while wire[at]:
        at += wire[at] + 1
    return at + 1


def _wire(name: dns.name.Name) -> bytes:
    wire = name.to_wire()
    assert wire is not None  # None only when writing to a file
    return wire.lower()


def _suffixes(wire: bytes) -> Iterator[bytes]:
    """``wire`` and every name above it, the root included."""
    i = 0
    while True:
        yield wire[i:]
        if wire[i] == 0:
            return
        i += wire[i] + 1


def rdata_names(rdata: dns.rdata.Rdata) -> Iterator[dns.name.Name]:
    """Every domain name in ``rdata``'s fields (targets, SOA MNAME/RNAME, HIP servers...)."""
    cls = type(rdata)
    slots = _SLOTS.get(cls)
    if slots is None:
        slots = _SLOTS[cls] = tuple(s for c in cls.__mro__ for s in getattr(c, "__slots__", ()))
    for slot in slots:
        value = getattr(rdata, slot, None)
        if isinstance(value, dns.name.Name):
            yield value
        elif isinstance(value, tuple | list):
            yield from (v for v in value if isinstance(v, dns.name.Name))


_SLOTS: dict[type, tuple[str, ...]] = {}  # each rdata class's fields, read once
